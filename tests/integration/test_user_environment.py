"""Day one as a user lives it, on the sandbox shaped like a Jetstream2 allocation.

- README.md's and docs/quickstart.md's commands, run as written in a fresh shell holding exactly
  what the docs tell a user to export (PATH, OS_CLIENT_CONFIG_FILE, OS_CLOUD, KUBECONFIG), most of
  them from another folder, the spec naming no cloud (OS_CLOUD decides): plan → create-cluster →
  openstack server list → kubectl get nodes → status → verify → scale --shelve → scale
  --unshelve → verify → credentials.refresh --force → destroy-cluster. The refresh failed here
  before: verifying the new credential picked up OS_CLOUD's password auth.
- The project's one router: Jetstream2 gives a project a router quota of 1, already used by its
  auto_allocated_router. Two clusters plan and build without a router of their own; destroying
  them leaves that router and auto_allocated_network as they were (read with
  python-openstackclient, a client we did not write).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import yaml
from helpers import BIN, ROOT, invoke, owned_in_cloud, user_env
from stackspray_sandbox import lanes
from stackspray_sandbox.cloud import ensure_auto_allocated_topology
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray import tools
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


def code_block(doc: Path, after: str) -> list[str]:
    """The command lines of the first ```sh block after the heading `after` in `doc`."""
    text = doc.read_text().split(after, 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_the_readme_and_the_quickstart_as_written(sandbox, conn, tmp_path):
    """docs/quickstart.md's sandbox block and README.md's, run verbatim in a fresh shell — only
    what the docs export, from the checkout, then `cd ~` — but for the cluster's name (`demo` is
    the developer's own cluster on this machine: here a new name, in a copy of the demo spec) and
    `scripts/setup` (the session's sandbox is up; its create-cluster is the block's own). Covers:
    the spec naming no cloud (OS_CLOUD decides), kubectl installed beside stackspray and reading
    the printed KUBECONFIG, `verify` passing again after a shelve and an unshelve."""
    name = f"qs{uuid.uuid4().hex[:5]}"
    quickstart = code_block(ROOT / "docs" / "quickstart.md", "## On the sandbox")
    readme = code_block(ROOT / "README.md", "Then use it like any OpenStack cloud")
    assert quickstart[0].startswith("scripts/setup") and quickstart[-1].startswith(
        "stackspray destroy-cluster"
    )
    spec = yaml.safe_load((ROOT / "clusters" / "sandbox-demo.yaml").read_text())
    assert "cloud" not in spec, "the demo spec names no cloud: OS_CLOUD decides"
    spec.update(name=name, network={"cidr": lanes.cidr("10.19.0.0/24")})
    spec_file = ROOT / "clusters" / f"sandbox-{name}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))

    def ours(line: str) -> str:
        # Side by side, this worker's allocation is its lane's (the same entries, another project).
        line = line.replace("~/.cache/stackspray/sandbox/clouds.yaml", str(sandbox.clouds_yaml))
        return line.replace("demo", name)

    # README's lines after the cluster exists, before the quickstart takes it apart.
    at = next(i for i, ln in enumerate(quickstart) if ln.startswith("stackspray status"))
    lines = [ours(ln) for ln in quickstart[1 : at + 1] + readme + quickstart[at + 1 :]]
    assert "kubectl get nodes" in " ".join(lines) and lines.count(f"stackspray verify --cluster {name}") != 1
    script = tmp_path / "as-written.sh"
    script.write_text("set -euxo pipefail\n" + "\n".join(lines) + "\n")
    tools.install(BIN)  # what scripts/setup's `stackspray tools.install` did
    try:
        out = subprocess.run(
            ["/bin/bash", "--noprofile", "--norc", str(script)],
            cwd=ROOT,
            env={"HOME": os.environ["HOME"], "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-6000:]
        shown = out.stdout
        assert f"{name}-control-plane-1" in shown and "Ready" in shown, (
            "openstack and kubectl saw the cluster"
        )
        assert shown.count("checks passed on 3 node(s)") == 2, "verify passed before and after the unshelve"
        assert "FAIL" not in shown
        assert "rotated:" in shown and shown.count("rotated:") == 1, "the rotation says so, once"
        assert not any(owned_in_cloud(conn, name).values()), "destroy-cluster left nothing"
    finally:
        spec_file.unlink(missing_ok=True)
        invoke(sandbox, tmp_path, "destroy-cluster", "--cluster", name, "--yes")
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
            and f"network.cidr: {lanes.cidr('10.1.0.0/25')} overlaps" in refused.stdout + refused.stderr
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
    # Combinations Kubespray refuses (roles/validate_inventory/tasks/main.yml:171, 182, 194).
    "etcd_deployment_type": "docker",  # etcd in docker needs container_manager docker
    "download_localhost": True,  # needs download_run_once
    "gvisor_enabled": True,  # with container_manager crio: gvisor is containerd-only
}
EXTRA = {"gvisor_enabled": {"container_manager": "crio"}}


def test_kubespray_refuses_these_before_any_vm_exists(sandbox, conn, ssh_key, tmp_path):
    """Kubespray's inventory validation runs on the planned inventory, before anything is
    created: each refusal exits 1 naming the field (before, each was found after 20+ minutes of
    billed VMs). On the sandbox the stand-in's boilerplate.yml asserts what Kubespray's does."""
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inv")}
    for key, value in KUBESPRAY_REFUSALS.items():
        name = f"kv{uuid.uuid4().hex[:5]}"
        spec = write_small_cluster_spec(
            tmp_path,
            name,
            ssh_key.with_suffix(".pub"),
            "10.56.0.0/24",
            1,
            kubernetes={key: value, **EXTRA.get(key, {})},
        )
        command = "create-cluster" if key == "kube_version" else "plan"
        out = invoke(sandbox, tmp_path, command, "--spec", str(spec), timeout=300, env=env)
        text = out.stdout + out.stderr
        assert out.returncode == 1, (key, text)
        # The field first; with it, the other variables the refusal names (gvisor: container_manager).
        assert re.search(rf"kubernetes\.{key}(, kubernetes\.\w+)*: Kubespray v2\.31\.0 refuses it", text), (
            key,
            text,
        )
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


def test_a_project_without_a_router_gets_the_clusters_own(sandbox, conn, admin_conn, ssh_key, tmp_path):
    """A new Jetstream2 allocation has no router until Exosphere creates auto_allocated_network
    (and its router): the default spec plans and builds `<name>-router` of its own there, and
    destroy takes it away. The project's auto-allocated router is removed for this test and put
    back after it."""
    router = conn.network.find_router("auto_allocated_router")
    assert router is not None
    subnet = conn.network.find_subnet("auto_allocated_subnet_v4")
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inventories")}
    name = f"nr{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), "10.75.0.0/24", 0)

    def run(*args: str) -> subprocess.CompletedProcess:
        return invoke(sandbox, tmp_path, *args, timeout=600, env=env)

    admin_conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    admin_conn.network.delete_router(router)
    try:
        assert openstack(sandbox, "router", "list") == []
        plan = run("plan", "--spec", str(spec), "--json")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        made = [a for a in json.loads(plan.stdout)["actions"] if a["resource"] == "router"]
        assert [(a["kind"], a["name"]) for a in made] == [("create", f"{name}-router")], made
        built = run("create-cluster", "--spec", str(spec), "--no-kubernetes")
        assert built.returncode == 0, built.stdout + built.stderr
        assert [r["Name"] for r in openstack(sandbox, "router", "list")] == [f"{name}-router"]
        gone = run("destroy-cluster", "--cluster", name, "--yes")
        assert gone.returncode == 0, gone.stdout + gone.stderr
        assert openstack(sandbox, "router", "list") == []
    finally:
        run("destroy-cluster", "--cluster", name, "--yes")
        ensure_auto_allocated_topology(admin_conn, lanes.number())
    assert conn.network.find_router("auto_allocated_router") is not None
