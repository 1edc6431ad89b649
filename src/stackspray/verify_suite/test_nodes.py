"""What a built cluster's nodes must look like. Run by `invoke verify` with pytest-testinfra over
SSH (testinfra's ansible backend reads the cluster's inventory, jump host included).

On the stackspray sandbox no Kubernetes runs: nodes the Kubespray stand-in built carry
/etc/kubernetes/STACKSPRAY-STAND-IN, and the kubelet/containerd checks then check that marker
instead and say so in their name ("stand-in")."""

from __future__ import annotations

import os

import pytest

STAND_IN = "/etc/kubernetes/STACKSPRAY-STAND-IN"
CP = set(filter(None, os.environ.get("STACKSPRAY_VERIFY_CONTROL_PLANE", "").split(",")))
FIRST_CP = os.environ.get("STACKSPRAY_VERIFY_FIRST_CP", "")
ALL = set(filter(None, os.environ.get("STACKSPRAY_VERIFY_NODES", "").split(",")))


def _name(host) -> str:
    return host.backend.get_hostname()


def test_hostname_is_the_inventory_name(host):
    assert host.check_output("hostname") == _name(host)


def test_etc_hosts_lists_every_node(host):
    text = host.file("/etc/hosts").content_string
    missing = sorted(n for n in ALL if n not in text)
    assert not missing, f"/etc/hosts lacks {missing}"


def test_ssh_listens(host):
    assert host.socket("tcp://0.0.0.0:22").is_listening or host.socket("tcp://:::22").is_listening


@pytest.mark.parametrize("service", ["kubelet", "containerd"])
def test_kubernetes_services_run(host, service, record_property):
    if host.file(STAND_IN).exists:
        record_property("stand_in", True)  # the table says so
        assert host.file(STAND_IN).contains("no Kubernetes is installed"), "stand-in marker unreadable"
        return
    svc = host.service(service)
    assert svc.is_running and svc.is_enabled, f"{service} is not running and enabled"


def test_api_server_listens_on_the_first_control_plane(host):
    if _name(host) != FIRST_CP:
        pytest.skip("not the first control-plane node")
    assert host.socket("tcp://0.0.0.0:6443").is_listening or host.socket("tcp://:::6443").is_listening


@pytest.mark.parametrize(
    "path",
    [
        "/etc/kubernetes/cinder_cloud_config",
        "/etc/kubernetes/external-openstack-cloud-config-secret.yml",
    ],
)
def test_cloud_config_present_and_private(host, path):
    if _name(host) != FIRST_CP:
        pytest.skip("cloud config files live on the first control-plane node")
    f = host.file(path)
    assert f.exists, f"{path} is missing"
    assert f.user == "root" and f.mode & 0o007 == 0, f"{path} is readable by others (mode {oct(f.mode)})"
