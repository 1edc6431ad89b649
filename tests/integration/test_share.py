"""The Manila share in Kubernetes and on the nodes (playbooks/manila-share.yml), on the sandbox:
the real Manila share and cephx rule, the real ansible-runner and kubernetes.core modules talking
to the Kubernetes API stand-in through the official client, the real node hosts over SSH."""

from __future__ import annotations

import base64
import json
import stat

import yaml
from conftest import ssh
from helpers import make_spec, quiet, respec  # noqa: F401 (make_spec is a fixture)
from kubernetes import client, config

from stackspray.cluster import create_cluster
from stackspray.share import CSI_NAMESPACE, SECRET_FILE, VARS_FILE, apply_share
from stackspray.spec import load_spec
from stackspray.state import ClusterDir
from stackspray.verify import verify_cluster


def _fstab_line(address: str, key, mount_path: str) -> list[str]:
    for line in ssh(address, key, "cat /etc/fstab").splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == mount_path:
            return fields
    return []


def test_share_is_a_bound_rwx_claim_and_an_fstab_entry_on_every_node(make_spec, ssh_key):
    path, inv = make_spec(workers=1, share={"mount_on_nodes": True, "mount_path": "/mnt/data"})
    spec = load_spec(path)
    progress = quiet()
    result = create_cluster(spec, progress=progress, root=inv)
    cdir = ClusterDir(spec.name, inv)
    state = cdir.load().to_dict()
    text = "\n".join(progress.lines)
    assert result.share["ran"] and "running manila-share.yml" in text
    assert f"share: pods mount it through the ReadWriteMany claim default/{spec.name}-share" in text
    rule = spec.share.access_rule
    key = (cdir.secrets / "share-access-key").read_text().strip()
    export = state["share"]["export_path"]
    monitors, root_path = export.split(":/")[0].split(","), "/" + export.split(":/", 1)[1]

    # Kubernetes objects, read back through the official client with the cluster's kubeconfig.
    api = config.new_client_from_config(state["kubeconfig"])
    core, storage, apps = client.CoreV1Api(api), client.StorageV1Api(api), client.AppsV1Api(api)
    assert "cephfs.csi.ceph.com" in [d.metadata.name for d in storage.list_csi_driver().items]
    ds = apps.read_namespaced_daemon_set("csi-cephfsplugin", CSI_NAMESPACE)
    assert ds.status.number_ready == ds.status.desired_number_scheduled == 2
    cm = core.read_namespaced_config_map("ceph-csi-config", CSI_NAMESPACE)
    assert json.loads(cm.data["config.json"]) == [{"clusterID": f"{spec.name}-manila", "monitors": monitors}]
    secret = core.read_namespaced_secret(f"{spec.name}-share-cephx", CSI_NAMESPACE)
    assert base64.b64decode(secret.data["userID"]).decode() == rule
    assert base64.b64decode(secret.data["userKey"]).decode() == key
    pv = core.read_persistent_volume(f"{spec.name}-share")
    assert pv.spec.csi.driver == "cephfs.csi.ceph.com"
    assert pv.spec.csi.volume_attributes["rootPath"] == root_path
    assert pv.spec.csi.volume_attributes["staticVolume"] == "true"
    assert pv.spec.csi.node_stage_secret_ref.name == secret.metadata.name
    assert pv.spec.persistent_volume_reclaim_policy == "Retain"
    pvc = core.read_namespaced_persistent_volume_claim(f"{spec.name}-share", "default")
    assert pvc.status.phase == "Bound" and pvc.spec.volume_name == pv.metadata.name
    assert pvc.spec.access_modes == ["ReadWriteMany"] and pvc.spec.resources.requests["storage"] == "2Gi"

    # Every node: the share in /etc/fstab (not mounted: the sandbox kernel has no CephFS client),
    # its key in a root-only file.
    for name, srv in state["servers"].items():
        fields = _fstab_line(srv["fixed_ip"], ssh_key, "/mnt/data")
        assert fields[:3] == [export, "/mnt/data", "ceph"], f"{name}: {fields}"
        assert f"name={rule}" in fields[3] and f"secretfile=/etc/ceph/{rule}.secret" in fields[3]
        assert ssh(srv["fixed_ip"], ssh_key, f"sudo stat -c '%a %U' /etc/ceph/{rule}.secret").strip() == (
            "600 root"
        )
        assert ssh(srv["fixed_ip"], ssh_key, f"sudo cat /etc/ceph/{rule}.secret").strip() == key

    # The key: only in its own 0600 files; in no log, artifact, state or progress line.
    secret_file = cdir.path / SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    allowed = {secret_file, cdir.secrets / "share-access-key"}
    leaks = [
        p
        for p in cdir.path.rglob("*")
        if p.is_file() and p not in allowed and key in p.read_text(errors="ignore")
    ]
    assert leaks == [] and key not in text

    # Re-running changes nothing and runs no playbook.
    again = quiet()
    assert create_cluster(spec, progress=again, root=inv).share["ran"] is False
    assert not any(line.startswith("running ") for line in again.lines)

    # Someone deletes the claim: Kubernetes leaves the volume Released, still bound to the deleted
    # claim; `invoke share --force` frees it and puts the claim back, bound to the same volume.
    core.delete_namespaced_persistent_volume_claim(f"{spec.name}-share", "default")
    assert core.read_persistent_volume(f"{spec.name}-share").status.phase == "Released"
    assert apply_share(spec, force=True, progress=quiet(), root=inv).ran
    again_pvc = core.read_namespaced_persistent_volume_claim(f"{spec.name}-share", "default")
    assert again_pvc.status.phase == "Bound" and again_pvc.spec.volume_name == pv.metadata.name
    assert core.read_persistent_volume(f"{spec.name}-share").metadata.uid == pv.metadata.uid

    # verify checks the node mounts: fstab and key pass, "mounted" is not applicable here.
    checks = verify_cluster(spec.name, root=inv)
    assert checks.ok, checks.failures
    for node in state["servers"]:
        got = checks.results[node]
        assert got["share in fstab"] == "PASS" and got["share key file private"] == "PASS"
        assert [o for c, o in got.items() if c.startswith("share mounted")] == ["N/A"]

    # A new worker gets the share too (the node list is part of what was applied).
    grown = quiet()
    create_cluster(load_spec(respec(path, workers=2)), progress=grown, root=inv)
    assert any("running manila-share.yml" in line for line in grown.lines)
    new = cdir.load().to_dict()["servers"][f"{spec.name}-workers-2"]
    assert _fstab_line(new["fixed_ip"], ssh_key, "/mnt/data")[:3] == [export, "/mnt/data", "ceph"]
    # A hand-made mistake on a node is found by verify: the key file opened to everyone.
    ssh(new["fixed_ip"], ssh_key, f"sudo chmod 0644 /etc/ceph/{rule}.secret")
    bad = verify_cluster(spec.name, root=inv)
    assert not bad.ok and list(bad.failures) == [f"{spec.name}-workers-2: share key file private"]

    # The share taken out of the spec: its key leaves the inventory; the share and its data stay
    # (only destroy-cluster deletes them).
    data = yaml.safe_load(path.read_text())
    del data["share"]
    path.write_text(yaml.safe_dump(data))
    create_cluster(load_spec(path), progress=quiet(), root=inv)
    assert not secret_file.exists() and not (cdir.path / VARS_FILE).exists()
    assert core.read_persistent_volume(f"{spec.name}-share").spec.persistent_volume_reclaim_policy == "Retain"
