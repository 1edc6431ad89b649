"""create-cluster vs a plain sequential `openstack` CLI script, on the sandbox cloud.

    .venv/bin/python benchmarks/create_cluster.py [--workers 1 5 20] [--json]

For each worker count: wall time and OpenStack API calls (counted by the sandbox's proxy, all
services including Keystone) of `create-cluster` for a new cluster (1 control plane + N workers,
m3.tiny), then of a bash script that creates the same resources one `openstack` command at a
time, waiting for each server as Jetstream2's documentation does. Both are torn down afterwards.
Both sides provision only (no Kubernetes): create-cluster runs with kubernetes=False.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from stackspray_sandbox import faults
from stackspray_sandbox.paths import SandboxPaths
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.progress import Progress
from stackspray.spec import load_spec

CLI_SCRIPT = r"""
set -euo pipefail
o() { openstack "$@" >/dev/null; }
N=$1; C=$2; KEY=$3; CIDR=$4
o network create $C-net
o subnet create --network $C-net --subnet-range $CIDR $C-subnet
o router add subnet auto_allocated_router $C-subnet
o security group create $C-cluster
o security group rule create --ingress --ethertype IPv4 --remote-group $C-cluster $C-cluster
o security group create $C-ssh
o security group rule create --ingress --protocol tcp --dst-port 22 --remote-ip 0.0.0.0/0 $C-ssh
o security group create $C-api
o security group rule create --ingress --protocol tcp --dst-port 6443 --remote-ip 0.0.0.0/0 $C-api
o security group create $C-nodeport
o security group rule create --ingress --protocol tcp --dst-port 30000:32767 --remote-ip 0.0.0.0/0 $C-nodeport
o keypair create --public-key $KEY $C-key
o server group create --policy soft-anti-affinity $C-control-plane
# Nova allows 10 members per server group by default: one group per 10 workers.
for g in $(seq 1 $(( (N + 9) / 10 ))); do
  o server group create --policy soft-anti-affinity $C-workers-$g
done
boot() {  # name group sg flavor
  o port create --network $C-net --security-group $C-cluster --security-group $C-ssh --security-group $3 \
    --allowed-address ip-address=10.233.64.0/18 --allowed-address ip-address=10.233.0.0/18 $1-port
  o server create --image Featured-Ubuntu24 --flavor $4 --port $1-port --key-name $C-key \
    --hint group=$(openstack server group show $2 -f value -c id) --wait $1
}
boot $C-control-plane-1 $C-control-plane $C-api m3.tiny
for i in $(seq 1 $N); do boot $C-workers-$i $C-workers-$(( (i - 1) / 10 + 1 )) $C-nodeport m3.tiny; done
FIP=$(openstack floating ip create public -f value -c floating_ip_address)
o server add floating ip $C-control-plane-1 $FIP
echo $FIP
"""

CLI_CLEANUP = r"""
C=$1; FIP=$2
o() { openstack "$@" >/dev/null 2>&1 || true; }
for s in $(openstack server list --name "^$C-" -f value -c ID); do o server delete --wait $s; done
o floating ip delete $FIP
for p in $(openstack port list -f value -c Name | grep "^$C-"); do o port delete $p; done
o router remove subnet auto_allocated_router $C-subnet
o network delete $C-net
for g in cluster ssh api nodeport; do o security group delete $C-$g; done
for g in $(openstack server group list -f value -c Name | grep "^$C-"); do o server group delete $g; done
o keypair delete $C-key
"""


def calls() -> int:
    counts = faults.call_counts()
    return sum(v for k, v in counts.items() if " " not in k)


def run(workers: int, key: Path, cidr_octet: int, inv: Path, cli: bool = True) -> dict:
    name = f"bench{uuid.uuid4().hex[:4]}"
    spec_path = write_small_cluster_spec(
        inv, name, key, f"10.{cidr_octet}.0.0/24", workers, control_plane_flavor="m3.tiny"
    )
    quiet = Progress(emit=lambda m: None)
    faults.reset_call_counts()
    t0 = time.monotonic()
    try:
        # Provisioning only: the CLI script installs no Kubernetes either.
        create_cluster(load_spec(spec_path), progress=quiet, root=inv, kubernetes=False)
        ours = {"seconds": round(time.monotonic() - t0, 1), "api_calls": calls()}
    finally:
        destroy_cluster(name, root=inv, progress=quiet)

    if not cli:
        return {"workers": workers, "stackspray": ours, "openstack_cli": {"seconds": None, "api_calls": None}}
    cname = f"cli{uuid.uuid4().hex[:4]}"
    env = dict(os.environ, OS_CLOUD="sandbox", PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    faults.reset_call_counts()
    t0 = time.monotonic()
    argv = ["bash", "-c", CLI_SCRIPT, "cli", str(workers), cname, str(key), f"10.{cidr_octet + 1}.0.0/24"]
    out = subprocess.run(argv, env=env, capture_output=True, text=True)
    cli = {"seconds": round(time.monotonic() - t0, 1), "api_calls": calls()}
    subprocess.run(
        ["bash", "-c", CLI_CLEANUP, "clean", cname, out.stdout.strip()], env=env, capture_output=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"CLI script failed: {out.stderr[-2000:]}")
    return {"workers": workers, "stackspray": ours, "openstack_cli": cli}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-cli", action="store_true", help="measure stackspray only")
    args = ap.parse_args()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(SandboxPaths.default().clouds_yaml))
    with tempfile.TemporaryDirectory() as tmp:
        inv = Path(tmp)
        key = inv / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        rows = [
            run(n, key.with_suffix(".pub"), 40 + 2 * i, inv, not args.skip_cli)
            for i, n in enumerate(args.workers)
        ]
    base = rows[0]["stackspray"]["seconds"]
    if args.json:
        print(json.dumps(rows))
    else:
        print(
            f"{'workers':>8} {'stackspray s':>13} {'calls':>6} {'x 1-worker':>11} {'CLI s':>8} {'calls':>6}"
        )
        for r in rows:
            s, c = r["stackspray"], r["openstack_cli"]
            print(
                f"{r['workers']:>8} {s['seconds']:>13} {s['api_calls']:>6} {s['seconds'] / base:>11.2f} "
                f"{c['seconds']!s:>8} {c['api_calls']!s:>6}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
