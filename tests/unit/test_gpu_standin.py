"""The API stand-in's GPU nodes and client DaemonSets: a node of a GPU flavor advertises
nvidia.com/gpu only while NVIDIA's device plugin has a pod on it (the kubelet's device manager adds
the resource when the plugin registers), so a GPU pod is Pending with the scheduler's
"Insufficient nvidia.com/gpu" until the plugin's DaemonSet exists; the DaemonSet controller puts
one pod on each node its affinity and tolerations admit, keeps it on a node that went NotReady,
and node_taints from the inventory taint the Nodes as Kubespray's node-taint role does."""

from __future__ import annotations

import pytest
from stackspray_sandbox.standins.kube_api.store import Store, overwrite_taints

from stackspray import gpu
from stackspray.spec import parse_spec

CPU = {"vcpus": 2, "ram_mb": 6144, "gpus": 0}
G3 = {"vcpus": 4, "ram_mb": 15360, "gpus": 1}
SPEC = {
    "name": "lab",
    "cloud": "c",
    "keypair": {"name": "k"},
    "node_groups": {
        "control-plane": {"flavor": "m3.quad", "count": 1},
        "workers": {"flavor": "m3.small", "count": 1},
        "gpu": {"flavor": "g3.small", "count": 1, "taints": ["nvidia.com/gpu=:NoSchedule"]},
    },
}


@pytest.fixture
def store(tmp_path):
    config = {
        "state_file": str(tmp_path / "state.json"),
        "nodes": [
            {"name": "cp-1", "ip": "10.0.0.1", "control_plane": True, "machine": CPU},
            {"name": "w-1", "ip": "10.0.0.2", "machine": CPU, "labels": {"stackspray.io/group": "workers"}},
            {
                "name": "g-1",
                "ip": "10.0.0.3",
                "machine": G3,
                "labels": {"stackspray.io/group": "gpu", "stackspray.io/gpus": "1"},
                "taints": ["nvidia.com/gpu=:NoSchedule"],
            },
        ],
    }
    s = Store(config)
    s.ready = {"cp-1": True, "w-1": True, "g-1": True}
    return s


def settle(store: Store) -> None:
    for _ in range(3):
        store.sync_controllers()
        store.schedule_pending()


def pod(store: Store, name: str, gpus: int = 0, tolerate: bool = True) -> None:
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {"requests": {"cpu": "100m"}}
    spec: dict = {"containers": [{"name": "c", "image": "cuda", "resources": resources}]}
    if tolerate:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    store.store_pod("default", {"metadata": {"name": name}, "spec": spec})


def plugin(store: Store) -> None:
    body = gpu.device_plugin(parse_spec(SPEC))
    store.put_object(("apps/v1", "daemonsets", "kube-system", body["metadata"]["name"]), body, None)


def test_no_plugin_no_gpu_then_the_plugin_makes_the_gpu_pod_run_on_the_gpu_node(store):
    assert "nvidia.com/gpu" not in store.node_view(store.nodes["g-1"])["status"]["capacity"]
    pod(store, "train", gpus=1)
    settle(store)
    waiting = store.pods[("default", "train")]
    assert not waiting["spec"].get("nodeName")
    assert "Insufficient nvidia.com/gpu" in waiting["scheduling"]["message"]
    plugin(store)
    settle(store)
    placed = [
        p for p in store.pods.values() if p["metadata"].get("labels", {}).get("name") == gpu.PLUGIN_POD_LABEL
    ]
    assert [p["spec"]["nodeName"] for p in placed] == ["g-1"], "only on the GPU group, tolerating its taint"
    status = store.node_view(store.nodes["g-1"])["status"]
    assert status["capacity"]["nvidia.com/gpu"] == "1" and status["allocatable"]["nvidia.com/gpu"] == "1"
    assert store.pods[("default", "train")]["spec"]["nodeName"] == "g-1"


def test_the_gpu_taint_keeps_cpu_pods_off_unless_they_tolerate_it(store):
    assert {"key": "nvidia.com/gpu", "effect": "NoSchedule"} in store.nodes["g-1"]["spec"]["taints"]
    store.ready["w-1"] = False  # only the GPU node could take it
    pod(store, "cpu", tolerate=False)
    settle(store)
    assert "untolerated taint {nvidia.com/gpu: }" in store.pods[("default", "cpu")]["scheduling"]["message"]
    pod(store, "cpu-ok", tolerate=True)
    settle(store)
    assert store.pods[("default", "cpu-ok")]["spec"]["nodeName"] == "g-1"


def test_a_daemon_pod_stays_on_a_node_that_went_not_ready_and_goes_with_the_daemonset(store):
    plugin(store)
    settle(store)
    store.ready["g-1"] = False  # shelved: the unreachable taints come, NoSchedule among them
    settle(store)
    assert store.device_plugin_on("g-1"), "shouldContinueRunning: only an untolerated NoExecute removes it"
    name = gpu.DEVICE_PLUGIN_NAME
    store.cascade(
        store.objects[("apps/v1", "daemonsets", "kube-system", name)]["metadata"]["uid"], "kube-system", False
    )
    del store.objects[("apps/v1", "daemonsets", "kube-system", name)]
    settle(store)
    assert not store.device_plugin_on("g-1")
    assert "nvidia.com/gpu" not in store.node_view(store.nodes["g-1"])["status"]["capacity"]


def test_node_taints_overwrite_as_kubectl_taint_does():
    have = [{"key": "a", "effect": "NoSchedule", "value": "1"}, {"key": "b", "effect": "NoExecute"}]
    got = overwrite_taints(have, ["a=2:NoSchedule", "c=:PreferNoSchedule"])
    assert got == [
        {"key": "b", "effect": "NoExecute"},
        {"key": "a", "effect": "NoSchedule", "value": "2"},
        {"key": "c", "effect": "PreferNoSchedule"},
    ]


def test_a_limit_without_a_request_is_stored_as_both(store):
    """SetDefaults_Pod: what the autoscaler reads of a GPU pod is its request."""
    pod(store, "limits-only", gpus=1)
    res = store.pods[("default", "limits-only")]["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
