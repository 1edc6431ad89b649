"""Schedules: parsing --at/--days, the crontab expression, the systemd units (checked by systemd)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from pathlib import Path

import pytest

from stackspray import hibernate
from stackspray.cluster_state import ClusterState
from stackspray.schedule import (
    Job,
    ScheduleError,
    When,
    command_line,
    cron_daemon_running,
    install,
    install_service,
    list_jobs,
    next_run,
    parse_when,
    remove,
    remove_service,
    render_service,
    render_units,
    service_command_line,
)
from stackspray.state import ClusterDir


@pytest.mark.parametrize(
    "at, days, cron, calendar",
    [
        ("20:00", None, "0 20 * * *", "*-*-* 20:00:00"),
        ("7:05", "mon-fri", "5 7 * * 1,2,3,4,5", "Mon,Tue,Wed,Thu,Fri *-*-* 07:05:00"),
        ("23:59", "sat,sun", "59 23 * * 6,0", "Sat,Sun *-*-* 23:59:00"),
        ("00:00", "fri-mon", "0 0 * * 1,5,6,0", "Mon,Fri,Sat,Sun *-*-* 00:00:00"),
    ],
)
def test_when(at, days, cron, calendar):
    w = parse_when(at, days)
    assert w.cron() == cron
    assert w.on_calendar() == calendar


@pytest.mark.parametrize(
    "at, days, field", [("24:00", None, "--at"), ("8pm", None, "--at"), ("20:00", "weekdays", "--days")]
)
def test_when_refuses(at, days, field):
    with pytest.raises(ScheduleError) as err:
        parse_when(at, days)
    assert str(err.value).startswith(field)


@pytest.mark.parametrize("days", [None, "mon-fri", "sat,sun"])
def test_on_calendar_is_valid_for_systemd(days):
    out = subprocess.run(
        ["systemd-analyze", "calendar", parse_when("06:30", days).on_calendar()],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "06:30:00" in out.stdout


def test_units_and_command(monkeypatch, tmp_path):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", "/home/u/clouds.yaml")
    monkeypatch.setenv("STACKSPRAY_INVENTORIES", str(tmp_path))
    job = Job("demo", "scale-2000", ("scale", "--cluster", "demo", "--workers", "0"), When(20, 0))
    cmd = command_line(job)
    assert "OS_CLIENT_CONFIG_FILE=/home/u/clouds.yaml" in cmd
    assert f"D={tmp_path}/demo && " in cmd and 'flock -w 600 -E 75 "$D/.schedule.lock"' in cmd
    assert 'L="$D/logs/scheduled-scale-2000.log"' in cmd
    assert 'scale --cluster demo --workers 0 >> "$L" 2>&1 || ' in cmd
    units = render_units(job)
    assert set(units) == {"stackspray-demo_scale-2000.service", "stackspray-demo_scale-2000.timer"}
    timer = units["stackspray-demo_scale-2000.timer"]
    assert "OnCalendar=*-*-* 20:00:00" in timer and "Persistent=true" in timer
    assert "Unit=stackspray-demo_scale-2000.service" in timer


def test_a_failed_run_says_so_in_one_line_and_keeps_its_exit_code(monkeypatch, tmp_path):
    """cron mails what a job prints: on failure exactly one line naming the command and the log."""
    monkeypatch.setenv("STACKSPRAY_INVENTORIES", str(tmp_path))
    monkeypatch.setattr("stackspray.schedule._program", lambda: "sh")
    failing = Job("demo", "x", ("-c", "echo detail; exit 3"), When(1, 0))
    out = subprocess.run(["sh", "-c", command_line(failing)], capture_output=True, text=True)
    assert out.returncode == 3
    log = tmp_path / "demo" / "logs" / "scheduled-x.log"
    assert out.stdout == f"stackspray: stackspray -c 'echo detail; exit 3' failed with exit 3; see {log}\n"
    assert log.read_text() == "detail\n"
    ok = Job("demo", "y", ("-c", "echo fine"), When(1, 0))
    out = subprocess.run(["sh", "-c", command_line(ok)], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "")


def _fake_systemctl(tmp_path, monkeypatch):
    """systemctl's place on PATH: records its arguments, succeeds. What is under test is which
    unit files stackspray picks, not systemd (the integration test runs real timers)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl.calls"
    (bin_dir / "systemctl").write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\n[ "$2" = is-system-running ] && echo running\nexit 0\n'
    )
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STACKSPRAY_SCHEDULER", "systemd")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("STACKSPRAY_INVENTORIES", str(tmp_path / "inv"))
    return calls


def test_systemd_jobs_of_demo_never_include_demo_2s(tmp_path, monkeypatch):
    """destroy-cluster demo used to remove demo-2's timers: the unit files were globbed by name."""
    _fake_systemctl(tmp_path, monkeypatch)
    for cluster in ("demo", "demo-2"):
        install(Job(cluster, "scale-2000", ("scale", "--cluster", cluster, "--workers", "0"), When(20, 0)))
    assert [j["id"] for j in list_jobs("demo")] == ["scale-2000"]
    assert [j["command"] for j in list_jobs("demo")] == ["scale --cluster demo --workers 0"]
    assert remove("demo") == ["scale-2000"]
    left = sorted(p.name for p in (tmp_path / "config" / "systemd" / "user").iterdir())
    assert left == ["stackspray-demo-2_scale-2000.service", "stackspray-demo-2_scale-2000.timer"]
    assert [j["id"] for j in list_jobs("demo-2")] == ["scale-2000"]


def test_a_percent_sign_reaches_the_shell_as_itself_in_a_systemd_unit(tmp_path, monkeypatch):
    """systemd.unit(5): '%' starts a specifier in ExecStart; a literal one is written '%%'."""
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", "/home/u/100%/clouds.yaml")
    monkeypatch.setenv("STACKSPRAY_INVENTORIES", str(tmp_path))
    job = Job("demo", "scale-2000", ("scale", "--cluster", "demo", "--workers", "0"), When(20, 0))
    service = render_units(job)["stackspray-demo_scale-2000.service"]
    exec_start = next(ln for ln in service.splitlines() if ln.startswith("ExecStart="))
    assert "100%%/clouds.yaml" in exec_start and "100%/" not in exec_start.replace("%%", "")


def test_a_lock_that_stays_taken_is_logged_not_silent(monkeypatch, tmp_path):
    """`flock -w` gives up with exit 1 and no word; the job's log now says why it did not run."""
    monkeypatch.setenv("STACKSPRAY_INVENTORIES", str(tmp_path))
    monkeypatch.setattr("stackspray.schedule._program", lambda: "sh")
    monkeypatch.setattr("stackspray.schedule.LOCK_WAIT", 1)
    job = Job("demo", "x", ("-c", "echo ran"), When(1, 0))
    lock = tmp_path / "demo" / ".schedule.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(["flock", str(lock), "sleep", "5"])
    try:
        time.sleep(0.3)
        out = subprocess.run(["sh", "-c", command_line(job)], capture_output=True, text=True)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 75
    log = (tmp_path / "demo" / "logs" / "scheduled-x.log").read_text()
    assert "waited 1s for the cluster's schedule lock" in log and "ran" not in log


def _fake_crontab(tmp_path, monkeypatch, write_delay: float = 0.0) -> Path:
    """crontab's place on PATH (cron is the backend under test, not the cron daemon): `-l` prints
    the table or says "no crontab" like the real one, `-` replaces it (after `write_delay`, to
    make a race show). Returns the table file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    table = tmp_path / "crontab"
    (bin_dir / "crontab").write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-l" ]; then cat {table} 2>/dev/null || {{ echo "no crontab" >&2; exit 1; }}\n'
        f"else sleep {write_delay}; cat > {table}; fi\n"
    )
    (bin_dir / "crontab").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STACKSPRAY_SCHEDULER", "cron")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("STACKSPRAY_INVENTORIES", str(tmp_path / "inv"))
    monkeypatch.setattr("stackspray.schedule.cron_daemon_running", lambda: True)
    return table


def _proc(tmp_path, *names: str) -> Path:
    proc = tmp_path / "proc"
    for pid, name in enumerate(names, start=1):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(name + "\n")
    (proc / "self").mkdir(parents=True, exist_ok=True)
    return proc


def test_a_cron_daemon_is_found_by_its_process_name(tmp_path):
    assert cron_daemon_running(_proc(tmp_path / "a", "systemd", "cron", "sshd"))
    assert cron_daemon_running(_proc(tmp_path / "b", "bash", "crond"))
    assert not cron_daemon_running(_proc(tmp_path / "c", "bash", "crontab", "sshd"))


def test_no_schedule_is_installed_where_nothing_would_run_it(tmp_path, monkeypatch):
    """crontab present, no cron daemon, no user manager: install is refused naming what to
    start; nothing lands in the table; reading and removing still work."""
    table = _fake_crontab(tmp_path, monkeypatch)
    monkeypatch.delenv("STACKSPRAY_SCHEDULER")
    monkeypatch.setattr("stackspray.schedule.cron_daemon_running", lambda: False)
    monkeypatch.setattr("stackspray.schedule._user_manager_running", lambda: False)
    with pytest.raises(ScheduleError, match=r"no cron daemon runs.*systemctl enable --now cron"):
        install(Job("demo", "scale-2000", ("scale", "--cluster", "demo"), When(20, 0)))
    with pytest.raises(ScheduleError, match="no cron daemon"):
        install_service("demo", "autoscale", ("autoscale.run",), ("autoscale.run", "--once"))
    assert not table.exists()
    assert list_jobs("demo") == [] and remove_service("demo", "autoscale") == []
    monkeypatch.setenv("STACKSPRAY_SCHEDULER", "systemd")
    with pytest.raises(ScheduleError, match="no systemd user manager runs"):
        install(Job("demo", "scale-2000", ("scale", "--cluster", "demo"), When(20, 0)))


def test_concurrent_crontab_installs_keep_every_job(tmp_path, monkeypatch):
    """Two installs at once used to lose one job (crontab -l, edit, crontab - raced)."""
    from concurrent.futures import ThreadPoolExecutor

    table = _fake_crontab(tmp_path, monkeypatch, write_delay=0.2)
    jobs = [Job(f"c{i}", "scale-2000", ("scale", "--cluster", f"c{i}"), When(20, 0)) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(install, jobs))
    assert sorted(ln.rsplit(":", 2)[1] for ln in table.read_text().splitlines()) == ["c0", "c1", "c2", "c3"]


def test_a_crontab_line_lists_the_command_it_runs(tmp_path, monkeypatch):
    _fake_crontab(tmp_path, monkeypatch)
    install(Job("demo", "scale-2000", ("scale", "--cluster", "demo", "--workers", "0"), When(20, 0)))
    assert [j["command"] for j in list_jobs("demo")] == ["scale --cluster demo --workers 0"]


def test_the_autoscaler_service_unit_restarts_on_failure_and_holds_no_schedule_lock(monkeypatch, tmp_path):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", "/home/u/clouds.yaml")
    monkeypatch.setenv("STACKSPRAY_INVENTORIES", str(tmp_path))
    unit = render_service("demo", "autoscale", ("autoscale.run", "--cluster", "demo"))
    assert "Type=simple" in unit and "Restart=on-failure" in unit and "WantedBy=default.target" in unit
    assert "# stackspray:demo:autoscale" in unit.splitlines()
    cmd = service_command_line("demo", "autoscale", ("autoscale.run", "--cluster", "demo", "--once"))
    # A loop holding the schedule lock would keep every scheduled job of the cluster waiting.
    assert "flock" not in cmd and "OS_CLIENT_CONFIG_FILE=/home/u/clouds.yaml" in cmd
    assert cmd.endswith(f"autoscale.run --cluster demo --once >> {tmp_path}/demo/logs/autoscale.log 2>&1")
    # systemd's own parser (system mode: this machine has no user manager) finds nothing to say.
    out = tmp_path / "stackspray-demo_autoscale.service"
    out.write_text(unit)
    verify = subprocess.run(["systemd-analyze", "verify", str(out)], capture_output=True, text=True)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr


def test_a_crontab_line_too_long_for_cron_runs_its_script(tmp_path, monkeypatch):
    """Debian's cron refuses lines of 1000 characters: long paths get a script in the cluster's
    folder, listed and removed like any job, and the command it runs is the same."""
    table = _fake_crontab(tmp_path, monkeypatch)
    monkeypatch.setenv("STACKSPRAY_SCHEDULER", "cron")
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 10, "inventories")
    monkeypatch.setenv("STACKSPRAY_INVENTORIES", str(deep))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path.joinpath(*["clouds"] * 30, "clouds.yaml")))
    job = Job("demo", "scale-0700", ("scale", "--cluster", "demo", "--workers", "3"), When(7, 0))
    assert len(command_line(job)) > 1000
    install(job)
    (line,) = table.read_text().splitlines()
    assert (
        len(line) <= 990
        and line.startswith("0 7 * * * /bin/sh ")
        and line.endswith("# stackspray:demo:scale-0700")
    )
    script = deep / "demo" / "jobs" / "scale-0700.sh"
    assert script.read_text().splitlines()[-1] == command_line(job)
    assert script.stat().st_mode & 0o777 == 0o700
    assert [j["command"] for j in list_jobs("demo")] == ["scale --cluster demo --workers 3"]
    assert remove("demo", "scale-0700") == ["scale-0700"] and not script.exists()
    assert table.read_text().strip() == ""


def test_two_clusters_jobs_never_share_a_unit_and_a_foreign_unit_is_never_overwritten(tmp_path, monkeypatch):
    """Cluster `lab`'s autoscale window for group x-scale at 09:45 and cluster `lab-autoscale-x`'s
    scale job at 09:45 were both stackspray-lab-autoscale-x-scale-0945: each overwrote and removed
    the other's. Now each has its own unit, and a unit of the name without the job's mark stays."""
    calls = _fake_systemctl(tmp_path, monkeypatch)
    window = Job("lab", "autoscale-x-scale-0945", ("autoscale.limits", "--cluster", "lab"), When(9, 45))
    scale = Job("lab-autoscale-x", "scale-0945", ("scale", "--cluster", "lab-autoscale-x"), When(9, 45))
    install(window)
    install(scale)
    units = sorted(p.name for p in (tmp_path / "config" / "systemd" / "user").iterdir())
    assert len(units) == 4, units
    assert [j["id"] for j in list_jobs("lab")] == ["autoscale-x-scale-0945"]
    assert [j["id"] for j in list_jobs("lab-autoscale-x")] == ["scale-0945"]
    assert remove("lab-autoscale-x") == ["scale-0945"]
    assert [j["id"] for j in list_jobs("lab")] == ["autoscale-x-scale-0945"], "lab's window is still there"
    # A unit file of the job's name that is not the job's (no mark) is left alone and refused.
    foreign = tmp_path / "config" / "systemd" / "user" / "stackspray-lab-autoscale-x_scale-0945.service"
    foreign.write_text("[Unit]\nDescription=somebody else's\n[Service]\nExecStart=/bin/true\n")
    with pytest.raises(ScheduleError, match="left alone"):
        install(scale)
    assert "somebody else's" in foreign.read_text()
    assert calls.exists()


def test_a_unit_an_earlier_release_named_is_found_and_replaced(tmp_path, monkeypatch):
    _fake_systemctl(tmp_path, monkeypatch)
    job = Job("demo", "scale-2000", ("scale", "--cluster", "demo", "--workers", "0"), When(20, 0))
    d = tmp_path / "config" / "systemd" / "user"
    d.mkdir(parents=True)
    for fname, text in render_units(job).items():
        (d / fname.replace("demo_", "demo-")).write_text(text)
    assert [j["id"] for j in list_jobs("demo")] == ["scale-2000"], "listed by its mark, whatever its name"
    install(job)
    assert sorted(p.name for p in d.iterdir()) == [
        "stackspray-demo_scale-2000.service",
        "stackspray-demo_scale-2000.timer",
    ]


@pytest.mark.parametrize("backend", ["systemd", "cron"])
def test_hibernate_and_wake_schedules_install_list_and_give_the_next_wake(tmp_path, monkeypatch, backend):
    (_fake_systemctl if backend == "systemd" else _fake_crontab)(tmp_path, monkeypatch)
    ClusterDir("course").save(ClusterState(cluster="course", cloud="sandbox"))
    hibernate.schedule("hibernate", "course", at="19:00", days="fri")
    hibernate.schedule("wake", "course", at="07:00", days="mon", workers=0)
    jobs = {j["id"]: j["command"] for j in list_jobs("course")}
    assert jobs == {
        "hibernate-1900-Fr": "hibernate --cluster course",
        "wake-0700-Mo": "wake --cluster course --workers 0",
    }
    friday_noon = dt.datetime(2026, 12, 11, 12, 0)
    assert next_run("course", "wake-", friday_noon) == dt.datetime(2026, 12, 14, 7, 0)
    assert next_run("course", "hibernate-", friday_noon) == dt.datetime(2026, 12, 11, 19, 0)
    assert next_run("course", "scale-", friday_noon) is None
    with pytest.raises(Exception, match="no cluster 'elsewhere'"):
        hibernate.schedule("wake", "elsewhere", at="07:00", days=None)
