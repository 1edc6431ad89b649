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
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from floors import ssh_to_first_control_plane
from stackspray_sandbox.paths import SandboxPaths
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.certs_renew import renew
from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.progress import Progress
from stackspray.spec import load_spec
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
    paths = SandboxPaths.default()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(paths.clouds_yaml))
    quiet = Progress(emit=lambda m: None)
    key = paths.home / "demo_id_ed25519"
    tmp = Path(tempfile.mkdtemp(prefix="bench-certs-"))
    inv = tmp / "inventories"
    name = f"bc{uuid.uuid4().hex[:5]}"
    ours, floors = [], []
    try:
        spec = load_spec(write_small_cluster_spec(tmp, name, key.with_suffix(".pub"), "10.95.0.0/24", 1))
        create_cluster(spec, progress=quiet, root=inv)
        cdir = ClusterDir(name, inv)
        for _ in range(args.rounds):
            t0 = time.monotonic()
            renew(name, root=inv, progress=quiet)
            ours.append(time.monotonic() - t0)
            floors.append(floor(cdir, key, spec.ssh_user))
    finally:
        destroy_cluster(name, cloud="sandbox", root=inv, progress=quiet)
    row = {
        "stackspray_s": round(statistics.median(ours), 2),
        "floor_s": round(statistics.median(floors), 2),
        "runs": [round(t, 2) for t in ours],
        "floors": [round(t, 2) for t in floors],
    }
    row["ratio"] = round(row["stackspray_s"] / row["floor_s"], 2)
    if args.json:
        print(json.dumps(row))
    else:
        print(
            f"certs.renew {row['stackspray_s']:.1f}s, floor {row['floor_s']:.1f}s, ratio {row['ratio']:.2f} "
            f"(runs {row['runs']}, floors {row['floors']})"
        )


if __name__ == "__main__":
    main()
