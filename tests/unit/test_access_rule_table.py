"""The cluster credential's access rules: what each cloud shape gets (access_rules.py)."""

from __future__ import annotations

import pytest

from stackspray.access_rules import rules_for, summary
from stackspray.spec import parse_spec

JETSTREAM2 = {
    "identity",
    "compute",
    "network",
    "image",
    "block-storage",
    "volumev3",
    "load-balancer",
    "shared-file-system",
    "sharev2",
    "dns",
    "placement",
    "object-store",
}


def pairs(rules, service):
    return {(r["method"], r["path"]) for r in rules if r["service"] == service}


def test_only_the_services_the_cluster_calls_and_only_those_the_cloud_has():
    rules = rules_for(JETSTREAM2)
    assert {r["service"] for r in rules} == {"compute", "network", "block-storage", "load-balancer"}
    sandbox = rules_for({"identity", "compute", "network", "image", "placement", "shared-file-system"})
    assert {r["service"] for r in sandbox} == {"compute", "network"}


@pytest.mark.parametrize(
    "service,method,path",
    [
        ("compute", "POST", "/v2.1/servers"),  # no new servers
        ("compute", "DELETE", "/v2.1/servers/*"),  # nor deleting them
        ("network", "POST", "/v2.0/networks"),
        ("network", "PUT", "/v2.0/routers/*"),
    ],
)
def test_the_rules_never_let_a_node_create_or_delete_machines_or_networks(service, method, path):
    assert (method, path) not in pairs(rules_for(JETSTREAM2), service)


def test_the_autoscaler_agent_may_list_flavors_and_shelve_but_compute_writes_end_there():
    """The agent (autoscale_agent.py) runs with the cluster credential: flavors and server
    actions (shelve, unshelve) are in the rules; no other compute write is."""
    compute = pairs(rules_for(JETSTREAM2), "compute")
    assert {("GET", "/v2.1/flavors/detail"), ("POST", "/v2.1/servers/*/action")} <= compute
    writes = {(m, p) for m, p in compute if m != "GET"}
    assert writes == {
        ("POST", "/v2.1/servers/*/action"),
        ("POST", "/v2.1/servers/*/os-volume_attachments"),  # Cinder CSI
        ("DELETE", "/v2.1/servers/*/os-volume_attachments/*"),
    }


def test_network_writes_only_where_load_balancers_need_them():
    without_octavia = pairs(rules_for({"compute", "network", "block-storage"}), "network")
    assert all(m == "GET" for m, _ in without_octavia)
    with_octavia = pairs(rules_for(JETSTREAM2), "network")
    assert ("POST", "/v2.0/floatingips") in with_octavia
    # manage-security-groups is off (Kubespray's default; the spec cannot turn it on): a node
    # can read security groups, never make one or change a port.
    writes = {(m, p) for m, p in with_octavia if m != "GET"}
    assert writes == {
        ("POST", "/v2.0/floatingips"),
        ("PUT", "/v2.0/floatingips/*"),
        ("DELETE", "/v2.0/floatingips/*"),
    }


def test_every_rule_is_one_keystone_accepts():
    # Keystone's schema (keystone/application_credential/schema.py): a method it knows, a path
    # starting with "/" of at most 225 characters, a service type.
    for r in rules_for(JETSTREAM2):
        assert r["method"] in {"POST", "GET", "HEAD", "PATCH", "PUT", "DELETE"}
        assert r["path"].startswith("/") and len(r["path"]) <= 225
        assert r["service"]
    assert summary(rules_for({"compute"})).endswith("compute")


def test_the_spec_opts_in(tmp_path):
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAA test")
    base = {
        "name": "demo",
        "cloud": "sandbox",
        "keypair": {"public_key_file": str(key)},
        "node_groups": {
            "control-plane": {"flavor": "m3.small", "count": 1},
            "workers": {"flavor": "m3.tiny", "count": 0},
        },
    }
    assert parse_spec(base).credential.access_rules is False
    assert parse_spec({**base, "credential": {"access_rules": True}}).credential.access_rules is True
