"""A cluster on the sandbox for one benchmark run (created by create-cluster with the Kubespray
stand-in, destroyed afterwards, its backups too), and the row every benchmark prints: medians of
stackspray and of its floor, and their ratio."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stackspray_sandbox.paths import SandboxPaths
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.progress import Progress
from stackspray.spec import ClusterSpec, load_spec
from stackspray.state import ClusterDir

QUIET = Progress(emit=lambda m: None)


@dataclass
class BenchCluster:
    name: str
    spec: ClusterSpec
    cdir: ClusterDir
    root: Path  # the inventories folder
    key: Path  # the private key of the sandbox's demo keypair
    tmp: Path
    paths: SandboxPaths


@contextmanager
def sandbox_cluster(prefix: str, cidr: str, workers: int, **extra) -> Iterator[BenchCluster]:
    """1 control plane + `workers` m3.tiny workers named `<prefix><random>`, on `cidr`; `extra`:
    more top-level spec fields (e.g. kubernetes)."""
    paths = SandboxPaths.default()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(paths.clouds_yaml))
    key = paths.home / "demo_id_ed25519"
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    root = tmp / "inventories"
    name = f"{prefix}{uuid.uuid4().hex[:5]}"
    try:
        spec = load_spec(write_small_cluster_spec(tmp, name, key.with_suffix(".pub"), cidr, workers, **extra))
        create_cluster(spec, progress=QUIET, root=root)
        yield BenchCluster(name, spec, ClusterDir(name, root), root, key, tmp, paths)
    finally:
        destroy_cluster(name, cloud="sandbox", root=root, progress=QUIET, delete_backups=True)


def wait(check, what: str, timeout: float = 600) -> None:
    """Poll `check` every 0.5 s until it is true; exit the benchmark naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not after {timeout:.0f}s")
        time.sleep(0.5)


def ratio_row(ours: list[float], floors: list[float]) -> dict:
    """Medians of both, every run, and the ratio of the medians."""
    row = {
        "stackspray_s": round(statistics.median(ours), 2),
        "floor_s": round(statistics.median(floors), 2),
        "runs": [round(t, 2) for t in ours],
        "floors": [round(t, 2) for t in floors],
    }
    row["ratio"] = round(row["stackspray_s"] / row["floor_s"], 2)
    return row


def ratio_line(what: str, row: dict) -> str:
    return (
        f"{what} {row['stackspray_s']:.1f}s, floor {row['floor_s']:.1f}s, ratio {row['ratio']:.2f} "
        f"(runs {row['runs']}, floors {row['floors']})"
    )
