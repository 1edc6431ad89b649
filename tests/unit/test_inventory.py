"""Kubespray inventory rendering: groups, hosts, variables; secrets only in the 0600 file;
real ansible-core (`ansible-inventory --list`) parses what we write."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackspray import ingress, inventory
from stackspray.cluster_state import ClusterState
from stackspray.errors import StackSprayError
from stackspray.inventory import Credential
from stackspray.spec import SpecError, parse_spec
from stackspray.target import PLAIN

SECRET = "s3cr3t-value-that-must-not-leak"
CRED = Credential(id="ac-id-123", name="demo-k8s-20261122T000000Z", secret=SECRET)


def make(cp: int, workers: int, gpu: int = 0, tmp: Path = Path("/tmp/x")):
    groups = {
        "control-plane": {"flavor": "m3.medium", "count": cp},
        "workers": {"flavor": "m3.medium", "count": workers},
    }
    if gpu:
        groups["gpu"] = {"flavor": "g3.small", "count": gpu, "extra_groups": ["gpu-node"]}
    spec = parse_spec(
        {
            "name": "demo",
            "cloud": "c",
            "keypair": {"name": "k", "private_key_file": "/keys/id"},
            "node_groups": groups,
        },
        env={},
    )
    servers = {}
    n = 10
    for g in spec.node_groups:
        for name in spec.server_names(g):
            servers[name] = {"id": f"id-{n}", "fixed_ip": f"10.0.0.{n}", "group": g.name}
            n += 1
    state = ClusterState.from_dict(
        {
            "servers": servers,
            "floating_ip": {"id": "f1", "address": "203.0.113.7"},
            "network": {"id": "net-1", "subnet": "subnet-1", "cidr": "10.0.0.0/24"},
        }
    )
    files = inventory.render(
        spec,
        state,
        auth_url="https://keystone.example:5000/v3",
        region="IU",
        credential=CRED,
        cluster_dir=tmp,
    )
    return spec, files


def ansible_inventory(tmp_path: Path, files) -> dict:
    inventory.write(tmp_path, files)
    exe = Path(sys.executable).with_name("ansible-inventory")
    out = subprocess.run(
        [str(exe), "-i", str(tmp_path / "hosts.yml"), "--list"],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False"),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("cp,workers,gpu", [(1, 1, 0), (3, 5, 0), (1, 2, 1)])
def test_groups_and_hosts(tmp_path, cp, workers, gpu):
    _, files = make(cp, workers, gpu, tmp_path)
    inv = ansible_inventory(tmp_path, files)
    cps = [f"demo-control-plane-{i}" for i in range(1, cp + 1)]
    ws = [f"demo-workers-{i}" for i in range(1, workers + 1)] + [f"demo-gpu-{i}" for i in range(1, gpu + 1)]
    assert sorted(inv["kube_control_plane"]["hosts"]) == cps
    assert sorted(inv["etcd"]["hosts"]) == cps and len(cps) % 2 == 1
    assert sorted(inv["kube_node"]["hosts"]) == sorted(ws)
    assert set(inv["k8s_cluster"]["children"]) == {"kube_control_plane", "kube_node"}
    if gpu:
        assert inv["gpu-node"]["hosts"] == ["demo-gpu-1"]
    hv = inv["_meta"]["hostvars"]
    assert hv["demo-control-plane-1"]["ansible_host"] == "203.0.113.7", "first control plane: the floating IP"
    assert hv["demo-control-plane-1"]["ip"] == hv["demo-control-plane-1"]["access_ip"] == "10.0.0.10"
    other = ws[0]
    assert hv[other]["ansible_host"] == hv[other]["ip"], "others: their fixed IP ..."
    assert (
        "ProxyCommand" in hv[other]["ansible_ssh_common_args"]
        and "203.0.113.7" in hv[other]["ansible_ssh_common_args"]
        and "ServerAliveInterval=10" in hv[other]["ansible_ssh_common_args"]
    )
    assert hv[other]["ansible_user"] == "ubuntu"
    # group_vars/all applies to every host
    assert hv[other]["cloud_provider"] == "external" and hv[other]["external_cloud_provider"] == "openstack"
    assert hv[other]["supplementary_addresses_in_ssl_keys"] == ["203.0.113.7"]
    assert hv[other]["external_openstack_application_credential_name"] == CRED.name
    assert hv[other]["cinder_application_credential_id"] == CRED.id
    assert hv[other]["calico_veth_mtu"] == 1400


def test_control_plane_runs_workloads_when_there_are_no_workers(tmp_path):
    _, files = make(1, 0, tmp=tmp_path)
    inv = ansible_inventory(tmp_path, files)
    assert inv["kube_node"]["hosts"] == ["demo-control-plane-1"]


def test_secrets_only_in_the_0600_file(tmp_path):
    _, files = make(3, 5, tmp=tmp_path)
    paths = inventory.write(tmp_path, files)
    for p in paths:
        text = p.read_text()
        if p.name == "openstack-credential.yml":
            assert SECRET in text
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
        else:
            assert SECRET not in text, p
            assert "application_credential" not in text, p


def test_inventory_needs_a_control_plane_server(tmp_path):
    spec, _ = make(1, 1, tmp=tmp_path)
    with pytest.raises(StackSprayError, match="run create-cluster first"):
        inventory.render(
            spec, ClusterState(), auth_url="u", region="r", credential=CRED, cluster_dir=tmp_path
        )


def test_spec_values_reach_ansible_as_data_never_as_templates(tmp_path):
    """A `{{ lookup('pipe', …) }}` in a Kubespray variable of the spec is written `!unsafe`:
    Ansible prints it as it is and runs nothing (before, it ran the command on this machine)."""
    marker = tmp_path / "ran"
    spec = parse_spec(
        {
            "name": "demo",
            "cloud": "c",
            "keypair": {"name": "k", "private_key_file": "/keys/my key"},
            "node_groups": {
                "control-plane": {"flavor": "m", "count": 1},
                "workers": {"flavor": "m", "count": 1},
            },
            "kubernetes": {
                "my_setting": f"{{{{ lookup('pipe', 'touch {marker}') }}}}",
                "my_list": ["{{ x }}"],
            },
        },
        env={},
    )
    state = ClusterState.from_dict(
        {
            "servers": {
                "demo-control-plane-1": {"id": "1", "fixed_ip": "10.0.0.10"},
                "demo-workers-1": {"id": "2", "fixed_ip": "10.0.0.11"},
            },
            "floating_ip": {"id": "f", "address": "203.0.113.7"},
        }
    )
    files = inventory.render(
        spec, state, auth_url="u", region="r", credential=CRED, cluster_dir=tmp_path / "c d"
    )
    inventory.write(tmp_path, files)
    exe = Path(sys.executable).with_name("ansible")
    out = subprocess.run(
        [
            str(exe),
            "-i",
            str(tmp_path / "hosts.yml"),
            "demo-workers-1",
            "-m",
            "debug",
            "-a",
            "var=my_setting",
            "-e",
            "ansible_connection=local",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "lookup('pipe'" in out.stdout and not marker.exists(), out.stdout
    worker = ansible_inventory(tmp_path, files)["_meta"]["hostvars"]["demo-workers-1"]
    args = worker["ansible_ssh_common_args"]
    assert "-i '/keys/my key'" in args and f"UserKnownHostsFile='{tmp_path}/c d/known_hosts'" in args


def small_spec(kubernetes: dict):
    """A 1 + 1 spec with these `kubernetes:` settings."""
    return parse_spec(
        {
            "name": "demo",
            "cloud": "c",
            "keypair": {"name": "k"},
            "node_groups": {
                "control-plane": {"flavor": "m", "count": 1},
                "workers": {"flavor": "m", "count": 1},
            },
            "kubernetes": kubernetes,
        },
        env={},
    )


def test_kubesprays_cluster_name_is_the_clusters_so_what_kubernetes_makes_carries_it(tmp_path):
    """Cinder CSI marks volumes and the cloud controller names load balancers with Kubespray's
    cluster_name (default cluster.local on every cluster): a new cluster gets its own name, its
    DNS domain stays cluster.local; a cluster built before keeps what it was built with."""
    spec, files = make(1, 1, tmp=tmp_path)
    hostvars = ansible_inventory(tmp_path, files)["_meta"]["hostvars"]["demo-workers-1"]
    assert hostvars["cluster_name"] == "demo" and hostvars["dns_domain"] == "cluster.local"
    # LoadBalancer Services' VIPs on the cluster's subnet, whatever port a node lists first.
    assert hostvars["external_openstack_lbaas_subnet_id"] == "subnet-1"
    servers = {"demo-control-plane-1": {"id": "i", "fixed_ip": "10.0.0.5", "group": "control-plane"}}
    built = ClusterState.from_dict({"servers": servers, "kubespray_inputs": "digest"})
    assert inventory.cluster_mark(spec, built) == "cluster.local", "built before stackspray set it"
    built.kube_cluster_name = "demo"
    assert inventory.cluster_mark(spec, built) == "demo", "the recorded one"
    with pytest.raises(SpecError, match="cluster_name"):
        small_spec({"cluster_name": "other"})


def test_the_cinder_csi_class_is_the_default_unless_the_spec_says_otherwise(tmp_path):
    _, files = make(1, 1, tmp=tmp_path)
    hostvars = ansible_inventory(tmp_path, files)["_meta"]["hostvars"]["demo-workers-1"]
    assert hostvars["storage_classes"] == [
        {"name": "cinder-csi", "is_default": True, "parameters": {"availability": "nova"}}
    ]
    assert hostvars["expand_persistent_volumes"] is True
    spec = small_spec({"default_storage_class": False})
    assert (
        spec.kubernetes.default_storage_class is False
        and "default_storage_class" not in spec.kubernetes.options
    )


def _plain(value):
    """A value as Ansible uses it: `!unsafe` strings are listed as {"__ansible_unsafe": text}."""
    if isinstance(value, dict):
        return (
            value.get("__ansible_unsafe", None)
            if set(value) == {"__ansible_unsafe"}
            else {k: _plain(v) for k, v in value.items()}
        )
    return value


def test_a_gpu_groups_nodes_get_nvidias_runtime_as_default_its_taints_and_their_gpus(tmp_path):
    """Kubespray's own variables carry it (containerd_additional_runtimes / _default_runtime,
    node_taints), per host, so every cluster.yml keeps it; the CPU workers get none of it."""
    _, files = make(1, 1, gpu=1, tmp=tmp_path)
    hostvars = _plain(ansible_inventory(tmp_path, files)["_meta"]["hostvars"])
    g = hostvars["demo-gpu-1"]
    assert g["containerd_default_runtime"] == "nvidia" and g["stackspray_gpu"] is True
    assert g["containerd_additional_runtimes"] == [
        {
            "name": "nvidia",
            "type": "io.containerd.runc.v2",
            "base_runtime_spec": "cri-base.json",
            "options": {"BinaryName": "/usr/bin/nvidia-container-runtime", "SystemdCgroup": "true"},
        }
    ]
    w = hostvars["demo-workers-1"]
    assert not {"containerd_default_runtime", "containerd_additional_runtimes", "stackspray_gpu"} & set(w)


def test_every_node_is_labelled_with_its_group_and_the_users_labels_are_kept(tmp_path):
    _, files = make(1, 1, gpu=1, tmp=tmp_path)
    hostvars = _plain(ansible_inventory(tmp_path, files)["_meta"]["hostvars"])
    assert hostvars["demo-workers-1"]["node_labels"] == {"stackspray.io/group": "workers"}
    assert hostvars["demo-gpu-1"]["node_labels"] == {"stackspray.io/group": "gpu", "stackspray.io/gpus": "1"}
    assert hostvars["demo-control-plane-1"]["node_labels"] == {"stackspray.io/group": "control-plane"}
    spec = small_spec({"node_labels": {"site": "iu"}})
    state = ClusterState.from_dict(
        {
            "servers": {
                "demo-workers-1": {"id": "a", "fixed_ip": "10.0.0.5", "group": "workers"},
                "demo-control-plane-1": {"id": "b", "fixed_ip": "10.0.0.4", "group": "control-plane"},
            }
        }
    )
    files = inventory.render(
        spec, state, auth_url="https://k:5000/v3", region="R", credential=CRED, cluster_dir=tmp_path
    )
    hostvars = _plain(ansible_inventory(tmp_path, files)["_meta"]["hostvars"])
    assert hostvars["demo-workers-1"]["node_labels"] == {"site": "iu", "stackspray.io/group": "workers"}
    # hosts.yml stays plain YAML: `invoke verify` and testinfra read it with a plain YAML parser.
    plain = yaml.safe_load((tmp_path / "hosts.yml").read_text())
    assert plain["all"]["hosts"]["demo-workers-1"]["node_labels"]["site"] == "iu"


def ingress_spec(**ingress):
    """A 1 + 1 spec with this `ingress:` section."""
    return parse_spec(
        {
            "name": "demo",
            "cloud": "c",
            "keypair": {"name": "k"},
            "node_groups": {
                "control-plane": {"flavor": "m", "count": 1},
                "workers": {"flavor": "m", "count": 1},
            },
            "ingress": ingress,
        },
        env={},
    )


def test_ingress_brings_kubesprays_helm_and_cert_manager_and_its_own_variables(tmp_path):
    spec = ingress_spec(email="ops@example.edu", host="hub.example.edu")
    state = ClusterState.from_dict(
        {
            "servers": {
                "demo-control-plane-1": {"id": "a", "fixed_ip": "10.0.0.4", "group": "control-plane"},
                "demo-workers-1": {"id": "b", "fixed_ip": "10.0.0.5", "group": "workers"},
            },
            "floating_ip": {"id": "f1", "address": "203.0.113.7"},
        }
    )
    files = inventory.render(
        spec, state, auth_url="https://k:5000/v3", region="R", credential=CRED, cluster_dir=tmp_path
    )
    files += ingress.ingress_files(spec, state, kubeconfig=str(tmp_path / "kubeconfig"), target=PLAIN)
    hv = ansible_inventory(tmp_path, files)["_meta"]["hostvars"]["demo-control-plane-1"]
    assert hv["cert_manager_enabled"] is True and hv["helm_enabled"] is True
    values = hv["ingress_values"]
    assert values["deployment"] == {"kind": "DaemonSet"} and values["hostNetwork"] is True
    assert values["nodeSelector"] == {"stackspray.io/group": "control-plane"}
    assert values["ports"] == {"web": {"port": 80}, "websecure": {"port": 443}}
    assert hv["ingress_chart"]["version"] == ingress.CHART["version"] and hv["ingress_install_chart"] is True
    assert hv["ingress_email"] == "ops@example.edu" and hv["ingress_class"] == "traefik"
    assert ingress.url(spec, state) == "https://hub.example.edu/"
    assert ingress.address(spec, state) == "203.0.113.7"
    # Without TLS: no cert-manager, and the URL is the floating IP over HTTP.
    plain = ingress_spec(tls=False)
    files = inventory.render(
        plain, state, auth_url="https://k:5000/v3", region="R", credential=CRED, cluster_dir=tmp_path
    )
    hv = ansible_inventory(tmp_path, files)["_meta"]["hostvars"]["demo-control-plane-1"]
    assert "cert_manager_enabled" not in hv and hv["helm_enabled"] is True
    assert ingress.url(plain, state) == "http://203.0.113.7/"
    # A worker group serving ingress answers on its first node's address.
    on_workers = ingress_spec(tls=False, group="workers")
    assert ingress.address(on_workers, state) == "10.0.0.5"
    assert ingress.chart_values(on_workers)["nodeSelector"] == {"stackspray.io/group": "workers"}


def test_kubespray_inputs_change_with_what_kubespray_reads_only():
    base = ingress_spec(tls=False)
    assert inventory.kubespray_inputs(base) == inventory.kubespray_inputs(
        ingress_spec(tls=False, host="a.example.org")
    )
    assert inventory.kubespray_inputs(base) != inventory.kubespray_inputs(
        ingress_spec(email="a@b.org", host="a.example.org")
    )
    assert inventory.kubespray_inputs(small_spec({})) != inventory.kubespray_inputs(
        small_spec({"default_storage_class": False})
    )
