"""`invoke upgrade` against the sum of its per-node floor, in one run on the sandbox.

    .venv/bin/python benchmarks/upgrade.py [--json]

A cluster of 1 control plane + 2 m3.tiny workers built at Kubernetes 1.33.11 by create-cluster
(the Kubespray stand-in), a Deployment of 4 pods under a PodDisruptionBudget (minAvailable 3).

  stackspray  upgrade() to 1.34.7 timed: observe, plan, the spec rewritten, an etcd backup,
              upgrade-cluster.yml limited to the three nodes (control plane alone, then the
              workers in batches), the versions read back.
  floor       for each node in turn, nothing but the work: cordon, drain through the Eviction API
              (the budget respected), the kubelet's version written where the stand-in's node
              role writes it (one SSH command), the Node waited Ready, uncordon — summed.

The ratio (stackspray / floor) is what Kubespray's playbook and stackspray's care cost above the
per-node work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from sandbox_cluster import QUIET, sandbox_cluster

from stackspray.kube import Kube
from stackspray.upgrade import upgrade

WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "web", "image": "x", "resources": {"requests": {"cpu": "100m"}}}]
            },
        },
    },
}
BUDGET = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with sandbox_cluster("bu", "10.95.0.0/24", 2, kubernetes={"kube_version": "1.33.11"}) as c:
        state = c.cdir.load()
        kube = Kube(state.kubeconfig)
        kube.put_object("/apis/apps/v1/namespaces/default/deployments", WEB)
        kube.put_object("/apis/policy/v1/namespaces/default/poddisruptionbudgets", BUDGET)
        time.sleep(5)
        t0 = time.monotonic()
        done = upgrade(c.name, "1.34.7", root=c.root, progress=QUIET)
        ours = time.monotonic() - t0
        if set(done.kubelets.values()) != {"1.34.7"}:
            raise SystemExit(f"the upgrade did not reach every node: {done.kubelets}")
        cp_ip = state.servers[f"{c.name}-control-plane-1"].fixed_ip
        floor = 0.0
        for node in sorted(done.kubelets):
            t0 = time.monotonic()
            kube.cordon(node)
            drained = kube.drain(node, timeout=360)
            if not drained.ok:
                raise SystemExit(f"floor: {node} not drained: {drained.blocked}")
            subprocess.run(
                [
                    "ssh",
                    "-i",
                    str(c.key),
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    f"ubuntu@{cp_ip}",
                    f"echo 1.34.7 | sudo tee /opt/stackspray-kube-api-standin/versions/{node}",
                ],
                check=True,
                capture_output=True,
            )
            kube.wait_ready(node, timeout=300)
            kube.uncordon(node)
            floor += time.monotonic() - t0
    row = {"stackspray_s": round(ours, 1), "floor_s": round(floor, 1), "ratio": round(ours / floor, 2)}
    print(
        json.dumps(row)
        if args.json
        else f"upgrade (1 + 2 nodes) {ours:.1f}s, floor {floor:.1f}s, ratio {row['ratio']:.2f}"
    )


if __name__ == "__main__":
    main()
