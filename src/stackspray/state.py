"""A cluster's folder, `inventories/<name>/`: its state file, its secrets and its lock.

- `state.json`: the observed resources (ids, IPs, flavors, statuses) the later steps read;
  rewritten atomically after every change so an interrupted run leaves a readable file.
- `secrets/`: files that hold secrets (mode 0600, folder 0700), e.g. the share's access key.
- `.lock`: held (flock) for the whole of a command that changes the cluster; a second command on
  the same cluster refuses at once with the holder's PID.
- `logs/<command>-<UTC>.log`: one log per run (`ClusterDir.command`), the failure included.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .cluster_state import ClusterState, StateError
from .errors import LockedError, StackSprayError
from .files import atomic_write
from .paths import inventories_root

log = logging.getLogger("stackspray")


@dataclass(frozen=True)
class Run:
    """One command's run on a cluster: where its log is."""

    command: str
    log: Path


class ClusterDir:
    """Paths and files of one cluster's folder."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        self.name = name
        self.path = (root or inventories_root()) / name

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def secrets(self) -> Path:
        return self.path / "secrets"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def exists(self) -> bool:
        return self.state_file.exists()

    def load(self) -> ClusterState:
        """The cluster's state (an empty, falsy ClusterState when there is no state file yet)."""
        try:
            text = self.state_file.read_text()
        except FileNotFoundError:
            return ClusterState()
        except UnicodeDecodeError:
            text = None
        if not text or not text.strip():
            raise StateError(
                f"{self.state_file} is empty or unreadable (a crash while it was written?): move it aside "
                "and re-run `invoke create-cluster` with the cluster's spec, which finds the cluster's "
                "resources by their marks and writes it again"
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(
                f"{self.state_file} is not valid JSON ({exc}): move it aside and re-run "
                "`invoke create-cluster` with the cluster's spec to write it again"
            ) from None
        return ClusterState.from_dict(data, str(self.state_file))

    def save(self, state: ClusterState) -> None:
        """Write the state atomically and durably (fsync of the file and the folder)."""
        state.updated_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write(self.state_file, json.dumps(state.to_dict(), indent=2, sort_keys=True) + "\n", 0o644)

    def write_secret(self, name: str, value: str) -> Path:
        """Write a secret file (0600 in a 0700 folder), durably; the value is never logged."""
        self.secrets.mkdir(parents=True, exist_ok=True)
        self.secrets.chmod(0o700)
        return atomic_write(self.secrets / name, value, 0o600)

    def read_secret(self, name: str) -> str | None:
        try:
            return (self.secrets / name).read_text()
        except FileNotFoundError:
            return None

    @contextmanager
    def lock(self, command: str, file: str = ".lock"):
        """Hold the cluster's lock (or another of its locks: the autoscaler's loop has its own);
        raise LockedError naming the holder if someone else has it."""
        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / file, "a+")  # noqa: SIM115 (held for the block)
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise LockedError(
                    f"cluster {self.name!r} is busy: {holder} holds {self.path / file}; "
                    "wait for it to finish (or, if that process is gone, re-run: the lock is released "
                    "when its holder exits)"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"stackspray {command} (pid {os.getpid()})\n")
            fh.flush()
            yield
        finally:
            fh.close()

    @contextmanager
    def run_log(self, command: str) -> Iterator[Path]:
        """Log this run to logs/<command>-<UTC time>.log; a failure is logged (with its traceback
        when it is not one of ours) before the log is closed."""
        self.logs.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.logs / f"{command.replace('.', '-')}-{stamp}.log"
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(logging.INFO)
        try:
            yield path
        except StackSprayError as exc:
            log.error("%s failed: %s", command, exc)
            raise
        except BaseException:
            log.exception("%s failed with an unexpected error", command)
            raise
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()

    @contextmanager
    def command(self, command: str) -> Iterator[Run]:
        """A command that changes the cluster: hold its lock and log the run.

        `with cdir.command("scale") as run:` — run.log is the log file."""
        with self.lock(command), self.run_log(command) as path:
            yield Run(command, path)
