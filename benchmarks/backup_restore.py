"""`invoke backup` and `invoke restore` against their floors, in one run on the sandbox, with
1,000 objects in the cluster.

    .venv/bin/python benchmarks/backup_restore.py [--objects 1000] [--rounds 3] [--json]

A cluster of 1 control plane + 1 m3.tiny worker, built by create-cluster with Kubernetes (the
Kubespray stand-in, whose API keeps its objects in the control-plane node's real etcd); then
`--objects` ConfigMaps of 1 KiB each created through the Kubernetes API. Then, `--rounds` times
each, alternating:

  backup   stackspray: etcd_backup.backup() — the lock, playbooks/etcd-backup.yml through
           ansible-runner (health, snapshot save, snapshot status, the keys at its revision,
           fetched, removed from the node), SHA-256 and AES-GCM encryption, the metadata, retention.
           floor: one ssh command: `etcdctl snapshot save` and the file streamed back over the
           same connection (cat), written to a local file. No check, no encryption.
  restore  stackspray: etcd_backup.restore(--yes) — verification and decryption, the playbook
           (the snapshot copied and checked, API servers stopped, etcd stopped, restored beside
           and swapped in, started and healthy, keys counted, API servers started), /readyz.
           floor: one ssh command fed the snapshot on stdin: the manifest moved away, etcd
           stopped, `etcdctl snapshot restore` into a fresh dir swapped in, etcd started, the
           manifest back, the API port waited for.

Prints the medians, their ratio, and the snapshot's size (plain and encrypted). Torn down
afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from floors import ssh_to_first_control_plane
from kubernetes import client
from sandbox_cluster import QUIET, ratio_line, ratio_row, sandbox_cluster

from stackspray import etcd_backup
from stackspray.kube import Kube

ETCDCTL = (
    "ETCDCTL_API=3 ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=/etc/ssl/etcd/ssl/ca.pem "
    "ETCDCTL_CERT=$(ls /etc/ssl/etcd/ssl/admin-*.pem | grep -v key) "
    "ETCDCTL_KEY=$(ls /etc/ssl/etcd/ssl/admin-*-key.pem) /usr/local/bin/etcdctl"
)
SAVE = (
    f"{ETCDCTL} snapshot save /var/tmp/floor.db >/dev/null && cat /var/tmp/floor.db && rm /var/tmp/floor.db"
)
RESTORE = (
    "set -e; cat > /var/tmp/floor.db; . /etc/etcd.env; "
    "mv /etc/kubernetes/manifests/kube-apiserver.yaml /var/tmp/; "
    "systemctl stop etcd; rm -rf /var/lib/etcd.floor; "
    f"{ETCDCTL} snapshot restore /var/tmp/floor.db --name $ETCD_NAME "
    "--initial-cluster $ETCD_NAME=$ETCD_INITIAL_ADVERTISE_PEER_URLS --initial-cluster-token k8s_etcd "
    "--initial-advertise-peer-urls $ETCD_INITIAL_ADVERTISE_PEER_URLS "
    "--data-dir /var/lib/etcd.floor >/dev/null; "
    "rm -rf /var/lib/etcd; mv /var/lib/etcd.floor /var/lib/etcd; systemctl start etcd; "
    "mv /var/tmp/kube-apiserver.yaml /etc/kubernetes/manifests/; rm /var/tmp/floor.db; "
    "until (echo > /dev/tcp/127.0.0.1/6443) 2>/dev/null; do sleep 0.1; done"
)


def fill(kubeconfig: str, count: int) -> None:
    core = Kube(kubeconfig).core
    payload = "x" * 1024
    for i in range(count):
        core.create_namespaced_config_map(
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"bench-{i:05d}"), data={"v": payload}),
        )


def floor_backup(ssh: list[str], dest: Path) -> float:
    t0 = time.monotonic()
    with open(dest, "wb") as out:
        done = subprocess.run([*ssh, f"sudo bash -c {SAVE!r}"], stdout=out, stderr=subprocess.PIPE)
    if done.returncode:
        raise SystemExit(f"floor backup exited {done.returncode}: {done.stderr.decode().strip()}")
    return time.monotonic() - t0


def floor_restore(ssh: list[str], snapshot: Path) -> float:
    t0 = time.monotonic()
    with open(snapshot, "rb") as src:
        done = subprocess.run([*ssh, f"sudo bash -c {RESTORE!r}"], stdin=src, capture_output=True)
    if done.returncode:
        raise SystemExit(f"floor restore exited {done.returncode}: {done.stderr.decode().strip()}")
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    times: dict[str, list[float]] = {"backup": [], "backup_floor": [], "restore": [], "restore_floor": []}
    sizes: dict = {}
    with sandbox_cluster("bb", "10.96.0.0/24", 1) as c:
        t0 = time.monotonic()
        fill(c.cdir.load().kubeconfig, args.objects)
        sizes["fill_s"] = round(time.monotonic() - t0, 1)
        ssh = ssh_to_first_control_plane(c.cdir, c.key, c.spec.ssh_user)
        backup_id = ""
        for _ in range(args.rounds):
            t0 = time.monotonic()
            taken = etcd_backup.backup(c.name, root=c.root, progress=QUIET)
            times["backup"].append(time.monotonic() - t0)
            backup_id = taken.backup["id"]
            sizes.update(snapshot_bytes=taken.backup["snapshot_size"], encrypted_bytes=taken.backup["size"])
            times["backup_floor"].append(floor_backup(ssh, c.tmp / "floor.db"))
        for _ in range(args.rounds):
            t0 = time.monotonic()
            etcd_backup.restore(c.name, backup_id, yes=True, root=c.root, progress=QUIET)
            times["restore"].append(time.monotonic() - t0)
            times["restore_floor"].append(floor_restore(ssh, c.tmp / "floor.db"))
    backup = ratio_row(times["backup"], times["backup_floor"])
    restore = ratio_row(times["restore"], times["restore_floor"])
    if args.json:
        print(json.dumps({"objects": args.objects, **sizes, "backup": backup, "restore": restore}))
    else:
        print(
            f"{args.objects} objects (created in {sizes['fill_s']:.0f}s), snapshot "
            f"{sizes['snapshot_bytes'] / 1e6:.1f} MB (encrypted {sizes['encrypted_bytes'] / 1e6:.1f} MB)"
        )
        print(ratio_line("backup", backup))
        print(ratio_line("restore", restore))


if __name__ == "__main__":
    main()
