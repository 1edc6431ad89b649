"""A GPU node group as a user runs it (`OS_CLOUD` exported, from another folder), judged by the real
kubectl: 1 control plane + 1 m3.tiny worker + 1 g3.small GPU worker whose group is tainted
`nvidia.com/gpu=:NoSchedule`, on the sandbox (whose g3 nodes advertise nvidia.com/gpu only while
NVIDIA's device plugin runs on them, as a kubelet does once the plugin registers).

- built with `gpu: {install: false}`: a pod asking for one GPU stays Pending with the scheduler's
  "Insufficient nvidia.com/gpu"; verify warns, status says 0 of 1 offered;
- a CPU pod lands on the small worker although the GPU node has more free CPU (the taint), and one
  that tolerates the taint lands on the GPU node;
- `gpu.install` true and create-cluster again: NVIDIA's runtime in the GPU node's inventory, the
  device plugin's DaemonSet on the GPU node only, the GPU pod Running there; verify passes it and
  status says 1 of 1;
- both workers shelved, the GPU pod's Deployment Pending: one autoscaler round wakes exactly the
  GPU worker.
"""

from __future__ import annotations

import json
import uuid

import yaml
from helpers import destroy_as_user, eventually, kubectl_runner, user_runner
from stackspray_sandbox.specs import write_small_cluster_spec

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def deployment(name: str, *, gpus: int = 0, tolerate: bool = False) -> dict:
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {"requests": {"cpu": "100m"}}
    spec: dict = {
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": resources}]
    }
    if tolerate:
        spec["tolerations"] = [GPU_TOLERATION]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def test_gpu_pods_run_only_once_the_plugin_is_installed_and_wake_exactly_the_gpu_worker(
    sandbox, ssh_key, tmp_path
):
    name = f"gp{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), "10.71.0.0/24", 1)
    data = yaml.safe_load(spec.read_text())
    data["node_groups"]["gpu"] = {"flavor": "g3.small", "count": 1, "taints": ["nvidia.com/gpu=:NoSchedule"]}
    data["gpu"] = {"install": False}
    spec.write_text(yaml.safe_dump(data))
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inventories"), "STACKSPRAY_SCHEDULER": "cron"}
    run = user_runner(sandbox, tmp_path, env=env)
    cluster = tmp_path / "inventories" / name
    worker, gpu_node = f"{name}-workers-1", f"{name}-gpu-1"
    try:
        out = run("create-cluster", "--spec", str(spec)).stdout
        assert "GPU groups: gpu (1 per node) — gpu.install is false" in out, out
        kubectl = kubectl_runner(cluster / "kubeconfig")

        def pods(app: str) -> list[dict]:
            got = kubectl("get", "pods", "-l", f"app={app}", "-o", "json").stdout
            return json.loads(got)["items"]

        def node_of(app: str) -> str | None:
            found = pods(app)
            return found[0]["spec"].get("nodeName") if found else None

        def gpus_offered() -> dict:
            return json.loads(run("status", "--cluster", name, "--json").stdout)["kubernetes"]["gpus"]

        # Nothing installed: the GPU node has no nvidia.com/gpu, the GPU pod waits with the reason.
        capacity = json.loads(kubectl("get", "node", gpu_node, "-o", "json").stdout)["status"]["capacity"]
        assert "nvidia.com/gpu" not in capacity, capacity
        kubectl("apply", "-f", "-", stdin=json.dumps(deployment("train", gpus=1, tolerate=True)))

        def waiting_reason() -> str:
            found = pods("train")
            conds = (found[0].get("status") or {}).get("conditions") or [] if found else []
            return next((c.get("message", "") for c in conds if c.get("reason") == "Unschedulable"), "")

        reason = eventually(waiting_reason)
        assert "Insufficient nvidia.com/gpu" in reason, reason
        assert gpus_offered() == {gpu_node: {"has": 1, "offers": 0}}
        doc = json.loads(run("verify", "--cluster", name, "--json").stdout)  # a warning fails nothing
        assert doc["results"].get("GPUs") == {f"{gpu_node} offers its 1 GPU(s) to pods": "WARN"}, doc
        assert "gpu: {install: false}" in doc["warnings"][f"GPUs: {gpu_node} offers its 1 GPU(s) to pods"]

        # The taint keeps CPU pods off the GPU node, which has the most free CPU, unless they tolerate it.
        kubectl("apply", "-f", "-", stdin=json.dumps(deployment("cpu")))
        kubectl("apply", "-f", "-", stdin=json.dumps(deployment("cpu-ok", tolerate=True)))
        assert eventually(lambda: node_of("cpu")) == worker
        assert eventually(lambda: node_of("cpu-ok")) == gpu_node

        # Install it: the runtime through Kubespray's variables, the device plugin on the GPU node.
        data["gpu"] = {"install": True}
        spec.write_text(yaml.safe_dump(data))
        out = run("create-cluster", "--spec", str(spec)).stdout
        assert "cluster.yml runs" in out and "gpu: NVIDIA device plugin v0.17.1 on gpu (1 per node)" in out, (
            out
        )
        hostvars = yaml.safe_load((cluster / "hosts.yml").read_text())["all"]["hosts"]
        assert hostvars[gpu_node]["containerd_default_runtime"] == "nvidia"
        assert "containerd_default_runtime" not in hostvars[worker]

        def plugin_nodes() -> list[str]:
            got = kubectl(
                "-n", "kube-system", "get", "pods", "-l", "name=nvidia-device-plugin-ds", "-o", "json"
            )
            return [p["spec"]["nodeName"] for p in json.loads(got.stdout)["items"]]

        # The DaemonSet controller makes its pods after the apply returns (a pass a second).
        assert eventually(plugin_nodes) == [gpu_node], plugin_nodes()
        assert eventually(lambda: node_of("train")) == gpu_node
        assert gpus_offered() == {gpu_node: {"has": 1, "offers": 1}}
        doc = json.loads(run("verify", "--cluster", name, "--json").stdout)
        assert doc["results"]["GPUs"] == {f"{gpu_node} offers its 1 GPU(s) to pods": "PASS"}, doc
        again = run("create-cluster", "--spec", str(spec)).stdout
        assert "gpu: set up already" in again, again

        # Shelved, the GPU worker wakes for the GPU pod; the CPU worker stays shelved.
        for group in ("workers", "gpu"):
            run(
                "autoscale.enable",
                "--cluster",
                name,
                "--group",
                group,
                "--min",
                "0",
                "--max",
                "1",
                "--pending-for",
                "0s",
                "--idle",
                "1h",
                "--no-service",
            )
        kubectl("delete", "deployment", "cpu", "cpu-ok")
        run("scale", "--cluster", name, "--shelve", "--nodes", f"{worker},{gpu_node}")
        assert eventually(
            lambda: "Insufficient nvidia.com/gpu" in waiting_reason() or "unschedulable" in waiting_reason()
        )
        doc = json.loads(run("autoscale.run", "--cluster", name, "--once", "--json").stdout)
        woke = {d["node"] for d in doc["decisions"] if d["action"] == "unshelve"}
        assert woke == {gpu_node}, doc
        assert eventually(
            lambda: node_of("train") == gpu_node and pods("train")[0]["status"]["phase"] == "Running", 60
        )
        nodes = {
            n["name"]: n["status"]
            for n in json.loads(run("status", "--cluster", name, "--json").stdout)["nodes"]
        }
        assert nodes[gpu_node] == "ACTIVE" and nodes[worker] == "SHELVED_OFFLOADED", nodes
    finally:
        destroy_as_user(sandbox, tmp_path, name, env=env)
