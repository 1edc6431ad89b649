"""Spec files of small clusters on the sandbox cloud, as the tests and benchmarks build them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


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
    the `sandbox` cloud; `extra` sets further top-level fields (share, kubernetes, …).
    Returns the file's path."""
    data = {
        "name": name,
        "cloud": "sandbox",
        "keypair": {"public_key_file": str(public_key_file)},
        "network": {"cidr": cidr},
        "node_groups": {
            "control-plane": {"flavor": control_plane_flavor, "count": 1},
            "workers": {"flavor": "m3.tiny", "count": workers},
        },
        **extra,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
