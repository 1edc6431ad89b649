"""`invoke certs.renew` against its floor, in one run on the sandbox.

    .venv/bin/python benchmarks/certs_renew.py [--json]

A cluster of 1 control plane + 1 m3.tiny worker, built by create-cluster with Kubernetes (the
Kubespray stand-in). Then, three times each, alternating:

  stackspray  certs_renew.renew(): the lock, the expiry read from the API server's handshake,
              playbooks/certs-renew.yml through ansible-runner (check-expiration, renew all, the
              control-plane pods restarted, the API server waited for, check-expiration; then
              kubeadm kubeconfig user and the kubeconfig written), the expiry read again.
  floor       the same node work over one ssh connection each, nothing else: `kubeadm certs renew
              all`, the pods removed, the port waited for, in one command; `kubeadm kubeconfig
              user` in a second. No Ansible, no checks, no file written.

The ratio (median stackspray / median floor) is what stackspray's own work costs. Torn down
afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from floors import ssh_to_first_control_plane
from sandbox_cluster import QUIET, ratio_line, ratio_row, sandbox_cluster

from stackspray.certs_renew import renew
from stackspray.state import ClusterDir

NODE_WORK = (
    "/usr/local/bin/kubeadm certs renew all >/dev/null && "
    "/usr/local/bin/crictl pods --namespace kube-system "
    "--name 'kube-scheduler-*|kube-controller-manager-*|kube-apiserver-*|etcd-*' -q "
    "| xargs -r /usr/local/bin/crictl rmp -f >/dev/null && "
    "until (echo > /dev/tcp/127.0.0.1/6443) 2>/dev/null; do sleep 0.1; done"
)
KUBECONFIG = (
    "sudo /usr/local/bin/kubeadm kubeconfig user --client-name=kubernetes-admin-cluster.local >/dev/null"
)


def floor(cdir: ClusterDir, key: Path, user: str) -> float:
    ssh = ssh_to_first_control_plane(cdir, key, user)
    t0 = time.monotonic()
    for command in (f"sudo bash -c {NODE_WORK!r}", KUBECONFIG):
        done = subprocess.run([*ssh, command], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"floor: {command} exited {done.returncode}: {done.stderr.strip()}")
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ours, floors = [], []
    with sandbox_cluster("bc", "10.95.0.0/24", 1) as c:
        for _ in range(args.rounds):
            t0 = time.monotonic()
            renew(c.name, root=c.root, progress=QUIET)
            ours.append(time.monotonic() - t0)
            floors.append(floor(c.cdir, c.key, c.spec.ssh_user))
    row = ratio_row(ours, floors)
    print(json.dumps(row) if args.json else ratio_line("certs.renew", row))


if __name__ == "__main__":
    main()
