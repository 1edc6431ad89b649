"""Start, find and stop the sandbox's daemons by the PIDs it recorded.

Every daemon runs in a process group of its own (its PID is the group id), writes its output to
``logs/<name>.log`` and has its PID in ``run/<name>.pid``. Stopping signals that group only:
nothing the sandbox did not start is ever touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SandboxError
from .paths import SandboxPaths
from .shell import pid_alive


@dataclass
class Daemon:
    """A long-running process of the sandbox."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    # A URL that answers 2xx/3xx once the daemon serves (uwsgi answers 500 when its app failed to
    # import, so any other answer is not ready).
    ready_url: str | None = None


class DaemonFailed(SandboxError):
    """A daemon exited or never became ready; the message carries its log's tail."""


def pidfile(paths: SandboxPaths, name: str) -> Path:
    return paths.run / f"{name}.pid"


def read_pid(paths: SandboxPaths, name: str) -> int | None:
    try:
        return int(pidfile(paths, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def running_pid(paths: SandboxPaths, name: str) -> int | None:
    pid = read_pid(paths, name)
    return pid if pid is not None and pid_alive(pid) else None


def log_tail(paths: SandboxPaths, name: str, lines: int = 25) -> str:
    try:
        text = (paths.logs / f"{name}.log").read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def start(paths: SandboxPaths, daemon: Daemon) -> int:
    """Start the daemon unless it already runs; return its PID."""
    pid = running_pid(paths, daemon.name)
    if pid:
        return pid
    paths.run.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(daemon.env)
    with open(paths.logs / f"{daemon.name}.log", "ab") as log:
        proc = subprocess.Popen(
            list(daemon.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=daemon.cwd,
            start_new_session=True,
        )
    pidfile(paths, daemon.name).write_text(f"{proc.pid}\n")
    return proc.pid


def http_ready(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
            return 200 <= resp.status < 400
    except urllib.error.HTTPError as exc:
        return 300 <= exc.code < 400
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(paths: SandboxPaths, daemon: Daemon, timeout: float = 120.0) -> float:
    """Wait until the daemon's ready_url answers; return seconds waited. Raise DaemonFailed."""
    started = time.monotonic()
    delay = 0.1
    while True:
        if not running_pid(paths, daemon.name):
            raise DaemonFailed(
                f"{daemon.name} exited while starting; its log ends:\n{log_tail(paths, daemon.name)}"
            )
        if daemon.ready_url is None or http_ready(daemon.ready_url):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise DaemonFailed(
                f"{daemon.name} not ready at {daemon.ready_url} after {timeout:.0f}s; "
                f"its log ends:\n{log_tail(paths, daemon.name)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def stop(paths: SandboxPaths, name: str, timeout: float = 15.0, sig: int = signal.SIGTERM) -> bool:
    """Stop the daemon's process group (`sig`, then KILL); return True if it was running."""
    pid = read_pid(paths, name)
    if pid is None:
        return False
    was_running = pid_alive(pid)
    if was_running:
        _signal_group(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.1)
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _group_alive(pid):
                time.sleep(0.1)
    pidfile(paths, name).unlink(missing_ok=True)
    return was_running


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


@dataclass(frozen=True)
class ProcEntry:
    pid: int
    ppid: int
    pgid: int
    zombie: bool


def process_table() -> list[ProcEntry]:
    """Every process on the host from /proc/*/stat (state, parent, process group)."""
    table = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(") ", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2:
            table.append(ProcEntry(int(entry.name), int(fields[1]), int(fields[2]), fields[0] == "Z"))
    return table


def group_members(pgid: int) -> list[int]:
    """PIDs of the live processes in a process group (used to check nothing is left)."""
    return [p.pid for p in process_table() if p.pgid == pgid and not p.zombie]
