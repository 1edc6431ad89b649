"""Scheduled stackspray commands: a systemd user timer where the user's systemd runs, else crontab.

A job is one stackspray command line run at a calendar time, from the project folder, with the
clouds.yaml location it was scheduled with, serialized by `flock` on the cluster's schedule lock
(a job waits up to 10 minutes for the previous one), its output appended to the cluster's
`logs/scheduled-<job>.log`. Every job is marked with its cluster and id, so `list` and `remove`
only ever see and touch stackspray's own timers and crontab lines.

Backends:
- systemd: `~/.config/systemd/user/stackspray-<cluster>-<job>.{service,timer}`, `Persistent=true`
  (a run missed while the machine was off happens at boot), enabled with `systemctl --user`.
  For timers to run while the user is logged out: `loginctl enable-linger $USER`.
- cron: one line per job in the user's crontab, ending in `# stackspray:<cluster>:<job>`.
`STACKSPRAY_SCHEDULER=systemd|cron` chooses one explicitly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import names
from .errors import StackSprayError
from .files import atomic_write
from .state import ClusterDir

DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}
SYSTEMD_DAYS = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 0: "Sun"}
# Environment a scheduled run needs to find the cloud (never a secret: the path, not the content).
CARRIED_ENV = ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD", "STACKSPRAY_INVENTORIES")
LOCK_WAIT = 600  # seconds a job waits for the previous one of its cluster
LOCK_TIMEOUT_EXIT = 75  # flock -E: its exit code when the wait ran out (EX_TEMPFAIL)


class ScheduleError(StackSprayError):
    """A schedule cannot be installed, listed or removed as asked."""


@dataclass(frozen=True)
class When:
    """A time of day (local) on some days of the week (all when `days` is empty)."""

    hour: int
    minute: int
    days: tuple[int, ...] = ()

    def cron(self) -> str:
        dow = ",".join(str(d) for d in self.days) if self.days else "*"
        return f"{self.minute} {self.hour} * * {dow}"

    def on_calendar(self) -> str:
        dow = ",".join(SYSTEMD_DAYS[d] for d in self.days) + " " if self.days else ""
        return f"{dow}*-*-* {self.hour:02d}:{self.minute:02d}:00"

    def next_after(self, now: dt.datetime) -> dt.datetime:
        """The first time after `now` (local, naive) this runs."""
        day = now.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        for i in range(8):
            t = day + dt.timedelta(days=i)
            # datetime's weekday(): Monday 0; cron's (and DAYS'): Sunday 0
            if t > now and (not self.days or (t.weekday() + 1) % 7 in self.days):
                return t
        raise AssertionError("a weekly time always comes within 8 days")

    def label(self) -> str:
        return f"{self.hour:02d}{self.minute:02d}" + (
            "-" + "".join(SYSTEMD_DAYS[d][:2] for d in self.days) if self.days else ""
        )


def parse_when(at: str, days: str | None = None) -> When:
    """`--at HH:MM` and `--days mon-fri|sat,sun|daily` → When (ScheduleError names the flag)."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", at or "")
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ScheduleError(f"--at: expected a local time HH:MM such as 20:00, got {at!r}")
    picked: list[int] = []
    spec = (days or "daily").strip().lower()
    if spec not in ("daily", "*", ""):
        for part in spec.split(","):
            ends = part.strip().split("-")
            if any(e[:3] not in DAYS for e in ends) or len(ends) > 2:
                raise ScheduleError(f"--days: expected day names such as mon-fri or sat,sun, got {days!r}")
            a, b = (DAYS[ends[0][:3]], DAYS[ends[-1][:3]])
            span = [a] if a == b else [(a + i) % 7 for i in range((b - a) % 7 + 1)]
            picked += [d for d in span if d not in picked]
    return When(int(m[1]), int(m[2]), tuple(sorted(picked, key=lambda d: (d - 1) % 7)))


def when_of_listing(text: str) -> When | None:
    """The When of a listed job (`list_jobs`' "when": systemd's OnCalendar or a cron schedule), or
    None for a form stackspray does not write."""
    m = re.fullmatch(r"(?:([A-Za-z,]+) )?\*-\*-\* (\d\d):(\d\d):00", text.strip())
    if m:
        names_ = {v: k for k, v in SYSTEMD_DAYS.items()}
        days = tuple(names_[d] for d in m[1].split(",")) if m[1] else ()
        return When(int(m[2]), int(m[3]), days)
    parts = text.split()
    if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit() and parts[2:4] == ["*", "*"]:
        days = () if parts[4] == "*" else tuple(int(d) for d in parts[4].split(","))
        return When(int(parts[1]), int(parts[0]), days)
    return None


def next_run(cluster: str, prefix: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the cluster's next scheduled job whose id starts with `prefix` runs (local time), or
    None when none is scheduled."""
    times = [
        w.next_after(now or dt.datetime.now())
        for j in list_jobs(cluster)
        if j["id"].startswith(prefix) and (w := when_of_listing(j["when"])) is not None
    ]
    return min(times) if times else None


@dataclass(frozen=True)
class Job:
    cluster: str
    id: str  # e.g. scale-2000-Mo
    args: tuple[str, ...]  # the command line after `stackspray`
    when: When


def _program() -> str:
    """The installed `stackspray` command, by its absolute path: the one beside this Python (a
    venv's), else the one on PATH. A schedule runs it from any folder; nothing depends on a
    checkout's tasks.py."""
    exe = Path(sys.executable).with_name("stackspray")
    if exe.exists():
        return str(exe)
    found = shutil.which("stackspray")
    if found:
        return str(Path(found).resolve())
    raise ScheduleError(
        "the `stackspray` command is not installed beside this Python or on PATH: "
        "install stackspray with pip (`pip install .` in its folder) and try again"
    )


def _paths(job: Job) -> tuple[Path, Path]:
    cdir = ClusterDir(job.cluster)
    return cdir.logs / f"scheduled-{job.id}.log", cdir.path / ".schedule.lock"


def _env_prefix() -> str:
    """`K=V ` for the carried environment (paths, never a secret), or nothing."""
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in CARRIED_ENV if os.environ.get(k))
    return env + " " if env else ""


def _invocation(args: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(a) for a in (_program(), *args))


def _script(cluster: str, job_id: str) -> Path:
    """Where a crontab line too long for cron keeps its command."""
    return ClusterDir(cluster).path / "jobs" / f"{job_id}.sh"


def command_line(job: Job) -> str:
    """The shell command the timer or crontab runs. The cluster's folder and the log are named
    once (D, L), so the line stays short: Debian's cron refuses lines of 1000 characters."""
    log, lock = _paths(job)
    run = _invocation(job.args)
    prefix = _env_prefix()
    failed = shlex.quote(f"stackspray: stackspray {shlex.join(job.args)} failed with exit")
    timed_out = shlex.quote(
        f"stackspray: waited {LOCK_WAIT}s for the cluster's schedule lock "
        "(an earlier job still runs): skipped"
    )
    return (
        f"D={shlex.quote(str(lock.parent))} && "
        f'L="$D/{log.parent.name}/{log.name}" && mkdir -p "$D/{log.parent.name}" && '
        f'{prefix}flock -w {LOCK_WAIT} -E {LOCK_TIMEOUT_EXIT} "$D/{lock.name}" {run} >> "$L" 2>&1'
        # On failure say so in one line on stdout (cron mails it when MAILTO is set) and keep the code;
        # a lock that stayed taken is written to the job's log too (flock itself says nothing).
        f' || {{ rc=$?; [ $rc -ne {LOCK_TIMEOUT_EXIT} ] || echo {timed_out} >> "$L"; '
        f'echo {failed} $rc\\; see "$L"; exit $rc; }}'
    )


CRON_LINE_MAX = 990  # Debian's cron: "command too long" at 1000 characters (MAX_COMMAND)


def _cron_line(cluster: str, job_id: str, when: str, command: str) -> str:
    """A crontab line running `command`; one that would be too long for cron runs the same
    command from a script in the cluster's folder (jobs/<id>.sh, 0700) instead."""
    mark = names.schedule_mark(cluster, job_id)
    line = f"{when} {command.replace('%', chr(92) + '%')} {mark}"  # crontab(5): a bare % ends it
    if len(line) <= CRON_LINE_MAX:
        return line
    script = _script(cluster, job_id)
    atomic_write(script, f"#!/bin/sh\n# stackspray scheduled job {cluster}:{job_id}\n{command}\n", 0o700)
    return f"{when} /bin/sh {shlex.quote(str(script)).replace('%', chr(92) + '%')} {mark}"


def _cron_command(line: str) -> str:
    """The command a crontab line of ours runs (read from its script when it runs one)."""
    m = re.search(r"/bin/sh (\S+/jobs/[^/\s]+\.sh) # ", line)
    if m:
        with contextlib.suppress(OSError):
            return Path(shlex.split(m[1])[0]).read_text()
    return line


# -- backends ----------------------------------------------------------------------------------


CRON_DAEMONS = frozenset({"cron", "crond", "cronie", "fcron", "dcron"})


def cron_daemon_running(proc: Path = Path("/proc")) -> bool:
    """Whether a cron daemon runs on this machine (a process named cron, crond, ...). On macOS
    launchd starts cron itself when a crontab exists, so there it is taken as running."""
    if sys.platform == "darwin":
        return True
    for comm in proc.glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in CRON_DAEMONS:
                return True
        except OSError:  # the process ended while we looked
            continue
    return False


def _user_manager_running() -> bool:
    if not shutil.which("systemctl"):
        return False
    probe = subprocess.run(["systemctl", "--user", "is-system-running"], capture_output=True, text=True)
    return probe.stdout.strip() in ("running", "degraded", "starting")


NO_CRON_DAEMON = (
    "crontab is installed but no cron daemon runs on this machine (no cron or crond process), so "
    "a schedule installed now would never run. Start it (`sudo systemctl enable --now cron`, or "
    "`sudo service cron start` where systemd is not init), or run this where a systemd user "
    "manager runs (`systemctl --user is-system-running`; `loginctl enable-linger $USER` keeps it "
    "after logout)"
)
NO_USER_MANAGER = (
    "no systemd user manager runs for this user (`systemctl --user is-system-running`), so a "
    "timer installed now would never run: log in with a systemd session, or run "
    "`loginctl enable-linger $USER`, or use STACKSPRAY_SCHEDULER=cron with a running cron daemon"
)


def backend(installing: bool = False) -> str:
    """The scheduler in use: systemd (a user manager runs) or cron. `installing`: also refuse
    one that would never run what is installed (no user manager, no cron daemon), naming what
    to start; reading and removing work without them."""
    chosen = os.environ.get("STACKSPRAY_SCHEDULER")
    if chosen and chosen not in ("systemd", "cron"):
        raise ScheduleError(f"STACKSPRAY_SCHEDULER={chosen!r}: expected systemd or cron")
    if chosen == "systemd":
        if installing and not _user_manager_running():
            raise ScheduleError(f"STACKSPRAY_SCHEDULER=systemd: {NO_USER_MANAGER}")
        return chosen
    if chosen is None and _user_manager_running():
        return "systemd"
    if not shutil.which("crontab"):
        raise ScheduleError(
            "neither a systemd user manager (systemctl --user) nor crontab is available on this "
            "machine; install cron (and start its daemon) or log in with a systemd user session"
        )
    if installing and not cron_daemon_running():
        raise ScheduleError(NO_CRON_DAEMON)
    return "cron"


def unit_dir() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "systemd" / "user"


def unit_name(job: Job) -> str:
    return names.schedule_unit(job.cluster, job.id)


def render_units(job: Job) -> dict[str, str]:
    """The .service and .timer of a job (systemd user units)."""
    name = unit_name(job)
    service = (
        "[Unit]\n"
        f"Description=stackspray {' '.join(job.args)}\n"
        f"{names.schedule_mark(job.cluster, job.id)}\n"
        "[Service]\n"
        "Type=oneshot\n"
        # systemd.unit(5): % starts a specifier in ExecStart; %% is a literal %.
        f"ExecStart=/bin/sh -c {shlex.quote(command_line(job)).replace('%', '%%')}\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=stackspray {job.id} for cluster {job.cluster}\n"
        "[Timer]\n"
        f"OnCalendar={job.when.on_calendar()}\n"
        "Persistent=true\n"
        f"Unit={name}.service\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def _systemctl(*args: str) -> None:
    out = subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise ScheduleError(f"systemctl --user {' '.join(args)}: {out.stderr.strip() or out.returncode}")


def _crontab_lines() -> list[str]:
    out = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    if out.returncode != 0 and "no crontab" not in out.stderr:
        raise ScheduleError(f"crontab -l: {out.stderr.strip()}")
    return out.stdout.splitlines() if out.returncode == 0 else []


@contextlib.contextmanager
def _crontab_lock():
    """crontab -l / edit / crontab - is a read-modify-write of the user's whole crontab: two
    stackspray commands doing it at once would lose one's job. One lock per user serializes them."""
    path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stackspray" / "crontab.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _put_cron_line(cluster: str, job_id: str, when: str, command: str) -> None:
    """Install (or replace) the cluster's crontab line for job_id; other lines stay as they are."""
    with _crontab_lock():
        lines = [ln for ln in _crontab_lines() if names.parse_schedule_mark(ln) != (cluster, job_id)]
        lines.append(_cron_line(cluster, job_id, when, command))
        _write_crontab(lines)


def _marked(service: Path, cluster: str, job_id: str) -> bool:
    return service.exists() and any(
        names.parse_schedule_mark(ln) == (cluster, job_id) for ln in service.read_text().splitlines()
    )


def _our_unit(cluster: str, job_id: str) -> Path | None:
    """The job's systemd .service file when it exists and carries our exact mark (under today's
    name, or the name an earlier release gave it)."""
    for name in (names.schedule_unit(cluster, job_id), names.legacy_schedule_unit(cluster, job_id)):
        unit = unit_dir() / f"{name}.service"
        if _marked(unit, cluster, job_id):
            return unit
    return None


def _claim_unit_name(cluster: str, job_id: str) -> None:
    """Before a job's units are written: a unit of that name that is not this job's (no mark, or
    another cluster's) is never overwritten; this job's units under an earlier release's name are
    replaced (stopped and removed)."""
    service = unit_dir() / f"{names.schedule_unit(cluster, job_id)}.service"
    if service.exists() and not _marked(service, cluster, job_id):
        raise ScheduleError(
            f"{service} exists and is not cluster {cluster}'s job {job_id} (no such mark in it): "
            "it is left alone; remove it yourself if it is stale"
        )
    old = unit_dir() / f"{names.legacy_schedule_unit(cluster, job_id)}.service"
    if _marked(old, cluster, job_id):
        _remove_units(old.with_suffix(""))


def _remove_units(base: Path) -> None:
    """Stop and remove a job's .timer and .service (`base`: the unit path without suffix)."""
    for suffix in (".timer", ".service"):
        if shutil.which("systemctl"):
            subprocess.run(
                ["systemctl", "--user", "disable", "--now", base.name + suffix], capture_output=True
            )
        base.with_suffix(suffix).unlink(missing_ok=True)


def _write_crontab(lines: list[str]) -> None:
    out = subprocess.run(["crontab", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True)
    if out.returncode != 0:
        raise ScheduleError(f"crontab -: {out.stderr.strip()}")


@dataclass
class ScheduleResult:
    """What a schedule command did: `list` (jobs), `remove` (removed ids) or `install` (the job)."""

    cluster: str
    action: str
    jobs: list[dict] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    installed: dict | None = None

    def to_dict(self) -> dict | list:
        return {"list": self.jobs, "remove": self.removed, "install": self.installed}[self.action]


def install(job: Job) -> dict:
    """Install (or replace) the job. Returns {"backend", "id", "when", "where"}."""
    which = backend(installing=True)
    if which == "systemd":
        d = unit_dir()
        d.mkdir(parents=True, exist_ok=True)
        _claim_unit_name(job.cluster, job.id)
        for fname, text in render_units(job).items():
            (d / fname).write_text(text)
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", f"{unit_name(job)}.timer")
        where = str(d / f"{unit_name(job)}.timer")
    else:
        _put_cron_line(job.cluster, job.id, job.when.cron(), command_line(job))
        where = "crontab"
    return {"backend": which, "id": job.id, "when": job.when.on_calendar(), "where": where}


def list_jobs(cluster: str) -> list[dict]:
    """The cluster's scheduled jobs: [{"id", "backend", "when", "command"}]."""
    which = backend()
    jobs = []
    if which == "systemd":
        for timer in sorted(unit_dir().glob("stackspray-*.timer")):
            service = timer.with_suffix(".service")
            if not service.exists():
                continue
            stext = service.read_text()
            # Ours by the exact mark line, never by the file name: `demo`'s glob also matches demo-2.
            marks = [m for ln in stext.splitlines() if (m := names.parse_schedule_mark(ln))]
            if not marks or marks[0][0] != cluster:
                continue
            text = timer.read_text()
            cmd = re.search(r"^Description=stackspray (.*)$", stext, re.M)
            jobs.append(
                {
                    "id": marks[0][1],
                    "backend": which,
                    "when": re.search(r"^OnCalendar=(.*)$", text, re.M)[1],
                    "command": cmd[1] if cmd else "?",
                }
            )
    else:
        for ln in _crontab_lines():
            m = names.parse_schedule_mark(ln)
            if m and m[0] == cluster and m[1] != names.AUTOSCALE_JOB:  # a service, not a job
                run = re.search(r"flock -w \d+ (?:-E \d+ )?\S+ \S+ (.*?) >>", _cron_command(ln))
                jobs.append(
                    {
                        "id": m[1],
                        "backend": which,
                        "when": " ".join(ln.split()[:5]),
                        "command": run[1] if run else "?",
                    }
                )
    return jobs


# -- long-running services (the autoscaler's loop) ------------------------------------------------


def service_command_line(cluster: str, job_id: str, args: tuple[str, ...]) -> str:
    """The shell command of a service: like a job's, but without the schedule lock (a loop that
    holds it would keep every scheduled job of the cluster waiting; the command serializes
    itself with its own lock)."""
    log = ClusterDir(cluster).logs / f"{job_id}.log"
    return (
        f"mkdir -p {shlex.quote(str(log.parent))} && "
        f"{_env_prefix()}exec {_invocation(args)} >> {shlex.quote(str(log))} 2>&1"
    )


def render_service(cluster: str, job_id: str, args: tuple[str, ...]) -> str:
    """A systemd user service that keeps `stackspray <args>` running (restarted 30 s after a failure)."""
    return (
        "[Unit]\n"
        f"Description=stackspray {' '.join(args)}\n"
        f"{names.schedule_mark(cluster, job_id)}\n"
        "[Service]\n"
        "Type=simple\n"
        # systemd.unit(5): % starts a specifier in ExecStart; %% is a literal %.
        "ExecStart=/bin/sh -c "
        + shlex.quote(service_command_line(cluster, job_id, args)).replace("%", "%%")
        + "\n"
        "Restart=on-failure\n"
        "RestartSec=30\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def install_service(cluster: str, job_id: str, loop: tuple[str, ...], once: tuple[str, ...]) -> dict:
    """Run `stackspray <loop>` as a systemd user service where systemd runs, else `stackspray <once>`
    from crontab every minute. Returns {"backend", "id", "where"}."""
    which = backend(installing=True)
    if which == "systemd":
        d = unit_dir()
        d.mkdir(parents=True, exist_ok=True)
        name = names.schedule_unit(cluster, job_id)
        _claim_unit_name(cluster, job_id)
        (d / f"{name}.service").write_text(render_service(cluster, job_id, loop))
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", f"{name}.service")
        return {"backend": which, "id": job_id, "where": str(d / f"{name}.service")}
    _put_cron_line(cluster, job_id, "* * * * *", service_command_line(cluster, job_id, once))
    return {"backend": which, "id": job_id, "where": "crontab"}


def service_installed(cluster: str, job_id: str) -> str | None:
    """Where the service is installed (systemd | cron), or None; ours by the exact mark."""
    if _our_unit(cluster, job_id):
        return "systemd"
    mark = (cluster, job_id)
    if shutil.which("crontab") and any(names.parse_schedule_mark(ln) == mark for ln in _crontab_lines()):
        return "cron"
    return None


def remove_service(cluster: str, job_id: str) -> list[str]:
    """Stop and remove the service (either backend); returns where it was removed from."""
    removed = []
    unit = _our_unit(cluster, job_id)
    if unit:
        if shutil.which("systemctl"):
            subprocess.run(["systemctl", "--user", "disable", "--now", unit.name], capture_output=True)
        unit.unlink()
        if shutil.which("systemctl"):
            subprocess.run(["systemctl", "--user", "daemon-reload"], capture_output=True)
        removed.append("systemd")
    if shutil.which("crontab"):
        with _crontab_lock():
            lines = _crontab_lines()
            keep = [ln for ln in lines if names.parse_schedule_mark(ln) != (cluster, job_id)]
            if keep != lines:
                _write_crontab(keep)
                removed.append("cron")
        _script(cluster, job_id).unlink(missing_ok=True)
    return removed


def remove(cluster: str, job_id: str | None = None) -> list[str]:
    """Remove one job (or all of the cluster's jobs); returns the ids removed."""
    ids = [j["id"] for j in list_jobs(cluster) if job_id in (None, j["id"])]
    if job_id and not ids:
        raise ScheduleError(f"cluster {cluster!r} has no scheduled job {job_id!r} (see --list)")
    if backend() == "systemd":
        for i in ids:
            unit = _our_unit(cluster, i)  # by its mark: never another cluster's of a like name
            if unit is not None:
                _remove_units(unit.with_suffix(""))
        if ids:
            _systemctl("daemon-reload")
    elif ids:
        with _crontab_lock():
            _write_crontab(
                [
                    ln
                    for ln in _crontab_lines()
                    if not ((m := names.parse_schedule_mark(ln)) and m[0] == cluster and m[1] in ids)
                ]
            )
        for i in ids:
            _script(cluster, i).unlink(missing_ok=True)
    return ids
