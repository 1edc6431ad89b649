"""etcd backup and restore as a user runs them (`OS_CLOUD` exported, from another folder) on a
cluster the Kubespray stand-in built, whose API stand-in keeps its objects in a real etcd on the
control-plane node host: objects created with the real kubectl, `backup`, the objects deleted and
etcd's data wiped (the loss), `restore` — the objects are back with their contents and the
Deployment's pods run again. On the way: the stored backup cannot be read without the key, a
restore over running workloads asks for --yes, an unknown ID and a truncated backup are refused
before anything stops, and destroy-cluster keeps the backups and says where."""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path

from conftest import ssh
from helpers import eventually, kubectl_runner, user_runner
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray import snapshot_crypto

SECRET_VALUE = "s3cr3t-" + uuid.uuid4().hex
NOTE = "note-" + uuid.uuid4().hex
WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]},
        },
    },
}


def test_backup_then_loss_then_restore_brings_the_objects_back(sandbox, ssh_key, tmp_path):
    name = f"br{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), "10.58.0.0/24", 1)
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inventories")}
    run = user_runner(sandbox, tmp_path, env=env)
    cluster = tmp_path / "inventories" / name
    try:
        run("create-cluster", "--spec", str(spec))
        kubeconfig = cluster / "kubeconfig"

        kubectl = kubectl_runner(kubeconfig)

        assert "etcd backups: none (invoke backup --cluster" in run("status", "--cluster", name).stdout
        kubectl("create", "namespace", "lab")
        kubectl("-n", "lab", "create", "configmap", "settings", f"--from-literal=note={NOTE}")
        kubectl("-n", "lab", "create", "secret", "generic", "token", f"--from-literal=value={SECRET_VALUE}")
        kubectl("-n", "lab", "apply", "-f", "-", stdin=json.dumps(WEB))

        def ready_replicas() -> int:
            doc = json.loads(kubectl("-n", "lab", "get", "deployment", "web", "-o", "json").stdout)
            return (doc.get("status") or {}).get("readyReplicas") or 0

        def note() -> str:
            return kubectl("-n", "lab", "get", "configmap", "settings", "-o", "jsonpath={.data.note}").stdout

        assert eventually(lambda: ready_replicas() == 1, timeout=60)

        taken = json.loads(run("backup", "--cluster", name, "--json").stdout)
        b = taken["backup"]
        assert b["snapshot_size"] > 0 and b["revision"] > 0 and b["node"] == f"{name}-control-plane-1"
        assert b["counts"]["configmaps"] >= 1 and b["counts"]["secrets"] >= 1, b["counts"]
        stored = cluster / "backups" / b["file"]
        key = cluster / "secrets" / "etcd-backup.key"
        for f in (stored, key, cluster / "backups" / f"{b['id']}.json"):
            assert f.stat().st_mode & 0o777 == 0o600, f
        # Unreadable without the key: neither value is in the stored file, yet both are in the
        # snapshot it decrypts to (so the first check could fail).
        raw = stored.read_bytes()
        assert SECRET_VALUE.encode() not in raw and base64.b64encode(SECRET_VALUE.encode()) not in raw
        assert NOTE.encode() not in raw
        plain = tmp_path / "plain.db"
        snapshot_crypto.decrypt_file(key.read_bytes(), stored, plain)
        assert NOTE.encode() in plain.read_bytes()
        try:
            snapshot_crypto.decrypt_file(os.urandom(32), stored, tmp_path / "other.db")
            raise AssertionError("decrypted with another key")
        except snapshot_crypto.DecryptError:
            pass
        status = json.loads(run("status", "--cluster", name, "--json").stdout)["backups"]
        assert status == {"count": 1, "last": b["created"], "location": str(cluster / "backups")}
        listed = json.loads(run("backup.list", "--cluster", name, "--json").stdout)
        assert [x["id"] for x in listed["backups"]] == [b["id"]]

        # Workloads run: a restore asks for --yes, and changes nothing.
        refused = run("restore", "--cluster", name, "--snapshot", b["id"], ok=False)
        assert "re-run with --yes" in refused.stdout + refused.stderr
        assert "lab/web-" in refused.stdout + refused.stderr
        # An unknown ID and a truncated backup: named, refused before anything stops.
        unknown = run("restore", "--cluster", name, "--snapshot", "20000101T000000Z", "--yes", ok=False)
        assert "no backup '20000101T000000Z'" in unknown.stdout + unknown.stderr and b["id"] in unknown.stderr
        second = json.loads(run("backup", "--cluster", name, "--json").stdout)["backup"]
        cut = cluster / "backups" / second["file"]
        cut.write_bytes(cut.read_bytes()[: second["size"] // 2])
        damaged = run("restore", "--cluster", name, "--snapshot", second["id"], "--yes", ok=False)
        assert "truncated or altered" in damaged.stdout + damaged.stderr
        assert (
            kubectl("-n", "lab", "get", "configmap", "settings", "-o", "jsonpath={.data.note}").stdout == NOTE
        )

        # The loss: the objects deleted, then etcd's data wiped and the API server started on it.
        for kind, obj in (("deployment", "web"), ("configmap", "settings"), ("secret", "token")):
            kubectl("-n", "lab", "delete", kind, obj)
        state = json.loads((cluster / "state.json").read_text())
        fip = state["floating_ip"]["address"]
        ssh(
            fip,
            ssh_key,
            "sudo sh -c 'systemctl stop stackspray-kube-api-standin etcd && rm -rf /var/lib/etcd "
            "&& systemctl start etcd stackspray-kube-api-standin'",
        )
        assert eventually(lambda: kubectl("get", "namespace", "lab", ok=False).returncode != 0, timeout=60)

        restored = json.loads(run("restore", "--cluster", name, "--snapshot", b["id"], "--json").stdout)
        assert restored["ready"] and restored["counts"] == b["counts"], restored
        assert (
            kubectl("-n", "lab", "get", "configmap", "settings", "-o", "jsonpath={.data.note}").stdout == NOTE
        )
        value = kubectl("-n", "lab", "get", "secret", "token", "-o", "jsonpath={.data.value}").stdout
        assert base64.b64decode(value).decode() == SECRET_VALUE
        assert eventually(lambda: ready_replicas() == 1, timeout=60)
        pods = kubectl("-n", "lab", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}")
        assert pods.stdout == "Running", pods.stdout
        # The data dir the restore replaced is kept beside it.
        kept = ssh(fip, ssh_key, f"sudo ls -d /var/lib/etcd.pre-restore-{b['id']}")
        assert kept.strip() == f"/var/lib/etcd.pre-restore-{b['id']}"
    finally:
        gone = run("destroy-cluster", "--cluster", name, "--yes")
    assert f"kept 2 etcd backups in {cluster / 'backups'}" in gone.stdout, gone.stdout
    assert Path(cluster / "secrets" / "etcd-backup.key").exists()
