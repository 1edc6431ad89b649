"""Cluster spec validation: every problem is named with its field and how to fix it."""

from __future__ import annotations

import copy

import pytest

from stackspray.errors import SpecError
from stackspray.spec import CloudCatalog, check_against_cloud, parse_spec

BASE = {
    "name": "demo",
    "cloud": "sandbox",
    "keypair": {"name": "my-key"},
    "node_groups": {
        "control-plane": {"flavor": "m3.small", "count": 1},
        "workers": {"flavor": "m3.small", "count": 2},
    },
}


def spec_with(**changes):
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for p in parents:
            node = node.setdefault(p.replace("_dash_", "-"), {})
        leaf = leaf.replace("_dash_", "-")
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return data


DELETE = object()


def test_minimal_spec_gets_jetstream2_defaults():
    s = parse_spec(BASE, env={})
    assert s.image == "Featured-Ubuntu24" and s.ssh_user == "ubuntu"
    assert s.network.cidr == "10.0.0.0/24" and s.network.external_network == "public"
    assert s.ssh_cidrs == ("0.0.0.0/0",) and s.share is None
    assert s.control_plane.count == 1
    assert s.server_names(s.group("workers")) == ["demo-workers-1", "demo-workers-2"]


def test_cloud_defaults_to_os_cloud():
    data = copy.deepcopy(BASE)
    del data["cloud"]
    assert parse_spec(data, env={"OS_CLOUD": "js2"}).cloud == "js2"


BAD = [
    (
        "unknown top-level key",
        spec_with(netwrok={"cidr": "10.1.0.0/24"}),
        "netwrok: unknown key",
        "did you mean 'network'",
    ),
    ("missing name", spec_with(name=DELETE), "name: is required", None),
    ("name with capitals", spec_with(name="Demo_1"), "name: 'Demo_1' must be", "lowercase"),
    (
        "even etcd count",
        spec_with(node_groups__control_dash_plane__count=2),
        "control-plane.count: 2 is even",
        "use 1 or 3",
    ),
    (
        "no control plane",
        spec_with(node_groups={"workers": {"flavor": "m3.small", "count": 1}}),
        "`control-plane` is required",
        None,
    ),
    (
        "no workers group",
        spec_with(node_groups={"control-plane": {"flavor": "m3.small", "count": 1}}),
        "`workers` is required",
        None,
    ),
    (
        "count is text",
        spec_with(node_groups__workers__count="three"),
        "workers.count: must be a whole number",
        None,
    ),
    ("negative count", spec_with(node_groups__workers__count=-1), "workers.count: must be at least 0", None),
    ("missing flavor", spec_with(node_groups__workers__flavor=DELETE), "workers.flavor: is required", None),
    (
        "unknown group key",
        spec_with(node_groups__workers__flavour="m3.small"),
        "workers.flavour: unknown key",
        "did you mean 'flavor'",
    ),
    (
        "bad network cidr",
        spec_with(network={"cidr": "10.0.0.300/24"}),
        "network.cidr: '10.0.0.300/24' is not",
        None,
    ),
    (
        "pods overlap the network",
        spec_with(network={"cidr": "10.233.0.0/16"}),
        "kubernetes.pod_cidr: 10.233.64.0/18 overlaps network.cidr",
        None,
    ),
    (
        "existing and cidr",
        spec_with(network={"existing": "auto_allocated_network", "cidr": "10.1.0.0/24"}),
        "network: give either `existing`",
        None,
    ),
    ("no keypair", spec_with(keypair={}), "keypair: give `name`", None),
    (
        "missing public key file",
        spec_with(keypair={"public_key_file": "/nonexistent/id.pub"}),
        "keypair.public_key_file: /nonexistent/id.pub does not exist",
        None,
    ),
    (
        "bad floating IP",
        spec_with(floating_ip={"address": "not-an-ip"}),
        "floating_ip.address: 'not-an-ip' is not an IP",
        None,
    ),
    ("share size zero", spec_with(share={"size_gb": 0}), "share.size_gb: must be at least 1", None),
    (
        "share rule not prefixed",
        spec_with(share={"size_gb": 5, "access_rule": "rw"}),
        "share.access_rule: 'rw' must start with the cluster name",
        None,
    ),
    (
        "reserved extra group",
        spec_with(node_groups__workers__extra_groups=["etcd"]),
        "extra_groups[0]: 'etcd' is managed by stackspray",
        None,
    ),
    (
        "bad ssh cidr",
        spec_with(allowed_cidrs={"ssh": ["everyone"]}),
        "allowed_cidrs.ssh[0]: 'everyone' is not",
        None,
    ),
    ("no cloud anywhere", spec_with(cloud=DELETE), "cloud: no cloud given and $OS_CLOUD is not set", None),
    (
        "access rules not a boolean",
        spec_with(credential={"access_rules": "yes"}),
        "credential.access_rules: must be true or false, got 'yes'",
        None,
    ),
    (
        "unknown credential key",
        spec_with(credential={"acces_rules": True}),
        "credential.acces_rules: unknown key",
        "did you mean 'access_rules'?",
    ),
    (
        "autoscale max above the group's count",
        spec_with(node_groups__workers__autoscale={"max": 5}),
        "node_groups.workers.autoscale.max: 5 is above the group's count 2",
        "adds none",
    ),
    (
        "autoscale min above max",
        spec_with(node_groups__workers__autoscale={"min": 2, "max": 1}),
        "node_groups.workers.autoscale.min: 2 is above max 1",
        None,
    ),
    (
        "autoscale on the control plane",
        spec_with(node_groups__control_dash_plane__autoscale={"max": 1}),
        "node_groups.control-plane.autoscale: the control plane is never shelved",
        None,
    ),
    (
        "autoscale idle not a duration",
        spec_with(node_groups__workers__autoscale={"idle": "half an hour"}),
        "node_groups.workers.autoscale.idle: expected a duration such as 30s, 30m or 2h, got 'half an hour'",
        None,
    ),
    (
        "node label with a template",
        spec_with(kubernetes={"node_labels": {"site": "{{ lookup('env','HOME') }}"}}),
        "kubernetes.node_labels.'site': ",
        "is not a Kubernetes label value",
    ),
    (
        "node label stackspray sets",
        spec_with(kubernetes={"node_labels": {"stackspray.io/group": "x"}}),
        "kubernetes.node_labels.'stackspray.io/group': is set by stackspray itself",
        None,
    ),
    (
        "node label name",
        spec_with(kubernetes={"node_labels": {"bad key!": "x"}}),
        "is not a Kubernetes label name",
        None,
    ),
    ("su_rates not a mapping", spec_with(su_rates=2), "su_rates: must be a mapping of flavor family", None),
    (
        "su_rates not a number",
        spec_with(su_rates={"g3": "half"}),
        "su_rates.g3: SU per vCPU-hour must be a number from 0 to 1000, got 'half'",
        None,
    ),
    (
        "su_rates a flavor",
        spec_with(su_rates={"g3.small": 2}),
        "su_rates.g3.small: not a flavor family",
        "g3",
    ),
    (
        "autoscale unknown key",
        spec_with(node_groups__workers__autoscale={"maximum": 2}),
        "node_groups.workers.autoscale.maximum: unknown key",
        "did you mean 'max'?",
    ),
    (
        "claims without their size",
        spec_with(workloads={"volumes": 30}),
        "workloads.volume_gb: is required with workloads.volumes",
        None,
    ),
    (
        "a negative count of Services",
        spec_with(workloads={"load_balancers": -1}),
        "workloads.load_balancers: must be at least 0",
        None,
    ),
    (
        "claims with no default class to land on",
        spec_with(workloads={"volumes": 2, "volume_gb": 5}, kubernetes={"default_storage_class": False}),
        "workloads.volumes: counts claims on the default class",
        None,
    ),
    (
        "a workloads key that is not one",
        spec_with(workloads={"volume": 2}),
        "workloads.volume: unknown key",
        "did you mean 'volumes'",
    ),
]


def test_autoscale_settings_of_a_group():
    s = parse_spec(
        spec_with(node_groups__workers__autoscale={"min": 1, "idle": "45m", "pending_for": 10}), env={}
    )
    auto = s.group("workers").autoscale
    assert (auto.min, auto.max, auto.idle, auto.pending_for) == (1, 2, 2700.0, 10.0)
    assert parse_spec(BASE, env={}).group("workers").autoscale is None


def test_su_rates_override_families():
    assert parse_spec(spec_with(su_rates={"g3": 2, "m3": 1.5}), env={}).su_rates == (("g3", 2.0), ("m3", 1.5))
    assert parse_spec(BASE, env={}).su_rates == ()


@pytest.mark.parametrize("data,message,hint", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_spec_names_the_field_and_fix(data, message, hint):
    with pytest.raises(SpecError) as err:
        parse_spec(data, source="clusters/demo.yaml", env={})
    text = str(err.value)
    assert message in text
    if hint:
        assert hint in text
    assert text.startswith("clusters/demo.yaml:")


def test_all_problems_are_reported_at_once():
    data = spec_with(name="Bad!", node_groups__control_dash_plane__count=4, network={"cidr": "x"})
    with pytest.raises(SpecError) as err:
        parse_spec(data, env={})
    assert len(err.value.problems) == 3


CATALOG = CloudCatalog(
    flavors={"m3.small": {"vcpus": 2, "ram": 6144}, "m3.medium": {"vcpus": 8, "ram": 30720}},
    images={"Featured-Ubuntu24"},
    networks={"public", "auto_allocated_network"},
    external_networks={"public"},
    keypairs={"my-key"},
    floating_ips={"149.165.0.10": None},
    share_types={"cephfsnativetype"},
)


@pytest.mark.parametrize(
    "data,message",
    [
        (
            spec_with(node_groups__workers__flavor="m3.smal"),
            "workers.flavor: 'm3.smal' does not exist in cloud 'sandbox' — did you mean 'm3.small'?",
        ),
        (spec_with(image="Featured-Ubuntu18"), "image: 'Featured-Ubuntu18' does not exist"),
        (spec_with(network={"existing": "nope"}), "network.existing: no network 'nope'"),
        (
            spec_with(network={"external_network": "ext"}),
            "network.external_network: 'ext' is not an external network",
        ),
        (spec_with(keypair={"name": "other"}), "keypair.name: no keypair 'other'"),
        (
            spec_with(floating_ip={"address": "149.165.0.99"}),
            "floating_ip.address: 149.165.0.99 is not allocated",
        ),
        (spec_with(share={"size_gb": 1, "share_type": "nfs"}), "share.share_type: 'nfs' does not exist"),
    ],
)
def test_cloud_check_names_what_is_missing(data, message):
    spec = parse_spec(data, env={})
    with pytest.raises(SpecError) as err:
        check_against_cloud(spec, CATALOG)
    assert message in str(err.value)


def test_cloud_check_passes_for_a_good_spec():
    check_against_cloud(parse_spec(BASE, env={}), CATALOG)


@pytest.mark.parametrize("name", ["demo\n", "Demo", "demo-", "-demo", "a" * 33, "de mo", "demo/x"])
def test_a_cluster_name_must_match_entirely(name):
    """`re.match` with `$` let "demo\\n" through; the name becomes hostnames and file names."""
    data = copy.deepcopy(BASE)
    data["name"] = name
    with pytest.raises(SpecError) as err:
        parse_spec(data, env={})
    assert any(p.startswith("name:") for p in err.value.problems)


@pytest.mark.parametrize("flag_value", ["../..", "demo\n* * * * * rm -rf ~", "a%b", "", "Demo"])
def test_cluster_flags_are_checked_like_spec_names(flag_value):
    from stackspray.errors import StackSprayError
    from stackspray.spec import check_cluster_name

    with pytest.raises(StackSprayError, match="--cluster"):
        check_cluster_name(flag_value)
    assert check_cluster_name("demo-2") == "demo-2"


def test_plan_warns_when_ssh_or_the_api_is_open_to_the_world():
    from stackspray.converge import exposure_warnings

    open_spec = parse_spec(copy.deepcopy(BASE), env={})
    assert [w.split(" ")[0] for w in exposure_warnings(open_spec)] == ["SSH", "the"]
    narrowed = copy.deepcopy(BASE)
    narrowed["allowed_cidrs"] = {"ssh": ["203.0.113.0/24"], "api": ["203.0.113.0/24"]}
    assert exposure_warnings(parse_spec(narrowed, env={})) == []


def test_the_jetstream2_example_spec_is_valid(tmp_path, monkeypatch):
    from pathlib import Path

    from stackspray.spec import load_spec

    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519.pub").write_text("ssh-ed25519 AAAAC3Nza example\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = load_spec(
        Path(__file__).resolve().parents[2] / "clusters" / "jetstream2-example.yaml", env={"OS_CLOUD": "js2"}
    )
    assert spec.cloud == "js2" and spec.network.router is None and not spec.network.create_router
    assert spec.ssh_cidrs == ("203.0.113.0/24",) and [g.flavor for g in spec.node_groups] == ["m3.medium"] * 2


INGRESS = {"email": "ops@example.edu", "host": "hub.example.edu"}


def test_ingress_defaults_serve_https_from_the_control_plane_to_everyone():
    ing = parse_spec(spec_with(ingress=dict(INGRESS)), env={}).ingress
    assert ing.group == "control-plane" and ing.http_cidrs == ("0.0.0.0/0",) and ing.tls
    assert ing.url == "https://hub.example.edu/" and "letsencrypt" in ing.acme_server


@pytest.mark.parametrize(
    "ingress, field, words",
    [
        ({"host": "hub.example.edu"}, "ingress.email", "required with TLS"),
        ({"email": "ops@example.edu"}, "ingress", "TLS needs a DNS name"),
        ({**INGRESS, "email": "not-an-address"}, "ingress.email", "not an e-mail address"),
        ({**INGRESS, "group": "gpu"}, "ingress.group", "not a node group"),
        ({**INGRESS, "allowed_cidrs": {"http": ["10.0.0.1/8"]}}, "ingress.allowed_cidrs.http[0]", "CIDR"),
        ({**INGRESS, "host": "a" * 60 + ".example.edu"}, "ingress.host", "Let's Encrypt refuses"),
        ({**INGRESS, "host": "bad_name.example.edu"}, "ingress.host", "not a DNS name"),
        ({**INGRESS, "acme_server": "http://acme.example/dir"}, "ingress.acme_server", "https://"),
        ({**INGRESS, "tls": "yes"}, "ingress.tls", "true or false"),
        ({**INGRESS, "port": 8080}, "ingress.port", "unknown key"),
        (
            {**INGRESS, "dns": {"zone": "proj.projects.jetstream-cloud.org", "name": "hub"}},
            "ingress.host",
            "is not the name ingress.dns makes",
        ),
        (
            {"email": "a@b.org", "dns": {"zone": "p.example.org", "name": "h" * 60}},
            "ingress.dns",
            "Let's Encrypt refuses",
        ),
    ],
    ids=[
        "tls-needs-email",
        "tls-needs-a-name",
        "bad-email",
        "unknown-group",
        "bad-cidr",
        "name-over-64",
        "bad-name",
        "acme-not-https",
        "tls-not-bool",
        "unknown-key",
        "host-and-dns-disagree",
        "dns-name-over-64",
    ],
)
def test_ingress_problems_name_the_field(ingress, field, words):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(ingress=ingress), env={})
    assert any(p.startswith(f"{field}:") and words in p for p in err.value.problems), err.value.problems


def test_ingress_owns_cert_manager_and_needs_helm():
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(ingress=dict(INGRESS), kubernetes={"cert_manager_enabled": True}), env={})
    assert any(
        p.startswith("kubernetes.cert_manager_enabled:") and "ingress.tls" in p for p in err.value.problems
    )
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(ingress=dict(INGRESS), kubernetes={"helm_enabled": False}), env={})
    assert any(p.startswith("kubernetes.helm_enabled:") for p in err.value.problems)
    plain = parse_spec(spec_with(ingress={"tls": False, "group": "workers"}), env={}).ingress
    assert plain.url is None and plain.group == "workers"


def test_ingress_dns_makes_the_host_and_needs_the_clouds_dns_service_and_zone():
    data = spec_with(
        ingress={"email": "a@b.org", "dns": {"zone": "Proj.projects.jetstream-cloud.org", "name": "hub"}}
    )
    spec = parse_spec(data, env={})
    assert spec.ingress.dns.zone == "proj.projects.jetstream-cloud.org." and spec.ingress.dns.name == "hub"
    assert spec.ingress.host == "hub.proj.projects.jetstream-cloud.org"
    base = dict(
        flavors={"m3.small": {"vcpus": 2, "ram": 6144}},
        images={"Featured-Ubuntu24"},
        networks=set(),
        external_networks={"public"},
        keypairs={"my-key"},
        floating_ips={},
        share_types=None,
    )
    with pytest.raises(SpecError) as err:
        check_against_cloud(spec, CloudCatalog(**base, dns_zones=None))
    assert any(p.startswith("ingress.dns:") and "no DNS service" in p for p in err.value.problems)
    with pytest.raises(SpecError) as err:
        check_against_cloud(spec, CloudCatalog(**base, dns_zones={"other.example.org."}))
    assert any(p.startswith("ingress.dns.zone:") and "other.example.org." in p for p in err.value.problems), (
        err.value.problems
    )
    check_against_cloud(spec, CloudCatalog(**base, dns_zones={"proj.projects.jetstream-cloud.org."}))
    with pytest.raises(SpecError) as err:
        parse_spec(spec_with(ingress={**data["ingress"], "group": "workers"}), env={})
    assert any(p.startswith("ingress.dns:") and "floating IP" in p for p in err.value.problems)
