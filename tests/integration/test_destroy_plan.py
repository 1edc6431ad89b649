"""destroy-cluster as a plan, run as a user runs it: `OS_CLOUD` exported, from another folder.

- `--dry-run --json` lists exactly what the destroy then deletes (same kinds, names and ids);
- a cluster whose name is a prefix of another's (`x` and `x-2`) never touches the other's
  resources, in the plan or in the cloud;
- its workers boot from volumes (the spec's `boot_volume_gb`, real Cinder on the sandbox), which
  go with their servers;
- the volumes Kubernetes made for it (Cinder CSI's mark `cinder.csi.openstack.org/cluster`, made
  here as the driver makes them: the tests' cluster runs no Kubernetes) are listed and kept,
  detached, until `--delete-volumes`; the neighbour's are never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import yaml
from helpers import ROOT, owned_in_cloud, quiet
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.spec import load_spec


def user_env(inv) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        OS_CLIENT_CONFIG_FILE=os.environ["OS_CLIENT_CONFIG_FILE"],
        OS_CLOUD="sandbox",
        STACKSPRAY_INVENTORIES=str(inv),
    )
    return env


def cli(tmp_path, inv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(ROOT), *args],
        cwd=tmp_path,
        env=user_env(inv),
        capture_output=True,
        text=True,
        timeout=600,
    )


def ids_in_cloud(conn, name: str) -> set[str]:
    """Ids of everything in the cloud that carries the cluster's exact mark."""
    tag = f"stackspray-cluster={name}"

    def mine(r):
        return tag in (r.tags or []) or (r.description or "") == tag

    ids = {s.id for s in conn.compute.servers() if (s.metadata or {}).get("stackspray-cluster") == name}
    for lister in (conn.network.networks, conn.network.subnets, conn.network.routers, conn.network.ports):
        ids |= {r.id for r in lister() if mine(r)}
    ids |= {g.id for g in conn.network.security_groups() if mine(g)}
    ids |= {f.id for f in conn.network.ips() if mine(f)}
    return ids


def settled_security_group_quota(conn, admin_conn, timeout: float = 150) -> None:
    """Two clusters need 8 of the project's 10 security groups; Neutron counts its unexpired
    reservations against the quota for up to 120 s (neutron/db/quota/api.py
    RESERVATION_EXPIRATION_TIMEOUT), so right after another test's churn in this lane a create
    can be refused that fits. Wait until what Neutron counts is what exists (seen: a 409 on the
    second cluster's fourth group in CI, 2026-12-07)."""
    pid = conn.current_project_id
    deadline = time.monotonic() + timeout
    while True:
        detail = admin_conn.network.get(f"/quotas/{pid}/details.json").json()["quota"]["security_group"]
        listed = len(list(conn.network.security_groups(project_id=pid)))
        if detail["used"] + detail["reserved"] <= listed or time.monotonic() > deadline:
            return
        time.sleep(2)


def test_dry_run_lists_exactly_what_destroy_deletes_and_never_a_neighbour(
    conn, admin_conn, sandbox, ssh_key, tmp_path
):
    base = f"dp{uuid.uuid4().hex[:5]}"
    inv = tmp_path / "inventories"
    names = [base, f"{base}-2"]
    specs = []
    for i, name in enumerate(names):
        path = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), f"10.{60 + i}.0.0/24", 1)
        if i == 0:
            doc = yaml.safe_load(path.read_text())
            doc["node_groups"]["workers"]["boot_volume_gb"] = 20
            path.write_text(yaml.safe_dump(doc))
        specs.append(load_spec(path))
    made: list[str] = []
    try:
        for spec in specs:
            settled_security_group_quota(conn, admin_conn)
            create_cluster(spec, progress=quiet(), root=inv, kubernetes=False)
        worker = conn.compute.find_server(f"{base}-workers-1")
        (root,) = conn.compute.volume_attachments(worker)
        boot = conn.block_storage.get_volume(root.volume_id)
        assert boot.is_bootable and boot.size == 20 and boot.status == "in-use", (
            "the worker boots from Cinder"
        )
        ours, theirs = (csi_volume(conn, n, made) for n in names)
        conn.compute.create_volume_attachment(worker, volume_id=ours.id)
        conn.block_storage.wait_for_status(ours, "in-use", failures=["error"], wait=120)
        neighbour_before = owned_in_cloud(conn, names[1])
        neighbour_ids = ids_in_cloud(conn, names[1])
        assert neighbour_before["servers"] and neighbour_ids

        dry = cli(tmp_path, inv, "destroy-cluster", "--cluster", base, "--dry-run", "--json")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        planned = json.loads(dry.stdout)["actions"]
        assert ids_in_cloud(conn, base), "a dry run deletes nothing"
        assert {a["detail"]["id"] for a in planned} & neighbour_ids == set(), "the plan names a neighbour's"
        (kept,) = [a for a in planned if a["resource"] == "volume"]
        assert kept["kind"] == "noop" and kept["detail"]["id"] == ours.id, "listed, and kept"
        assert "1 GB, claim jhub/claim-ada" in kept["reason"] and "--delete-volumes" in kept["reason"]
        kinds = {a["resource"] for a in planned}
        assert {
            "server",
            "port",
            "network",
            "subnet",
            "router-interface",
            "security-group",
            "floating-ip",
        } <= kinds
        assert "router" not in kinds, "the project's router is only detached from, never deleted"

        real = cli(tmp_path, inv, "destroy-cluster", "--cluster", base, "--yes", "--json")
        assert real.returncode == 0, real.stdout + real.stderr
        done = json.loads(real.stdout)
        assert [(a["resource"], a["name"], a["detail"]["id"]) for a in done["actions"]] == [
            (a["resource"], a["name"], a["detail"]["id"]) for a in planned
        ], "destroy carried out the plan the dry run showed"
        counts: dict[str, int] = {}
        for a in planned:
            if a["kind"] != "noop":
                counts[a["resource"]] = counts.get(a["resource"], 0) + 1
        assert done["deleted"] == counts

        assert not any(owned_in_cloud(conn, base).values()), "nothing of the cluster is left"
        assert owned_in_cloud(conn, names[1]) == neighbour_before, "the neighbour is untouched"
        assert ids_in_cloud(conn, names[1]) == neighbour_ids
        assert conn.block_storage.find_volume(boot.id, ignore_missing=True) is None, "went with its server"
        left = conn.block_storage.get_volume(ours.id)
        assert left.status == "available" and left.attachments == [], "kept, detached"
        assert any(ours.id in line for line in done["left"]), done["left"]
        assert conn.block_storage.get_volume(theirs.id).status == "available", "the neighbour's untouched"

        again = cli(tmp_path, inv, "destroy-cluster", "--cluster", base, "--yes", "--json")
        assert again.returncode == 0 and [a["kind"] for a in json.loads(again.stdout)["actions"]] == [
            "noop",
            "noop",
        ], "only the kept volume, and nothing to delete"
        volumes = cli(
            tmp_path, inv, "destroy-cluster", "--cluster", base, "--yes", "--delete-volumes", "--json"
        )
        assert volumes.returncode == 0, volumes.stdout + volumes.stderr
        assert json.loads(volumes.stdout)["deleted"] == {"volume": 1}
        assert conn.block_storage.find_volume(ours.id, ignore_missing=True) is None
        assert conn.block_storage.get_volume(theirs.id).status == "available", "the neighbour's still there"
    finally:
        for name in names:
            destroy_cluster(name, cloud="sandbox", root=inv, progress=quiet(), delete_volumes=True)
        for vid in made:  # a volume a failed assertion left behind
            conn.block_storage.delete_volume(vid, ignore_missing=True)
        deadline = time.monotonic() + 60
        while any(conn.block_storage.find_volume(v, ignore_missing=True) for v in made):
            assert time.monotonic() < deadline, "the test's volumes were not deleted"
            time.sleep(1)


def csi_volume(conn, cluster: str, made: list[str]):
    """A volume as Cinder CSI makes one for a claim of `cluster` (its Kubespray cluster_name):
    named after the PersistentVolume, with the driver's and the external-provisioner's metadata
    (cloud-provider-openstack pkg/csi/cinder/controllerserver.go CreateVolume)."""
    volume = conn.block_storage.create_volume(
        name=f"pvc-{uuid.uuid4()}",
        size=1,
        metadata={
            "cinder.csi.openstack.org/cluster": cluster,
            "csi.storage.k8s.io/pvc/name": "claim-ada",
            "csi.storage.k8s.io/pvc/namespace": "jhub",
            "csi.storage.k8s.io/pv/name": "pvc-x",
        },
    )
    made.append(volume.id)
    return conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=120)


def test_a_failed_command_with_json_prints_one_error_document(tmp_path):
    inv = tmp_path / "inventories"
    out = cli(tmp_path, inv, "destroy-cluster", "--cluster", "../..", "--json")
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and doc["command"] == "destroy-cluster" and doc["exit_code"] == 1
    assert "--cluster" in doc["error"]["message"]
    missing = cli(tmp_path, inv, "create-cluster", "--spec", str(tmp_path / "nope.yaml"), "--json")
    assert missing.returncode == 1 and json.loads(missing.stdout)["ok"] is False
