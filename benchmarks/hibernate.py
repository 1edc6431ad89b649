"""`invoke hibernate` and `invoke wake` against their floors, in one run on the sandbox.

    .venv/bin/python benchmarks/hibernate.py [--rounds 2] [--json]

A cluster of 1 control plane + 2 m3.tiny workers built by create-cluster with Kubernetes (the
Kubespray stand-in; no backups set up, so no snapshot). Each round, alternating:

  stackspray  hibernate() timed (record, cordons under the node Lease, workers shelved, etcd
              stopped over Ansible, the control plane shelved), then wake() timed (control plane
              unshelved, SSH and etcd's health over Ansible, /readyz, the certificate and
              credential checks, the workers unshelved through scale with Ready and uncordon).
  floor       the same with nothing but the calls: every server shelved at once through
              openstacksdk and waited SHELVED_OFFLOADED; then the control plane unshelved and
              waited ACTIVE and /readyz ok, the workers unshelved and their Nodes waited Ready.

The ratios (median stackspray / median floor) are what the order and the checks cost.
"""

from __future__ import annotations

import argparse
import json
import time

import openstack
from sandbox_cluster import QUIET, ratio_line, ratio_row, sandbox_cluster, wait

from stackspray.hibernate import hibernate, wake
from stackspray.kube import Kube, KubeError


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sleep, sleep_floor, up, up_floor = [], [], [], []
    with sandbox_cluster("bz", "10.96.0.0/24", 2) as c:
        conn = openstack.connect(cloud="sandbox")
        kube = Kube(c.cdir.load().kubeconfig)
        names = [f"{c.name}-control-plane-1", f"{c.name}-workers-1", f"{c.name}-workers-2"]

        def statuses() -> dict[str, str]:
            return {s.name: s.status for s in conn.compute.servers() if s.name in names}

        def ready() -> bool:
            try:
                return kube.readyz()
            except KubeError:
                return False

        def nodes_ready(which: list[str]) -> bool:
            try:
                got = {n["metadata"]["name"]: n for n in kube.list_json("nodes")}
            except KubeError:
                return False
            return all(
                any(x["type"] == "Ready" and x["status"] == "True" for x in got[w]["status"]["conditions"])
                for w in which
                if w in got
            )

        for _ in range(args.rounds):
            t0 = time.monotonic()
            hibernate(c.name, root=c.root, progress=QUIET)
            sleep.append(time.monotonic() - t0)
            t0 = time.monotonic()
            wake(c.name, root=c.root, progress=QUIET)
            up.append(time.monotonic() - t0)

            servers = {s.name: s for s in conn.compute.servers() if s.name in names}
            t0 = time.monotonic()
            for s in servers.values():
                conn.compute.shelve_server(s)
            wait(lambda: set(statuses().values()) == {"SHELVED_OFFLOADED"}, "shelved")
            sleep_floor.append(time.monotonic() - t0)
            t0 = time.monotonic()
            conn.compute.unshelve_server(servers[names[0]])
            wait(lambda: statuses()[names[0]] == "ACTIVE" and ready(), "control plane")
            for w in names[1:]:
                conn.compute.unshelve_server(servers[w])
            wait(lambda: nodes_ready(names[1:]) and set(statuses().values()) == {"ACTIVE"}, "workers")
            up_floor.append(time.monotonic() - t0)
    rows = {"hibernate": ratio_row(sleep, sleep_floor), "wake": ratio_row(up, up_floor)}
    if args.json:
        print(json.dumps(rows))
    else:
        for what, row in rows.items():
            print(ratio_line(what, row))


if __name__ == "__main__":
    main()
