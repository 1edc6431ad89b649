"""Measure the sandbox's budgets: cold up, warm restart, resident memory, node SSH-ready latency.

    .venv/bin/python benchmarks/sandbox_budgets.py [--cold] [--servers 4] [--json]

--cold stops the running sandbox and brings up a new one in a fresh home folder with pip's
cache disabled (as on a fresh machine; Debian packages already installed are not removed),
then removes that folder. Without it, the running sandbox is measured (and started if needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openstack
from stackspray_sandbox import cloud
from stackspray_sandbox.paths import SandboxPaths


def ssh_ready_latency(paths: SandboxPaths, servers: int) -> list[float]:
    """Boot servers concurrently; per server, seconds from ACTIVE (seen by polling) to SSH banner."""
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(paths.clouds_yaml)
    conn = openstack.connect(cloud="sandbox")
    tag = f"bench-{int(time.time())}"
    net = conn.network.create_network(name=tag)
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.249.0.0/24", name=tag)
    image = conn.image.find_image("Featured-Ubuntu24")
    flavor = conn.compute.find_flavor("m3.tiny")
    created = []
    try:

        def one(i: int) -> float:
            s = conn.compute.create_server(
                name=f"{tag}-{i}", image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net.id}]
            )
            created.append(s)
            while True:
                s = conn.compute.get_server(s.id)
                if s.status == "ACTIVE":
                    break
                if s.status == "ERROR":
                    raise RuntimeError(f"{s.name} went to ERROR")
                time.sleep(0.1)
            active_at = time.monotonic()
            ip = next(iter(s.addresses.values()))[0]["addr"]
            while time.monotonic() - active_at < 60:
                try:
                    with socket.create_connection((ip, 22), timeout=0.5) as c:
                        c.settimeout(1)
                        if c.recv(4).startswith(b"SSH-"):
                            return time.monotonic() - active_at
                except OSError:
                    pass
                time.sleep(0.05)
            raise RuntimeError(f"{s.name} not SSH-ready within 60s of ACTIVE")

        with ThreadPoolExecutor(max_workers=servers) as pool:
            return list(pool.map(one, range(servers)))
    finally:
        for s in created:
            conn.compute.delete_server(s, ignore_missing=True)
        for s in created:
            conn.compute.wait_for_delete(s, wait=120)
        conn.network.delete_subnet(sub, ignore_missing=True)
        conn.network.delete_network(net, ignore_missing=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict = {}

    paths = SandboxPaths.default()
    if args.cold:
        cloud.down(paths)
        home = Path(tempfile.mkdtemp(prefix="stackspray-cold-"))
        os.environ["STACKSPRAY_SANDBOX_HOME"] = str(home)
        os.environ["PIP_NO_CACHE_DIR"] = "1"
        paths = SandboxPaths(home)
        t0 = time.monotonic()
        report = cloud.up(paths)
        results["cold_up_s"] = round(time.monotonic() - t0, 1)
        results["cold_steps_s"] = report.steps

    t0 = time.monotonic()
    cloud.up(paths)
    results["up_when_running_s"] = round(time.monotonic() - t0, 1)

    lat = ssh_ready_latency(paths, args.servers)
    results["ssh_ready_after_active_s"] = {
        "servers": len(lat),
        "median": round(statistics.median(lat), 2),
        "max": round(max(lat), 2),
    }
    results["resident_memory_mib_with_nodes_gone"] = round(cloud.resident_memory_kib(paths) / 1024)

    t0 = time.monotonic()
    cloud.down(paths)
    down_s = time.monotonic() - t0
    t1 = time.monotonic()
    cloud.up(paths)
    results["warm_restart_s"] = {"down": round(down_s, 1), "up": round(time.monotonic() - t1, 1)}
    results["resident_memory_mib"] = round(cloud.resident_memory_kib(paths) / 1024)

    if args.cold:
        cloud.down(paths)
        shutil.rmtree(paths.home, ignore_errors=True)
        os.environ.pop("STACKSPRAY_SANDBOX_HOME")
        os.environ.pop("PIP_NO_CACHE_DIR")
        cloud.up(SandboxPaths.default())

    if args.json:
        print(json.dumps(results))
    else:
        for k, v in results.items():
            print(f"{k:<40} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
