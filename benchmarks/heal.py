"""`invoke heal`'s replacement of a broken worker against its floor, in one run on the sandbox.

    .venv/bin/python benchmarks/heal.py [--rounds 2] [--json]

A cluster of 1 control plane + 2 m3.tiny workers built by create-cluster with Kubernetes (the
Kubespray stand-in). Each round, alternating:

  stackspray  worker 1's node host killed (its server stays ACTIVE, its Node goes NotReady after
              the grace period), both reboots recorded as failed in heal's memory so the next
              remedy is the replacement; then heal() timed: observe, plan, remove-node.yml
              (ungraceful), the server deleted, create-cluster's converge making it again on its
              port and joining it (prepare-nodes, facts, scale.yml), the Node waited for Ready.
  floor       the same worker replaced with nothing but the calls: the server deleted and made
              again on the same port through openstacksdk, waited ACTIVE, then the join
              stackspray uses (prepare-nodes, facts, scale.yml --limit), no removal, no checks.

The ratio (median stackspray / median floor) is what heal's care costs: the removal from
Kubernetes first and the converge's observation. Torn down afterwards.
"""

from __future__ import annotations

import argparse
import json
import time

import openstack
from sandbox_cluster import QUIET, ratio_line, ratio_row, sandbox_cluster, wait
from stackspray_sandbox import faults

from stackspray import inventory, kubespray
from stackspray.cluster_state import HealAttempt, HealMemory
from stackspray.heal import heal
from stackspray.kube import Kube
from stackspray.target import resolve


def node_ready(kubeconfig: str, node: str) -> bool:
    n = next((x for x in Kube(kubeconfig).list_json("nodes") if x["metadata"]["name"] == node), None)
    conds = (n or {}).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ours, floors = [], []
    with sandbox_cluster("bh", "10.97.0.0/24", 2) as c:
        conn = openstack.connect(cloud="sandbox")
        node = f"{c.name}-workers-1"
        kubeconfig = c.cdir.load().kubeconfig
        for _ in range(args.rounds):
            server = conn.compute.find_server(node)
            faults.kill_node(server.id, paths=c.paths)
            wait(lambda: not node_ready(kubeconfig, node), "NotReady", timeout=120)
            state = c.cdir.load()
            state.heal[node] = HealMemory(
                unhealthy_since=0.0,
                attempts=[
                    HealAttempt("soft-reboot", 1.0, "failed"),
                    HealAttempt("hard-reboot", 2.0, "failed"),
                ],
            )
            c.cdir.save(state)
            t0 = time.monotonic()
            done = heal(c.name, root=c.root, progress=QUIET)
            ours.append(time.monotonic() - t0)
            if [r["outcome"] for r in done.remedies] != ["ok"]:
                raise SystemExit(f"heal did not replace {node}: {done.remedies}")

            server = conn.compute.find_server(node)
            port = next(iter(conn.network.ports(device_id=server.id)))
            t0 = time.monotonic()
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, wait=600)
            again = conn.compute.create_server(
                name=node,
                image_id=server.image.id,
                flavor_id=conn.compute.find_flavor("m3.tiny").id,
                key_name=server.key_name,
                networks=[{"port": port.id}],
                metadata=server.metadata,
            )
            conn.compute.wait_for_server(again, wait=600)
            inventory.forget_host_keys(c.cdir.path, [port.fixed_ips[0]["ip_address"]])
            kubespray.add_workers(conn, c.spec, c.cdir, QUIET, [node], resolve(conn, c.spec))
            wait(lambda: node_ready(kubeconfig, node), "Ready", timeout=300)
            floors.append(time.monotonic() - t0)
    row = ratio_row(ours, floors)
    print(json.dumps(row) if args.json else ratio_line("heal (replace)", row))


if __name__ == "__main__":
    main()
