"""GPU node groups (gpu.py): which groups have GPUs (the table, the flavor's Nova properties, the
spec's `gpus`), the spec's `gpu.install` and `taints` checked, NVIDIA's runtime per host, the
device plugin's placement, the warnings, and the Kubespray inputs digest (a CPU-only cluster's is
what it was before GPUs existed, so no cluster.yml re-runs for it)."""

from __future__ import annotations

import hashlib
import json

import pytest

from stackspray import gpu, inventory, names
from stackspray.errors import SpecError
from stackspray.spec import parse_spec


def spec(**groups_extra):
    groups = {
        "control-plane": {"flavor": "m3.quad", "count": 1},
        "workers": {"flavor": "m3.small", "count": 1},
        **groups_extra,
    }
    return {"name": "lab", "cloud": "c", "keypair": {"name": "k"}, "node_groups": groups}


@pytest.mark.parametrize(
    "flavor,props,want",
    [
        ("g3.small", {}, 1),
        ("g3.xl", {}, 1),
        ("m3.small", {}, 0),
        ("a100.big", {"resources:VGPU": "2"}, 2),
        ("pci.gpu", {"pci_passthrough:alias": "a100:2,t4:1"}, 3),
        ("odd", {"resources:VGPU": "x", "pci_passthrough:alias": "a100"}, 0),
    ],
)
def test_gpus_of_a_flavor(flavor, props, want):
    assert gpu.flavor_gpus(flavor, props) == want


def test_the_spec_may_say_how_many_and_taint_the_group():
    s = parse_spec(
        spec(gpu={"flavor": "custom.gpu", "count": 1, "gpus": 2, "taints": ["gpu=true:NoSchedule"]})
    )
    assert gpu.gpu_groups(s) == {"gpu": 2}
    hv = gpu.host_vars(s, "gpu")
    assert hv["node_taints"] == ["gpu=true:NoSchedule"] and hv["containerd_default_runtime"] == "nvidia"
    assert gpu.host_vars(s, "workers") == {}
    ds = gpu.device_plugin(s)
    tpl = ds["spec"]["template"]["spec"]
    expr = tpl["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert expr == [{"matchExpressions": [{"key": names.GROUP_LABEL, "operator": "In", "values": ["gpu"]}]}]
    assert {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"} in tpl["tolerations"]
    assert tpl["containers"][0]["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"


def test_install_false_keeps_the_gpus_but_installs_no_runtime():
    s = parse_spec({**spec(gpu={"flavor": "g3.small", "count": 1}), "gpu": {"install": False}})
    assert gpu.gpu_groups(s) == {"gpu": 1} and not s.gpu_install
    assert gpu.host_vars(s, "gpu") == {"stackspray_gpus": 1}


def test_the_users_own_runtimes_are_kept_beside_nvidias():
    s = parse_spec(spec(gpu={"flavor": "g3.small", "count": 1}))
    kata = {"name": "kata", "type": "io.containerd.kata.v2", "options": {"Root": ""}}
    assert gpu.host_vars(s, "gpu", [kata])["containerd_additional_runtimes"] == [kata, gpu.NVIDIA_RUNTIME]


@pytest.mark.parametrize(
    "raw,field",
    [
        ({"gpu": {"install": "yes"}}, "gpu.install"),
        ({"gpu": {"instal": True}}, "gpu.instal"),
        (
            {"node_groups": {"gpu": {"flavor": "g3.small", "count": 1, "taints": ["gpu:Sometimes"]}}},
            "taints[0]",
        ),
        ({"node_groups": {"gpu": {"flavor": "g3.small", "count": 1, "taints": "a=b:NoSchedule"}}}, "taints"),
        ({"node_groups": {"gpu": {"flavor": "g3.small", "count": 1, "gpus": -1}}}, "gpus"),
        ({"kubernetes": {"node_taints": ["a=b:NoSchedule"]}}, "kubernetes.node_taints"),
        ({"kubernetes": {"containerd_default_runtime": "nvidia"}}, "kubernetes.containerd_default_runtime"),
    ],
)
def test_bad_gpu_settings_name_their_field(raw, field):
    data = spec()
    for k, v in raw.items():
        data[k] = {**data[k], **v} if k == "node_groups" else v
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    assert field in str(err.value)


def test_warnings_for_a_gpu_flavor_unknown_to_the_table_and_for_gpu_node():
    s = parse_spec(spec(gpu={"flavor": "big.gpu", "count": 1, "extra_groups": ["gpu-node"]}))
    warnings = gpu.spec_warnings(s, {"big.gpu": {"extra_specs": {"resources:VGPU": "1"}}})
    assert any("set `node_groups.gpu.gpus: 1`" in w for w in warnings)
    assert any("`gpu-node` means nothing to Kubespray v2.31.0" in w for w in warnings)
    assert gpu.spec_warnings(parse_spec(spec()), {}) == []


def test_a_cpu_clusters_kubespray_inputs_are_what_they_were_before_gpus():
    s = parse_spec(spec())
    k8s = s.kubernetes
    before = {
        "pod": k8s.pod_cidr,
        "svc": k8s.service_cidr,
        "options": k8s.options,
        "default_class": k8s.default_storage_class,
        "ingress": None,
    }
    assert (
        inventory.kubespray_inputs(s)
        == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    )
    on = parse_spec(spec(gpu={"flavor": "g3.small", "count": 1}))
    off = parse_spec({**spec(gpu={"flavor": "g3.small", "count": 1}), "gpu": {"install": False}})
    assert inventory.kubespray_inputs(on) != inventory.kubespray_inputs(off), "switching it runs cluster.yml"


def test_what_status_reads_of_a_node():
    label = {"metadata": {"labels": {names.GPUS_LABEL: "1"}}}
    assert gpu.node_gpus(label) == {"has": 1, "offers": 0}
    offered = {**label, "status": {"allocatable": {"nvidia.com/gpu": "1"}}}
    assert gpu.node_gpus(offered) == {"has": 1, "offers": 1}
    assert gpu.node_gpus({"metadata": {"labels": {}}}) is None
