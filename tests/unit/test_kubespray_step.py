"""Which Kubespray playbook a plan's changes call for on a cluster that already runs Kubernetes, and
the kubeconfig create-cluster writes from Kubespray's admin.conf."""

from __future__ import annotations

import pytest
import yaml

from stackspray.errors import StackSprayError
from stackspray.kubespray import kubespray_step, named_kubeconfig
from stackspray.plan import Action

CP = "c-control-plane-"


def act(kind, resource, name, **detail):
    return Action(kind, resource, name, "", detail)


@pytest.mark.parametrize(
    "actions, built, expected",
    [
        ([act("noop", "server", "c-workers-1")], False, ("build", [])),
        ([act("noop", "server", "c-workers-1")], True, ("none", [])),
        (
            [
                act("create", "server", "c-workers-2"),
                act("create", "server", "c-workers-3"),
                act("create", "server-group", "c-workers-2"),
            ],
            True,
            ("scale", ["c-workers-2", "c-workers-3"]),
        ),
        (
            [act("create", "server", "c-control-plane-2"), act("create", "server", "c-workers-2")],
            True,
            ("build", []),
        ),
        (
            [act("delete", "server", "c-workers-3"), act("delete", "port", "c-workers-3-port")],
            True,
            ("none", []),
        ),
        ([act("create", "floating-ip", "c-fip")], True, ("build", [])),
        ([act("create", "share", "c-share"), act("create", "access-rule", "c-share")], True, ("none", [])),
        (
            [
                act("create", "security-group", "c-ingress"),
                act("update", "security-group", "c-ssh"),
                act("update", "port", "c-control-plane-1-port"),
            ],
            True,
            ("none", []),
        ),
    ],
    ids=[
        "first-build",
        "nothing",
        "new-workers",
        "new-control-plane",
        "removal",
        "new-fip",
        "share-only",
        "security-groups-and-ports-only",
    ],
)
def test_kubespray_step(actions, built, expected):
    assert kubespray_step(actions, built, CP) == expected


def test_changed_kubespray_variables_run_cluster_yml_even_with_nothing_to_change_in_the_cloud():
    nothing = [act("noop", "server", "c-workers-1")]
    assert kubespray_step(nothing, True, CP, inputs_changed=True) == ("build", [])
    new_worker = [act("create", "server", "c-workers-2")]
    assert kubespray_step(new_worker, True, CP, inputs_changed=True) == ("build", [])


def test_servers_kubespray_never_joined_join_on_the_next_converge():
    """An add-nodes cut short after its VMs were created (or run with --no-kubernetes) leaves
    servers Kubernetes does not know: the next converge, with nothing to change in the cloud,
    still joins them; a control-plane one takes cluster.yml."""
    nothing = [act("noop", "server", "c-workers-1"), act("noop", "server", "c-workers-2")]
    assert kubespray_step(nothing, True, CP, unjoined=["c-workers-2"]) == ("scale", ["c-workers-2"])
    more = [act("create", "server", "c-workers-3")]
    assert kubespray_step(more, True, CP, unjoined=["c-workers-2", "c-workers-3"]) == (
        "scale",
        ["c-workers-3", "c-workers-2"],
    )
    assert kubespray_step(nothing, True, CP, unjoined=["c-control-plane-2"]) == ("build", [])
    assert kubespray_step(nothing, False, CP, unjoined=["c-workers-2"]) == ("build", [])


def test_kubespray_missing_is_refused_naming_the_command(tmp_path, monkeypatch):
    """Checked before anything is created (create-cluster, add-nodes and plan on a real cloud)."""
    import pytest

    from stackspray import kubespray

    monkeypatch.setenv("STACKSPRAY_KUBESPRAY_CACHE", str(tmp_path))
    with pytest.raises(kubespray.KubesprayMissing, match=r"invoke kubespray.install.*nothing was created"):
        kubespray.check_installed()


def test_the_pin_names_v2_31_0_and_its_commit():
    from stackspray import kubespray

    p = kubespray.pin()
    assert p["tag"] == "v2.31.0" and p["commit"] == "1c9add48975060f45396b34d8e022c30d7f80dab"


ADMIN_CONF = """apiVersion: v1
kind: Config
clusters:
- name: cluster.local
  cluster: {server: "https://203.0.113.5:6443", certificate-authority-data: Q0E=}
contexts:
- name: kubernetes-admin@cluster.local
  context: {cluster: cluster.local, user: kubernetes-admin}
current-context: kubernetes-admin@cluster.local
preferences: {}
users:
- name: kubernetes-admin
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
"""


def test_the_kubeconfig_is_named_after_the_cluster():
    doc = yaml.safe_load(named_kubeconfig(ADMIN_CONF, "demo"))
    assert doc["clusters"][0]["name"] == doc["users"][0]["name"] == doc["current-context"] == "demo"
    assert doc["contexts"] == [{"name": "demo", "context": {"cluster": "demo", "user": "demo"}}]
    assert doc["clusters"][0]["cluster"]["server"] == "https://203.0.113.5:6443"
    assert doc["users"][0]["user"]["client-key-data"] == "S0VZ" and doc["preferences"] == {}


def test_a_kubeconfig_of_several_clusters_is_refused():
    two = yaml.safe_load(ADMIN_CONF)
    two["clusters"].append(dict(two["clusters"][0], name="b"))
    with pytest.raises(StackSprayError, match="one-cluster kubeconfig"):
        named_kubeconfig(yaml.safe_dump(two), "demo")
