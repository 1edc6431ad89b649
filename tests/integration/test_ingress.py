"""A cluster ready for JupyterHub's way in (`ingress:`), on the sandbox, as a user builds it:
`invoke create-cluster` from another folder with OS_CLOUD exported; the 80/443 security group
judged through openstacksdk, the ClusterIssuer (a cert-manager custom resource, served once
Kubespray's cert-manager CRDs exist) and the share's claim in the hub's namespace through the
official kubernetes client and the real kubectl."""

from __future__ import annotations

import json
import subprocess

import yaml
from helpers import kube_tools, make_spec, user_runner  # noqa: F401 (make_spec is a fixture)
from kubernetes import client, config

from stackspray import ingress
from stackspray.state import ClusterDir

STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


def http_rules(conn, sg_name: str) -> set[tuple]:
    found = [g for g in conn.network.security_groups() if g.name == sg_name]
    assert len(found) == 1, f"{len(found)} groups named {sg_name}"
    return {
        (r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"])
        for r in found[0].security_group_rules
        if r["direction"] == "ingress"
    }


def port_groups(conn, port_name: str) -> set[str]:
    (port,) = list(conn.network.ports(name=port_name))
    by_id = {g.id: g.name for g in conn.network.security_groups()}
    return {by_id.get(i, i) for i in port.security_group_ids}


def test_ingress_opens_80_and_443_on_the_control_plane_and_applies_the_issuer_and_the_hub_claim(
    make_spec, sandbox, conn, tmp_path
):
    path, inv = make_spec(workers=1, share={"namespace": "jhub", "owner": {"uid": 1000, "gid": 100}})
    spec_doc = yaml.safe_load(path.read_text())
    name = spec_doc["name"]
    host = f"{name}.example.org"
    spec_doc["ingress"] = {"email": "ops@example.org", "host": host, "acme_server": STAGING}
    path.write_text(yaml.safe_dump(spec_doc))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"STACKSPRAY_INVENTORIES": str(inv)}

    run = user_runner(sandbox, elsewhere, env)

    built = run("create-cluster", "--spec", str(path))
    assert f"ingress: https://{host}/" in built.stdout
    assert "running ingress.yml" in built.stdout
    # share.owner: the sandbox has no CephFS client to mount the share with, and says so.
    assert "sandbox: the share's owner is not set (no CephFS client here)" in built.stdout

    # The cloud: 80 and 443 from everywhere in their own group, on the control plane's port only.
    want = {("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0")}
    assert http_rules(conn, f"{name}-ingress") == want
    assert f"{name}-ingress" in port_groups(conn, f"{name}-control-plane-1-port")
    assert f"{name}-ingress" not in port_groups(conn, f"{name}-workers-1-port")

    # The inventory: Kubespray's cert-manager and helm, and the ingress playbook's variables.
    cdir = ClusterDir(name, inv)
    kvars = yaml.safe_load((cdir.path / "group_vars/all/stackspray.yml").read_text())
    assert kvars["cert_manager_enabled"] is True and kvars["helm_enabled"] is True
    ivars = yaml.safe_load((cdir.path / ingress.VARS_FILE).read_text())
    assert ivars["ingress_acme_server"] == STAGING and ivars["ingress_install_chart"] is False

    # Kubernetes: the ClusterIssuer and the share's claim in the hub's namespace.
    state = cdir.load()
    api = config.new_client_from_config(state.kubeconfig)
    issuer = client.CustomObjectsApi(api).get_cluster_custom_object(
        "cert-manager.io", "v1", "clusterissuers", ingress.ISSUER
    )
    acme = issuer["spec"]["acme"]
    assert acme["email"] == "ops@example.org" and acme["server"] == STAGING
    assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": "traefik"}}}]
    pvc = client.CoreV1Api(api).read_namespaced_persistent_volume_claim(f"{name}-share", "jhub")
    assert pvc.status.phase == "Bound"
    kubectl = kube_tools()["kubectl"]
    listed = subprocess.run(
        [str(kubectl), "--kubeconfig", state.kubeconfig, "get", "clusterissuers", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and listed.stdout.split() == [
        f"clusterissuer.cert-manager.io/{ingress.ISSUER}"
    ], listed.stdout + listed.stderr

    # status names the URL; verify reaches 80/443 through the cloud (nothing listens on the
    # sandbox, which has no controller: the node answers with a reset, not silence).
    st = json.loads(run("status", "--cluster", name, "--json").stdout)
    assert st["ingress"] == {"url": f"https://{host}/", "address": state.floating_ip.address}
    checked = json.loads(run("verify", "--cluster", name, "--json").stdout)
    probed = checked["results"][f"ingress {state.floating_ip.address}"]
    assert probed == {
        f"port {p} reaches the ingress controller [stand-in node: open, no controller on the sandbox]": "N/A"
        for p in (80, 443)
    }, probed

    # A re-run keeps the rules and runs no playbook at all (no Kubespray, no ingress, no share).
    again = run("create-cluster", "--spec", str(path))
    assert "running " not in again.stdout and "ingress: set up already" in again.stdout
    assert http_rules(conn, f"{name}-ingress") == want

    # `ingress` taken out of the spec: 80/443 close and the group leaves the port; cert-manager
    # is no longer asked of Kubespray, so cluster.yml runs once.
    del spec_doc["ingress"]
    path.write_text(yaml.safe_dump(spec_doc))
    closed = run("create-cluster", "--spec", str(path))
    assert "running cluster.yml" in closed.stdout
    assert http_rules(conn, f"{name}-ingress") == set()
    assert f"{name}-ingress" not in port_groups(conn, f"{name}-control-plane-1-port")
    assert not (cdir.path / ingress.VARS_FILE).exists() and cdir.load().ingress is None


def a_records(conn, zone_name: str) -> dict[str, tuple[list[str], str]]:
    (zone,) = [z for z in conn.dns.zones() if z.name == zone_name]
    return {
        r.name: (sorted(r.records), r.description or "") for r in conn.dns.recordsets(zone) if r.type == "A"
    }


def test_ingress_dns_record_follows_the_spec_refuses_a_foreign_name_and_goes_with_destroy(
    make_spec, sandbox, conn, tmp_path
):
    """The sandbox runs Designate (fake backend, mdns answering the polls): the project's zone
    exists as on Jetstream2, the record is made through the DNS API and judged through it."""
    from stackspray_sandbox import lanes

    PROJECT_ZONE = lanes.zone()  # noqa: N806 (this lane's project zone)

    from stackspray.names import cluster_tag

    path, inv = make_spec(workers=0)
    doc = yaml.safe_load(path.read_text())
    name = doc["name"]
    doc["ingress"] = {
        "email": "ops@example.org",
        "acme_server": STAGING,
        "dns": {"zone": PROJECT_ZONE, "name": name},
    }
    path.write_text(yaml.safe_dump(doc))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"STACKSPRAY_INVENTORIES": str(inv)}

    run = user_runner(sandbox, elsewhere, env)

    fqdn = f"{name}.{PROJECT_ZONE}"
    built = run("create-cluster", "--spec", str(path))
    fip = ClusterDir(name, inv).load().floating_ip.address
    assert f"DNS: {fqdn} -> {fip}" in built.stdout and f"ingress: https://{fqdn[:-1]}/" in built.stdout
    assert a_records(conn, PROJECT_ZONE)[fqdn] == ([fip], cluster_tag(name))
    again = run("create-cluster", "--spec", str(path))
    assert "nothing to change" in again.stdout

    # A name someone else holds in the zone: refused before anything changes; theirs is untouched.
    (zone,) = [z for z in conn.dns.zones() if z.name == PROJECT_ZONE]
    taken = conn.dns.create_recordset(
        zone, name=f"taken-{name}.{PROJECT_ZONE}", type="A", records=["192.0.2.7"]
    )
    try:
        doc["ingress"]["dns"]["name"] = f"taken-{name}"
        path.write_text(yaml.safe_dump(doc))
        refused = run("create-cluster", "--spec", str(path), ok=False)
        assert f"taken-{name}.{PROJECT_ZONE}" in refused.stdout + refused.stderr
        assert "not owned by cluster" in refused.stdout + refused.stderr
        records = a_records(conn, PROJECT_ZONE)
        assert records[f"taken-{name}.{PROJECT_ZONE}"] == (["192.0.2.7"], "") and fqdn in records

        # Another name of its own: the new record is made and the old one deleted.
        doc["ingress"]["dns"]["name"] = f"{name}-2"
        path.write_text(yaml.safe_dump(doc))
        run("create-cluster", "--spec", str(path))
        records = a_records(conn, PROJECT_ZONE)
        assert records[f"{name}-2.{PROJECT_ZONE}"] == ([fip], cluster_tag(name)) and fqdn not in records

        run("destroy-cluster", "--cluster", name, "--yes")
        records = a_records(conn, PROJECT_ZONE)
        assert f"{name}-2.{PROJECT_ZONE}" not in records and f"taken-{name}.{PROJECT_ZONE}" in records
    finally:
        conn.dns.delete_recordset(taken, zone, ignore_missing=True)
