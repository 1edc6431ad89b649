"""The share step's wall time on the sandbox (playbooks/manila-share.yml through ansible-runner).

    .venv/bin/python benchmarks/share.py [--workers 1 4] [--json]

For each N: a cluster of 1 control plane + N m3.tiny workers with a share and
`mount_on_nodes: true`, built by create-cluster (which applies the share once); then timed around
the library call: `invoke share --force` (Kubernetes objects through kubernetes.core against the
Kubernetes API stand-in, plus the node play on every node), `invoke share --force` with the node
mounts turned off (Kubernetes objects only), and a call with nothing changed (no playbook runs).
Torn down afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from stackspray_sandbox.paths import SandboxPaths
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.progress import Progress
from stackspray.share import apply_share
from stackspray.spec import load_spec


def timed(fn, *args, **kwargs) -> tuple[float, dict]:
    t0 = time.monotonic()
    out = fn(*args, **kwargs)
    return round(time.monotonic() - t0, 1), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = SandboxPaths.default()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(paths.clouds_yaml))
    quiet = Progress(emit=lambda m: None)
    key = paths.home / "demo_id_ed25519.pub"
    rows = []
    for n in args.workers:
        tmp = Path(tempfile.mkdtemp(prefix="bench-share-"))
        inv = tmp / "inventories"
        name = f"bh{uuid.uuid4().hex[:5]}"
        try:
            share = {"size_gb": 2, "mount_on_nodes": True}
            spec = load_spec(write_small_cluster_spec(tmp, name, key, "10.96.0.0/24", n, share=share))
            create_cluster(spec, progress=quiet, root=inv)
            t_nodes, r1 = timed(apply_share, spec, force=True, progress=quiet, root=inv)
            t_noop, r2 = timed(apply_share, spec, progress=quiet, root=inv)
            share["mount_on_nodes"] = False
            k8s_only = load_spec(write_small_cluster_spec(tmp, name, key, "10.96.0.0/24", n, share=share))
            t_k8s, r3 = timed(apply_share, k8s_only, force=True, progress=quiet, root=inv)
            assert r1["ran"] and not r2["ran"] and r3["ran"]
            rows.append(
                {
                    "nodes": n + 1,
                    "k8s_and_node_mounts_s": t_nodes,
                    "k8s_objects_only_s": t_k8s,
                    "nothing_changed_s": t_noop,
                }
            )
        finally:
            destroy_cluster(name, cloud="sandbox", root=inv, progress=quiet)
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"{'nodes':>5} {'k8s + node mounts':>18} {'k8s objects only':>17} {'nothing changed':>16}")
        for r in rows:
            print(
                f"{r['nodes']:>5} {r['k8s_and_node_mounts_s']:>17.1f}s {r['k8s_objects_only_s']:>16.1f}s "
                f"{r['nothing_changed_s']:>15.1f}s"
            )


if __name__ == "__main__":
    main()
