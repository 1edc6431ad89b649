"""What status and verify say of GPU nodes, read from the API (the in-process stand-in): a GPU
node offering none of its GPUs warns while nothing was installed and fails once the device plugin
was; with the plugin's pod there it passes; a shelved (NotReady) GPU node is not judged."""

from __future__ import annotations

import kube_standin
import pytest

from stackspray import gpu
from stackspray.cluster import _versions
from stackspray.cluster_state import ClusterState
from stackspray.spec import parse_spec
from stackspray.state import ClusterDir
from stackspray.verify import GPUS, VerifyResult, _check_gpus, _read_kube

G3 = {"vcpus": 4, "ram_mb": 15360, "gpus": 1}
NODES = [
    {"name": "lab-control-plane-1", "ip": "127.0.0.1", "control_plane": True, "labels": {}, "machine": {}},
    {
        "name": "lab-gpu-1",
        "ip": "127.0.0.1",
        "labels": {"stackspray.io/group": "gpu", "stackspray.io/gpus": "1"},
        "machine": G3,
    },
    {
        "name": "lab-gpu-2",
        "ip": "127.0.0.1",
        "labels": {"stackspray.io/group": "gpu", "stackspray.io/gpus": "1"},
        "machine": G3,
    },
]
SPEC = {
    "name": "lab",
    "cloud": "c",
    "keypair": {"name": "k"},
    "node_groups": {
        "control-plane": {"flavor": "m3.quad", "count": 1},
        "workers": {"flavor": "m3.small", "count": 0},
        "gpu": {"flavor": "g3.small", "count": 2},
    },
}


@pytest.fixture
def api(tmp_path):
    served = kube_standin.start(tmp_path / "api", NODES)
    served.store.ready = {n["name"]: True for n in NODES}
    yield served
    kube_standin.stop(served)


def judge(api, tmp_path, plugin: str | None) -> VerifyResult:
    cdir = ClusterDir("lab", tmp_path / "inv")
    cdir.save(ClusterState(cluster="lab", kubeconfig=str(api.kubeconfig), gpu_device_plugin=plugin))
    result = VerifyResult("lab")
    _check_gpus(cdir, _read_kube(str(api.kubeconfig)), result)
    return result


def test_no_plugin_warns_an_installed_one_missing_fails_a_running_one_passes(api, tmp_path):
    result = judge(api, tmp_path, None)
    assert set(result.results[GPUS].values()) == {"WARN"} and len(result.results[GPUS]) == 2
    assert all("gpu: {install: false}" in w for w in result.warnings.values())
    result = judge(api, tmp_path, gpu.DEVICE_PLUGIN_IMAGE)
    assert set(result.results[GPUS].values()) == {"FAIL"}
    body = gpu.device_plugin(parse_spec(SPEC))
    with api.store.lock:
        api.store.put_object(("apps/v1", "daemonsets", "kube-system", gpu.DEVICE_PLUGIN_NAME), body, None)
        api.store.sync_controllers()
        api.store.ready["lab-gpu-2"] = False  # shelved: it cannot say
    result = judge(api, tmp_path, gpu.DEVICE_PLUGIN_IMAGE)
    assert result.results[GPUS] == {"lab-gpu-1 offers its 1 GPU(s) to pods": "PASS"}
    assert result.nodes == [], "the GPUs row is not a node"
    got = _versions(ClusterState(cluster="lab", kubeconfig=str(api.kubeconfig)))
    assert got["gpus"] == {"lab-gpu-1": {"has": 1, "offers": 1}, "lab-gpu-2": {"has": 1, "offers": 1}}
