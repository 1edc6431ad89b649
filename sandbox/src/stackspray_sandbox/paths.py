"""Where the sandbox keeps its installs, its base image and its running state."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import lanes


def sandbox_home() -> Path:
    """The folder the sandbox owns: $STACKSPRAY_SANDBOX_HOME or ~/.cache/stackspray/sandbox."""
    env = os.environ.get("STACKSPRAY_SANDBOX_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "stackspray" / "sandbox"


@dataclass(frozen=True)
class SandboxPaths:
    """Every path the sandbox uses, derived from one home folder."""

    home: Path

    @classmethod
    def default(cls) -> SandboxPaths:
        return cls(sandbox_home())

    @property
    def venv(self) -> Path:
        """The virtualenv holding the upstream OpenStack services."""
        return self.home / "svc-venv"

    @property
    def base_image(self) -> Path:
        """The debootstrapped Debian root every node host overlays (built once, cached)."""
        return self.home / "base"

    @property
    def state(self) -> Path:
        """Databases, configs, logs and node disks of the running cloud."""
        return self.home / "state"

    @property
    def etc(self) -> Path:
        return self.state / "etc"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        """PID files of every process the sandbox started."""
        return self.state / "run"

    @property
    def nodes(self) -> Path:
        return self.state / "nodes"

    @property
    def faults(self) -> Path:
        """Fault-injection control files read by the sandbox's Nova driver."""
        return self.state / "faults"

    @property
    def clouds_yaml(self) -> Path:
        """This process's lane's clouds.yaml (lanes.py; lane 0: in the home folder)."""
        return lanes.home(self.home) / "clouds.yaml"

    @property
    def secrets(self) -> Path:
        """Generated passwords of the sandbox (0600)."""
        return self.home / "secrets.json"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    @property
    def dns_venv(self) -> Path:
        """Designate's own virtualenv (its libraries stay apart from the other services')."""
        return self.home / "dns-venv"

    def dns_bin(self, name: str) -> Path:
        return self.dns_venv / "bin" / name
