"""Soft scaling wall time on the sandbox: shelve and unshelve 1, 4 and 8 workers in one run.

    .venv/bin/python benchmarks/scale.py [--counts 1 4 8] [--json]

Creates a cluster of 1 control plane + 8 m3.tiny workers through the Kubespray stand-in (so the
Kubernetes API stand-in answers cordon, drain and Ready), puts one ReplicaSet pod on every
worker, then for each N: `scale --workers 8-N` (cordon, drain, shelve, wait SHELVED_OFFLOADED)
and `scale --workers 8` (unshelve, wait ACTIVE, wait Ready, uncordon), timed around the library
call. Goal (issue 6): 8 nodes take no more than 1.3x the time of 1. Torn down afterwards.

For comparison each N is also done with Nova alone (no cordon, drain or Ready wait): N shelve
calls at once, then the servers listed every 0.2 s until all are SHELVED_OFFLOADED, and the same
for unshelve. That is the floor any tool meets on this cloud: on the sandbox one nova-compute on
2 cores does the shelving, so it grows with N there whatever the client does.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openstack
from floors import put_pods  # benchmarks/ is the script's folder, first on sys.path
from stackspray_sandbox.paths import SandboxPaths
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.cluster import cluster_status, create_cluster, destroy_cluster
from stackspray.kube import Kube
from stackspray.progress import Progress
from stackspray.scale import Request, scale_cluster
from stackspray.spec import load_spec

TOTAL = 8


def nova_only(conn, name: str, n: int) -> tuple[float, float]:
    """Seconds for Nova alone to shelve n workers, and to unshelve them (calls at once, tight poll)."""
    servers = [s for s in conn.compute.servers(name=f"^{name}-workers-") if s.status == "ACTIVE"][:n]
    ids = {s.id for s in servers}
    times = []
    for call, want in (
        (conn.compute.shelve_server, "SHELVED_OFFLOADED"),
        (conn.compute.unshelve_server, "ACTIVE"),
    ):
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(call, ids))
        while True:
            done = [s for s in conn.compute.servers(name=f"^{name}-workers-") if s.id in ids]
            if all(s.status == want and not s.task_state for s in done):
                break
            time.sleep(0.2)
        times.append(round(time.monotonic() - t0, 1))
    return times[0], times[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = SandboxPaths.default()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(paths.clouds_yaml))
    quiet = Progress(emit=lambda m: None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    inv = tmp / "inventories"
    name = f"bs{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp, name, paths.home / "demo_id_ed25519.pub", "10.98.0.0/24", TOTAL)
    rows = []
    try:
        result = create_cluster(load_spec(spec), progress=quiet, root=inv)
        kube = Kube(result.kubeconfig)
        conn = openstack.connect(cloud="sandbox")
        put_pods(kube.core, [f"{name}-workers-{i}" for i in range(1, TOTAL + 1)], "a")
        for n in args.counts:
            full = cluster_status(name, root=inv).su_per_hour
            t0 = time.monotonic()
            down = scale_cluster(name, Request(workers=TOTAL - n), progress=quiet, root=inv)
            t_shelve = time.monotonic() - t0
            t0 = time.monotonic()
            up = scale_cluster(name, Request(workers=TOTAL), progress=quiet, root=inv)
            t_unshelve = time.monotonic() - t0
            assert down.ok and up.ok, (down.to_dict(), up.to_dict())
            assert sum(s.action == "shelve" for s in down.steps) == n
            nova_shelve, nova_unshelve = nova_only(conn, name, n)
            rows.append(
                {
                    "workers": n,
                    "shelve_s": round(t_shelve, 1),
                    "unshelve_s": round(t_unshelve, 1),
                    "nova_only_shelve_s": nova_shelve,
                    "nova_only_unshelve_s": nova_unshelve,
                    "su_per_hour_full": full,
                    "su_per_hour_saved": full - down.su_per_hour_after,
                }
            )
    finally:
        destroy_cluster(name, cloud="sandbox", root=inv, progress=quiet)
    base = rows[0]
    for r in rows:
        r["shelve_vs_first"] = round(r["shelve_s"] / base["shelve_s"], 2)
        r["unshelve_vs_first"] = round(r["unshelve_s"] / base["unshelve_s"], 2)
    if args.json:
        print(json.dumps(rows))
        return
    head = (
        "workers",
        "shelve s",
        "x first",
        "Nova alone",
        "unshelve s",
        "x first",
        "Nova alone",
        "SU/h saved",
    )
    print(" ".join(f"{h:>10}" for h in head))
    for r in rows:
        cells = (
            r["workers"],
            r["shelve_s"],
            r["shelve_vs_first"],
            r["nova_only_shelve_s"],
            r["unshelve_s"],
            r["unshelve_vs_first"],
            r["nova_only_unshelve_s"],
            f"{r['su_per_hour_saved']:g}",
        )
        print(" ".join(f"{c:>10}" for c in cells))


if __name__ == "__main__":
    main()
