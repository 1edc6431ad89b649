"""The floor any client meets on this cloud: Nova alone booting N servers at once.

    .venv/bin/python benchmarks/nova_floor.py [--counts 2 6 21] [--json]

For each N (1 control plane + N-1 workers: 2, 6 and 21 match create-cluster's 1, 5 and 20
workers): N server creates sent at once (8 in flight, as create-cluster does) on a throwaway
network, then all servers listed every 0.5 s until every one is ACTIVE. No network, security
group, port, floating IP or Kubernetes work — just Nova. The ratio of the largest N to the
smallest bounds from below what "20 workers in 1.5x the time of 1" can reach on this machine.
Everything is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import openstack
from stackspray_sandbox.paths import SandboxPaths


def boot(conn, net_id: str, image_id: str, flavor_id: str, n: int, tag: str) -> float:
    names = [f"{tag}-{i}" for i in range(n)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda name: conn.compute.create_server(
                    name=name, image_id=image_id, flavor_id=flavor_id, networks=[{"uuid": net_id}]
                ),
                names,
            )
        )
    while True:
        servers = [s for s in conn.compute.servers(name=f"^{tag}-") if s.name in names]
        if any(s.status == "ERROR" for s in servers):
            raise RuntimeError("a server went to ERROR")
        if len(servers) == n and all(s.status == "ACTIVE" for s in servers):
            return time.monotonic() - t0
        time.sleep(0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", type=int, nargs="+", default=[2, 6, 21])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(SandboxPaths.default().clouds_yaml))
    conn = openstack.connect(cloud="sandbox")
    image = conn.image.find_image("Featured-Ubuntu24")
    flavor = conn.compute.find_flavor("m3.tiny")
    tag = f"floor{uuid.uuid4().hex[:5]}"
    net = conn.network.create_network(name=f"{tag}-net")
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.96.0.0/24", name=f"{tag}-subnet")
    rows = []
    try:
        for n in args.counts:
            seconds = boot(conn, net.id, image.id, flavor.id, n, f"{tag}-{n}")
            rows.append({"servers": n, "seconds": round(seconds, 1)})
            for s in list(conn.compute.servers(name=f"^{tag}-{n}-")):
                conn.compute.delete_server(s)
            for s in list(conn.compute.servers(name=f"^{tag}-{n}-")):
                conn.compute.wait_for_delete(s, wait=300)
    finally:
        for s in list(conn.compute.servers(name=f"^{tag}-")):
            conn.compute.delete_server(s)
            conn.compute.wait_for_delete(s, wait=300)
        for p in list(conn.network.ports(network_id=net.id)):
            conn.network.delete_port(p)
        conn.network.delete_network(net)
    for r in rows:
        r["vs_first"] = round(r["seconds"] / rows[0]["seconds"], 2)
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"{'servers':>8} {'seconds':>8} {'x first':>8}")
        for r in rows:
            print(f"{r['servers']:>8} {r['seconds']:>8} {r['vs_first']:>8}")


if __name__ == "__main__":
    main()
