"""Scheduled scaling through real systemd user timers, as an operator's machine runs them.

This machine has no user bus, so the operator's machine is a container booted with a real
systemd (systemd-nspawn --boot from the sandbox's Debian 12 node image), sharing this machine's
network (it reaches the sandbox's APIs and the cluster's floating IP as a workstation would), with
the checkout mounted read-only at the same path. In it, user `ubuntu` gets lingering
(`loginctl enable-linger`, as docs/scaling.md says), installs a schedule with
`invoke scale.schedule` and logs out; the timer fires by itself, with no login session, and shelves
the cluster's worker in the sandbox's Nova. Then `--remove` takes the timer away again. Then the
autoscaler runs as a user service (`autoscale.enable`), wakes that worker for a pending pod by
itself, and `autoscale.disable` stops and removes it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import BIN, ROOT, invoke
from kubernetes import client
from stackspray_sandbox.nodehost import NSPAWN_FLAGS, user_ids
from stackspray_sandbox.nodeimage import IMAGE_USER
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.kube import Kube
from stackspray.state import ClusterDir

# It edits this machine's crontab or user manager: one such module at a time (tests/conftest.py).
pytestmark = pytest.mark.host_scheduler


class Machine:
    """A booted container: run commands in it as root or as the operator user."""

    def __init__(self, init_pid: int, uid: int) -> None:
        self.init_pid, self.uid = init_pid, uid

    def root(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-p", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def user(self, command: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
        """A shell command as the operator, in a fresh environment holding only `env`."""
        base = {
            "HOME": f"/home/{IMAGE_USER}",
            "USER": IMAGE_USER,
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "XDG_RUNTIME_DIR": f"/run/user/{self.uid}",
        }
        assignments = [f"{k}={v}" for k, v in {**base, **env}.items()]
        return self.root(
            "runuser",
            "-u",
            IMAGE_USER,
            "--",
            "env",
            "-i",
            *assignments,
            "sh",
            "-c",
            f"cd && {command}",
            timeout=timeout,
        )


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@contextmanager
def operator_machine(sandbox, where: Path, shared: Path):
    """Boot the operator's machine; stop it and unmount everything afterwards."""
    upper, work, root = where / "upper", where / "work", where / "root"
    for p in (upper, work, root):
        p.mkdir(parents=True)
    base = sandbox.paths.base_image
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "stackspray-operator",
            "-o",
            f"lowerdir={base},upperdir={upper},workdir={work}",
            str(root),
        ],
        check=True,
    )
    proc = None
    try:
        # Its sshd would bind this machine's port 22 (the network is shared): not wanted here.
        (root / "etc/systemd/system/ssh.service").symlink_to("/dev/null")
        (root / "etc/hostname").write_text("operator-workstation\n")
        uid, gid = user_ids(root, IMAGE_USER)
        # The checkout's .venv runs on this machine's Python (its prefix, e.g. under pyenv): the
        # same files at the same path, read-only, reachable by the operator user.
        prefix = Path(sys.base_prefix).resolve()
        for parent in prefix.parents:
            inside = root / parent.relative_to("/")
            if parent != Path("/") and inside.is_dir():
                inside.chmod(inside.stat().st_mode | 0o001)
        proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "-D",
                str(root),
                "--boot",
                f"--machine=spr-op-{uuid.uuid4().hex[:6]}",
                *NSPAWN_FLAGS,
                f"--bind-ro={ROOT}",
                f"--bind-ro={prefix}",
                f"--bind={shared}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=open(where / "console.log", "wb"),  # noqa: SIM115 (the child holds it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        machine, state = None, ""
        while time.monotonic() < deadline:
            kids = _children(proc.pid)
            if kids:
                machine = Machine(kids[0], uid)
                state = machine.root("systemctl", "is-system-running").stdout.strip()
                if state in ("running", "degraded"):
                    break
            assert proc.poll() is None, (where / "console.log").read_text(errors="replace")[-3000:]
            time.sleep(1)
        assert machine and state in ("running", "degraded"), (
            f"the operator machine did not boot (state {state!r}): "
            + (where / "console.log").read_text(errors="replace")[-3000:]
        )
        yield machine, uid, gid
    finally:
        if proc and proc.poll() is None:
            for pid in [*_children(proc.pid), proc.pid]:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            proc.wait(timeout=30)
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


def test_a_systemd_user_timer_fires_with_the_user_logged_out_and_shelves_the_worker(
    sandbox, conn, ssh_key, tmp_path_factory
):
    shared = tmp_path_factory.mktemp("operator-home")
    key = shared / "id_ed25519"
    shutil.copy(ssh_key, key)
    shutil.copy(ssh_key.with_suffix(".pub"), key.with_suffix(".pub"))
    clouds = shared / "clouds.yaml"
    shutil.copy(sandbox.clouds_yaml, clouds)
    name = f"st{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(shared, name, key.with_suffix(".pub"), "10.66.0.0/24", 1)
    env = {
        "OS_CLIENT_CONFIG_FILE": str(clouds),
        "OS_CLOUD": "sandbox",
        "STACKSPRAY_INVENTORIES": str(shared / "inv"),
    }

    def on_host(*args: str) -> subprocess.CompletedProcess:
        return invoke(sandbox, shared, *args, env=env)

    built = on_host("create-cluster", "--spec", str(spec))
    try:
        assert built.returncode == 0, built.stdout + built.stderr
        with operator_machine(sandbox, tmp_path_factory.mktemp("operator-machine"), shared) as (m, uid, gid):
            subprocess.run(["chown", "-R", f"{uid}:{gid}", str(shared)], check=True)
            linger = m.root("loginctl", "enable-linger", IMAGE_USER)
            assert linger.returncode == 0, linger.stderr
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and m.user(
                "systemctl --user is-system-running", {}
            ).stdout.strip() not in ("running", "degraded"):
                time.sleep(1)
            now = dt.datetime.now()
            when = now + dt.timedelta(minutes=1 if now.second < 45 else 2)  # 15 s is room to install
            at = f"{when:%H:%M}"
            # The installed console script, as a user runs it (from their home, no checkout's tasks.py).
            cli = str(BIN / "stackspray")
            installed = m.user(f"{cli} scale.schedule --cluster {name} --at {at} --workers 0", env)
            assert installed.returncode == 0, installed.stdout + installed.stderr
            # A daily etcd backup at the same minute: the two jobs take the cluster's schedule lock
            # in turn, and the backup is taken on the control plane and stored off the node.
            backups = m.user(f"{cli} backup.schedule --cluster {name} --at {at} --keep 2", env)
            assert backups.returncode == 0, backups.stdout + backups.stderr
            unit = m.user(
                f"cat ~/.config/systemd/user/stackspray-{name}_scale-{when:%H%M}.service", {}
            ).stdout
            exec_start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
            assert f"{BIN / 'stackspray'} scale --cluster {name} --workers 0" in exec_start, exec_start
            assert "cd " not in exec_start and "invoke" not in exec_start, exec_start
            timers = m.user("systemctl --user list-timers --all --no-legend", {}).stdout
            assert f"stackspray-{name}_" in timers, timers
            # Nobody is logged in: only lingering keeps the user's manager (and its timers) alive.
            sessions = m.root("loginctl", "list-sessions", "--no-legend").stdout.strip()
            assert sessions == "", sessions

            job = f"scale-{when:%H%M}"
            log = shared / "inv" / name / "logs" / f"scheduled-{job}.log"
            worker = f"{name}-workers-1"
            deadline = time.monotonic() + 240
            status = ""
            while time.monotonic() < deadline:
                status = conn.compute.find_server(worker).status
                if status == "SHELVED_OFFLOADED" and log.exists() and "shelve" in log.read_text():
                    break
                time.sleep(3)
            journal = m.root("journalctl", "--no-pager", "-n", "60").stdout
            assert status == "SHELVED_OFFLOADED", (
                f"{status}; log: {log.read_text() if log.exists() else '-'}\n{journal}"
            )

            backup_log = shared / "inv" / name / "logs" / "scheduled-backup.log"
            listed: dict = {}
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                listed = json.loads(m.user(f"{cli} backup.list --cluster {name} --json", env).stdout or "{}")
                if listed.get("backups"):
                    break
                time.sleep(3)
            assert len(listed.get("backups") or []) == 1, (
                f"{listed}; log: {backup_log.read_text() if backup_log.exists() else '-'}"
            )
            assert listed["backups"][0]["size"] > 0 and "stored" in backup_log.read_text()
            dropped = m.user(f"{cli} backup.schedule --cluster {name} --remove", env)
            assert dropped.returncode == 0, dropped.stdout + dropped.stderr

            removed = m.user(f"{cli} scale.schedule --cluster {name} --remove {job}", env)
            assert removed.returncode == 0, removed.stdout + removed.stderr
            timers = m.user("systemctl --user list-timers --all --no-legend", {}).stdout
            assert f"stackspray-{name}_" not in timers, timers

            # The autoscaler as a long-running user service: a pending pod wakes the shelved worker
            # with nobody logged in, the loop running by itself; disable stops and removes it.
            enabled = m.user(f"{cli} autoscale.enable --cluster {name} --on here --pending-for 0s", env)
            assert enabled.returncode == 0 and "loop: systemd" in enabled.stdout, (
                enabled.stdout + enabled.stderr
            )
            unit = f"stackspray-{name}_autoscale.service"
            active = m.user(f"systemctl --user is-active {unit}", {}).stdout.strip()
            assert active == "active", active + m.root("journalctl", "--no-pager", "-n", "40").stdout
            shown = m.user(f"systemctl --user show {unit} -p Restart -p Type", {}).stdout
            assert "Restart=on-failure" in shown and "Type=simple" in shown, shown
            kube = Kube(ClusterDir(name, shared / "inv").load().kubeconfig)
            subprocess.run(["chown", "-R", f"{uid}:{gid}", str(shared)], check=True)
            kube.core.create_namespaced_pod(
                "default",
                client.V1Pod(
                    metadata=client.V1ObjectMeta(
                        name="wake-me",
                        owner_references=[
                            client.V1OwnerReference(
                                api_version="batch/v1",
                                kind="Job",
                                name="wake",
                                uid=str(uuid.uuid4()),
                                controller=True,
                            )
                        ],
                    ),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
                ),
            )
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                pod = kube.core.read_namespaced_pod("wake-me", "default")
                if pod.spec.node_name == worker and conn.compute.find_server(worker).status == "ACTIVE":
                    break
                time.sleep(2)
            service_log = shared / "inv" / name / "logs" / "autoscale.log"
            assert pod.spec.node_name == worker, service_log.read_text() if service_log.exists() else "-"
            assert "unshelve" in service_log.read_text()
            off = m.user(f"{cli} autoscale.disable --cluster {name}", env)
            assert off.returncode == 0 and "removed: systemd" in off.stdout, off.stdout + off.stderr
            gone = m.user(f"systemctl --user is-active {unit}", {}).stdout.strip()
            assert (
                gone in ("inactive", "unknown")
                and m.user(f"ls ~/.config/systemd/user/{unit}", {}).returncode != 0
            )
    finally:
        on_host("destroy-cluster", "--cluster", name, "--yes")


@pytest.fixture(autouse=True)
def _tools():
    for tool in ("systemd-nspawn", "nsenter", "runuser"):
        assert shutil.which(tool), f"{tool} is missing (the sandbox installs systemd-container)"
