"""create-cluster, status, plan and destroy-cluster on the sandbox, checked through openstacksdk."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ssh
from helpers import kill_when, make_spec, owned_in_cloud, quiet, respec  # noqa: F401 (make_spec is a fixture)
from stackspray_sandbox import faults

from stackspray.cluster import cluster_status, create_cluster, destroy_cluster
from stackspray.errors import LockedError, QuotaError, SpecError
from stackspray.names import cluster_tag, is_owned
from stackspray.spec import load_spec
from stackspray.state import ClusterDir

ROOT = Path(__file__).resolve().parents[2]


def test_create_status_rerun_scale_destroy(conn, admin_conn, make_spec, ssh_key):
    path, inv = make_spec(workers=2, share=True)
    spec = load_spec(path)
    progress = quiet()
    create_cluster(spec, progress=progress, root=inv)
    name = spec.name

    # What exists in the cloud, checked through openstacksdk.
    cloud = owned_in_cloud(conn, name)
    assert cloud["servers"] == [f"{name}-control-plane-1", f"{name}-workers-1", f"{name}-workers-2"]
    assert cloud["networks"] == [f"{name}-net"] and cloud["subnets"] == [f"{name}-subnet"]
    assert cloud["routers"] == [], "Jetstream2's router quota is 1: the project's router is used"
    assert cloud["security_groups"] == sorted(f"{name}-{r}" for r in ("cluster", "ssh", "api", "nodeport"))
    assert len(cloud["floating_ips"]) == 1 and cloud["keypairs"] == [f"{name}-key"]
    assert sorted(cloud["server_groups"]) == [f"{name}-control-plane", f"{name}-workers"]
    assert cloud["shares"] == [f"{name}-share"]
    for g in conn.compute.server_groups():
        if g.name.startswith(f"{name}-"):
            assert g.policy == "soft-anti-affinity"
    router = conn.network.find_router("auto_allocated_router")
    iface_subnets = [ip["subnet_id"] for p in conn.network.ports(device_id=router.id) for ip in p.fixed_ips]
    assert conn.network.find_subnet(f"{name}-subnet").id in iface_subnets
    api_sg = conn.network.find_security_group(f"{name}-api")
    assert any(r["port_range_min"] == 6443 for r in api_sg.security_group_rules)
    cp_port = conn.network.find_port(f"{name}-control-plane-1-port")
    w_port = conn.network.find_port(f"{name}-workers-1-port")
    assert api_sg.id in cp_port.security_group_ids and api_sg.id not in w_port.security_group_ids
    assert {p["ip_address"] for p in cp_port.allowed_address_pairs} == {"10.233.64.0/18", "10.233.0.0/18"}
    fip = next(f for f in conn.network.ips() if f.floating_ip_address == cloud["floating_ips"][0])
    assert fip.port_id == cp_port.id

    # State file and the share's secret.
    state = ClusterDir(name, inv).load().to_dict()
    assert set(state["servers"]) == set(cloud["servers"])
    assert state["floating_ip"]["address"] == fip.floating_ip_address
    key_file = Path(state["share"]["access_key_file"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text()) == 40
    assert key_file.read_text() not in "\n".join(progress.lines)
    assert "volumes/_nogroup/" in state["share"]["export_path"]
    assert any("ACTIVE" in line for line in progress.lines), "a person sees progress per node"

    # The node hosts are reachable over SSH with the cluster's key.
    assert ssh(fip.floating_ip_address, ssh_key, "hostname").strip() == f"{name}-control-plane-1"
    for srv in state["servers"].values():
        assert ssh(srv["fixed_ip"], ssh_key, "whoami").strip() == "ubuntu"

    # Status: 1 x m3.small (2 SU/h) + 2 x m3.tiny (1 SU/h).
    st = cluster_status(name, root=inv)
    assert st.su_per_hour == 4 and st.su_per_month == 4 * 730
    assert [n["role"] for n in st.nodes] == ["control-plane", "workers", "workers"]
    assert st.nodes[0]["floating_ip"] == fip.floating_ip_address

    # Re-running changes nothing.
    again = create_cluster(spec, progress=quiet(), root=inv)
    assert [a for a in again.actions if a["kind"] != "noop"] == []
    assert owned_in_cloud(conn, name) == cloud

    # Scale up, then down.
    create_cluster(load_spec(respec(path, workers=4)), progress=quiet(), root=inv)
    assert len(owned_in_cloud(conn, name)["servers"]) == 5
    create_cluster(load_spec(respec(path, workers=1)), progress=quiet(), root=inv)
    after = owned_in_cloud(conn, name)
    assert after["servers"] == [f"{name}-control-plane-1", f"{name}-workers-1"]
    assert after["ports"] == [f"{name}-control-plane-1-port", f"{name}-workers-1-port"]

    # Destroy leaves nothing of ours; a second destroy is a no-op.
    destroy_cluster(name, root=inv, progress=quiet())
    assert not any(owned_in_cloud(conn, name).values())
    assert destroy_cluster(name, root=inv, progress=quiet()).deleted == {}


def test_api_faults_and_boot_error_converge(conn, sandbox, make_spec):
    path, inv = make_spec(workers=2)
    spec = load_spec(path)
    faults.inject("nova", method="POST", path=r"/servers$", status=500, count=1)
    faults.inject("nova", method="POST", path=r"/servers$", kind="lose_response", count=1)
    faults.inject("neutron", method="POST", path=r"/ports$", status=429, retry_after=1, count=2)
    faults.inject("neutron", method="POST", path=r"/networks$", kind="reset", count=1)
    faults.inject("nova", method="GET", path=r"/servers/detail", status=503, count=2)
    faults.boot_errors(1, name_contains=f"{spec.name}-workers-2", paths=sandbox.paths)
    progress = quiet()
    create_cluster(spec, progress=progress, root=inv)
    fired = {(f["service"], f["kind"], f["status"]) for f in faults.fired()}
    assert ("nova", "lose_response", 500) in fired and ("neutron", "reset", 500) in fired
    assert ("nova", "status", 500) in fired and ("neutron", "status", 429) in fired
    assert any("went to ERROR" in line for line in progress.lines)
    cloud = owned_in_cloud(conn, spec.name)
    # Exactly one of each: a lost create response did not make a duplicate.
    assert cloud["servers"] == [
        f"{spec.name}-control-plane-1",
        f"{spec.name}-workers-1",
        f"{spec.name}-workers-2",
    ]
    assert len(cloud["networks"]) == 1 and len(cloud["ports"]) == 3
    assert all(s.status == "ACTIVE" for s in conn.compute.servers() if s.name.startswith(spec.name))
    assert [a for a in create_cluster(spec, progress=quiet(), root=inv).actions if a["kind"] != "noop"] == []


def test_killed_run_converges_on_rerun(conn, make_spec):
    path, inv = make_spec(workers=3)
    env = dict(os.environ, STACKSPRAY_INVENTORIES=str(inv))
    seen = kill_when(["create-cluster", "--spec", str(path)], env, "booting", timeout=120)
    assert "booting" in seen, seen
    spec = load_spec(path)
    create_cluster(spec, progress=quiet(), root=inv)
    cloud = owned_in_cloud(conn, spec.name)
    assert len(cloud["servers"]) == 4 and len(cloud["ports"]) == 4
    assert len(cloud["networks"]) == 1 and len(cloud["floating_ips"]) == 1


def test_a_floating_ip_a_killed_run_left_untagged_is_taken_not_doubled(conn, make_spec):
    """A run killed between a floating IP's create and its tagging (the floating IP is now made
    while the servers boot) leaves one that carries only the description mark set at creation.
    The next run puts that one on the control-plane node and tags it — no second one."""
    path, inv = make_spec(workers=1)
    spec = load_spec(path)
    ext = conn.network.find_network(spec.network.external_network)
    left = conn.network.create_ip(floating_network_id=ext.id, description=cluster_tag(spec.name))
    try:
        create_cluster(spec, progress=quiet(), root=inv, kubernetes=False)
        mine = [f for f in conn.network.ips() if is_owned(f, spec.name)]
        assert [f.id for f in mine] == [left.id]
        cp_port = next(conn.network.ports(name=f"{spec.name}-control-plane-1-port"))
        assert mine[0].port_id == cp_port.id
        assert cluster_tag(spec.name) in (mine[0].tags or [])
    finally:
        conn.network.delete_ip(left, ignore_missing=True)


def test_bad_specs_fail_clearly_and_create_nothing(conn, make_spec):
    path, inv = make_spec(workers=1)
    data = yaml.safe_load(path.read_text())
    data["node_groups"]["workers"]["flavor"] = "m3.gigantic"
    path.write_text(yaml.safe_dump(data))
    out = subprocess.run(
        [sys.executable, "-m", "invoke", "create-cluster", "--spec", str(path)],
        cwd=ROOT,
        env=dict(os.environ, STACKSPRAY_INVENTORIES=str(inv)),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "node_groups.workers.flavor: 'm3.gigantic' does not exist" in out.stderr + out.stdout
    assert not any(owned_in_cloud(conn, data["name"]).values())

    data["node_groups"]["workers"] = {"flavor": "m3.large", "count": 12}  # 192 cores > 150
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(QuotaError) as err:
        create_cluster(load_spec(path), progress=quiet(), root=inv)
    assert "cores" in str(err.value) and "EXCEEDED" in str(err.value)
    assert not any(owned_in_cloud(conn, data["name"]).values())

    data["node_groups"]["control-plane"]["count"] = 2
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="is even"):
        load_spec(path)


def test_second_run_on_the_same_cluster_is_refused(make_spec):
    path, inv = make_spec(workers=0)
    spec = load_spec(path)
    with ClusterDir(spec.name, inv).lock("test"):
        with pytest.raises(LockedError, match="is busy"):
            create_cluster(spec, progress=quiet(), root=inv)


def test_destroy_with_the_state_lost_keeps_and_names_the_keypair(conn, make_spec):
    """A lost state file: everything tagged goes; the keypair (untaggable) is named, not deleted."""
    path, inv = make_spec(workers=1)
    spec = load_spec(path)
    create_cluster(spec, progress=quiet(), root=inv, kubernetes=False)
    (ClusterDir(spec.name, inv).state_file).unlink()
    try:
        progress = quiet()
        result = destroy_cluster(spec.name, cloud="sandbox", root=inv, progress=progress)
        cloud = owned_in_cloud(conn, spec.name)
        assert {k: v for k, v in cloud.items() if v} == {"keypairs": [f"{spec.name}-key"]}
        assert result.left == [f"keypair {spec.name}-key"]
        assert any(f"openstack keypair delete {spec.name}-key" in line for line in progress.lines)
    finally:
        conn.compute.delete_keypair(f"{spec.name}-key", ignore_missing=True)
