"""Spec files of small clusters on the sandbox cloud, as the tests and benchmarks build them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stackspray_sandbox import lanes
from stackspray_sandbox.paths import SandboxPaths

MADE = "made-clusters"


def made_clusters(paths: SandboxPaths | None = None) -> Path:
    """The folder with one empty file per cluster name a spec was written for here: what a test
    or benchmark run interrupted before its cleanup left in the sandbox, by exact name (one per
    lane: each lane's run sweeps its own)."""
    return lanes.home((paths or SandboxPaths.default()).home) / MADE


def write_small_cluster_spec(
    directory: Path,
    name: str,
    public_key_file: Path,
    cidr: str,
    workers: int,
    *,
    control_plane_flavor: str = "m3.small",
    **extra: Any,
) -> Path:
    """Write `<directory>/<name>.yaml`: one control-plane node and `workers` m3.tiny workers on
    the `sandbox` cloud; `extra` sets further top-level fields (share, kubernetes, …). `cidr`
    (10.X.0.0/24) is moved into this process's lane (lanes.cidr), so tests side by side never
    share a network's addresses. Returns the file's path."""
    data = {
        "name": name,
        "cloud": "sandbox",
        "keypair": {"public_key_file": str(public_key_file)},
        "network": {"cidr": lanes.cidr(cidr)},
        "node_groups": {
            "control-plane": {"flavor": control_plane_flavor, "count": 1},
            "workers": {"flavor": "m3.tiny", "count": workers},
        },
        **extra,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    ledger = made_clusters()
    ledger.mkdir(parents=True, exist_ok=True)
    (ledger / name).touch()
    return path
