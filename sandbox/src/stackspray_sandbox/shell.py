"""Small helpers for running host commands from the sandbox (never used against a real cloud)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence

from .errors import SandboxError

log = logging.getLogger(__name__)


class CommandFailed(SandboxError):
    """A host command the sandbox needs exited non-zero."""

    def __init__(self, cmd: Sequence[str], rc: int, output: str) -> None:
        self.cmd = list(cmd)
        self.rc = rc
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-15:])
        super().__init__(f"command failed (exit {rc}): {' '.join(self.cmd)}\n{tail}")


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture stdout+stderr together, raise CommandFailed on a non-zero exit."""
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    log.debug("run: %s", " ".join(cmd))
    proc = subprocess.run(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(cmd, proc.returncode, proc.stdout)
    return proc


def pid_alive(pid: int) -> bool:
    """True while a process with this PID exists (and is not a zombie we own)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
