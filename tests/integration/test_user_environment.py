"""Day one as a user lives it, on the sandbox shaped like a Jetstream2 allocation.

- The README's path, as a user types it: a shell holding exactly what README.md and
  docs/quickstart.md tell a user to export (OS_CLIENT_CONFIG_FILE, OS_CLOUD), commands run from
  another folder, the spec naming no cloud (OS_CLOUD decides): create-cluster → status →
  scale --shelve → scale --unshelve → credentials.refresh --force → destroy-cluster. The refresh
  failed here before: verifying the new credential picked up OS_CLOUD's password auth.
- The project's one router: Jetstream2 gives a project a router quota of 1, already used by its
  auto_allocated_router. Two clusters plan and build without a router of their own; destroying
  them leaves that router and auto_allocated_network as they were (read with
  python-openstackclient, a client we did not write).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import yaml
from helpers import BIN, invoke, owned_in_cloud, user_env
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.paths import inventories_root


def openstack(sandbox, *args: str) -> dict | list:
    out = subprocess.run(
        [str(BIN / "openstack"), *args, "-f", "json"],
        env=user_env(sandbox),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_readme_path_as_a_user_types_it(sandbox, conn, ssh_key, tmp_path):
    name = f"ue{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), "10.58.0.0/24", 1)
    data = yaml.safe_load(spec.read_text())
    del data["cloud"]  # the user's OS_CLOUD decides
    spec.write_text(yaml.safe_dump(data))
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)

    def ok(*args: str) -> str:
        out = invoke(sandbox, elsewhere, *args)
        assert out.returncode == 0, f"invoke {' '.join(args)}: {out.stdout}{out.stderr}"
        return out.stdout + out.stderr

    try:
        created = ok("create-cluster", "--spec", str(spec))
        assert f"cluster {name}: 2 server(s)" in created and "export KUBECONFIG=" in created
        assert (inventories_root() / name / "state.json").exists(), "state lives in the checkout, not the cwd"
        assert not (elsewhere / "inventories").exists()
        assert f"{name}-workers-1" in ok("status", "--cluster", name)
        assert "SHELVED_OFFLOADED" in ok("scale", "--cluster", name, "--shelve")
        assert "ACTIVE, Ready" in ok("scale", "--cluster", name, "--unshelve")
        rotated = ok("credentials.refresh", "--cluster", name, "--force")
        assert "rotated:" in rotated, rotated
        ok("destroy-cluster", "--cluster", name, "--yes")
        assert not any(owned_in_cloud(conn, name).values())
    finally:
        invoke(sandbox, elsewhere, "destroy-cluster", "--cluster", name, "--yes")
        shutil.rmtree(inventories_root() / name, ignore_errors=True)


def test_two_clusters_share_the_projects_one_router_and_leave_it_as_it_was(sandbox, conn, ssh_key, tmp_path):
    quota = openstack(sandbox, "quota", "show")
    routers_quota = next(q["Limit"] for q in quota if q.get("Resource") == "routers")
    assert routers_quota == 1, quota
    before = openstack(sandbox, "router", "show", "auto_allocated_router")
    network_before = openstack(sandbox, "network", "show", "auto_allocated_network")
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inventories")}
    names = [f"rt{uuid.uuid4().hex[:5]}", f"rt{uuid.uuid4().hex[:5]}"]
    specs = [
        write_small_cluster_spec(tmp_path, n, ssh_key.with_suffix(".pub"), f"10.{70 + i}.0.0/24", 0)
        for i, n in enumerate(names)
    ]

    def run(*args: str) -> subprocess.CompletedProcess:
        return invoke(sandbox, tmp_path, *args, timeout=600, env=env)

    try:
        for spec in specs:
            plan = run("plan", "--spec", str(spec), "--json")
            assert plan.returncode == 0, plan.stdout + plan.stderr
            actions = json.loads(plan.stdout)["actions"]
            assert not [a for a in actions if a["resource"] == "router" and a["kind"] == "create"]
            assert any(a["resource"] == "router" and a["name"] == "auto_allocated_router" for a in actions)
            built = run("create-cluster", "--spec", str(spec), "--no-kubernetes")
            assert built.returncode == 0, built.stdout + built.stderr
        attached = {ip["subnet_id"] for p in conn.network.ports(device_id=before["id"]) for ip in p.fixed_ips}
        assert {conn.network.find_subnet(f"{n}-subnet").id for n in names} <= attached
        for n in names:
            assert owned_in_cloud(conn, n)["routers"] == []
        overlapping = write_small_cluster_spec(
            tmp_path, "rtoverlap", ssh_key.with_suffix(".pub"), "10.1.0.0/25", 0
        )
        refused = run("plan", "--spec", str(overlapping))
        assert (
            refused.returncode == 1
            and "network.cidr: 10.1.0.0/25 overlaps" in refused.stdout + refused.stderr
        )
        for n in names:
            gone = run("destroy-cluster", "--cluster", n, "--yes")
            assert gone.returncode == 0, gone.stdout + gone.stderr
    finally:
        for n in names:
            run("destroy-cluster", "--cluster", n, "--yes")
    after = openstack(sandbox, "router", "show", "auto_allocated_router")
    for key in ("id", "external_gateway_info", "interfaces_info", "status"):
        assert after.get(key) == before.get(key), key
    assert (
        openstack(sandbox, "network", "show", "auto_allocated_network")["subnets"]
        == network_before["subnets"]
    )


def test_a_restricted_operator_credential_is_refused_before_anything_exists(sandbox, conn, ssh_key, tmp_path):
    """With OS_CLOUD=sandbox-restricted, plan and create-cluster stop at once, naming the
    credential and what to create in Horizon; afterwards nothing of the cluster exists."""
    name = f"rs{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), "10.57.0.0/24", 1)
    data = yaml.safe_load(spec.read_text())
    del data["cloud"]
    spec.write_text(yaml.safe_dump(data))
    env = {
        "OS_CLOUD": "sandbox-restricted",
        "STACKSPRAY_INVENTORIES": str(tmp_path / "inv"),
    }
    for command in ("plan", "create-cluster"):
        out = invoke(sandbox, tmp_path, command, "--spec", str(spec), timeout=300, env=env)
        text = out.stdout + out.stderr
        assert out.returncode == 1, text
        assert (
            "restricted application credential 'sandbox-operator-restricted'" in text
            and "Unrestricted" in text
        )
    left = owned_in_cloud(conn, name)
    assert not any(left.values()), left
    assert not [k for k in conn.compute.keypairs() if k.name == f"{name}-key"]
    assert not [
        c for c in conn.identity.application_credentials(user=conn.current_user_id) if c.name.startswith(name)
    ]


KUBESPRAY_REFUSALS = {
    "kube_network_plugin": "foo",
    "kube_version": "1.29.0",
    "container_manager": "podman",
    "download_run_once": "yes",  # a string where Kubespray wants a boolean
}


def test_kubespray_refuses_these_before_any_vm_exists(sandbox, conn, ssh_key, tmp_path):
    """Kubespray's inventory validation runs on the planned inventory, before anything is
    created: each refusal exits 1 naming the field (before, each was found after 20+ minutes of
    billed VMs). On the sandbox the stand-in's boilerplate.yml asserts what Kubespray's does."""
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inv")}
    for key, value in KUBESPRAY_REFUSALS.items():
        name = f"kv{uuid.uuid4().hex[:5]}"
        spec = write_small_cluster_spec(
            tmp_path, name, ssh_key.with_suffix(".pub"), "10.56.0.0/24", 1, kubernetes={key: value}
        )
        command = "create-cluster" if key == "kube_version" else "plan"
        out = invoke(sandbox, tmp_path, command, "--spec", str(spec), timeout=300, env=env)
        text = out.stdout + out.stderr
        assert out.returncode == 1, (key, text)
        assert f"kubernetes.{key}: Kubespray v2.31.0 refuses it" in text, (key, text)
        assert not any(owned_in_cloud(conn, name).values()), f"{key}: something was created"
    # A spec Kubespray accepts passes the same check.
    fine = write_small_cluster_spec(
        tmp_path,
        "kvfine",
        ssh_key.with_suffix(".pub"),
        "10.56.0.0/24",
        1,
        kubernetes={"kube_version": "1.35.4"},
    )
    ok = invoke(sandbox, tmp_path, "plan", "--spec", str(fine), timeout=300, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
