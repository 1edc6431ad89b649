"""`invoke upgrade` as a user runs it (`OS_CLOUD` exported, from another folder), on a 1 + 3
cluster the Kubespray stand-in built at Kubernetes 1.33.11, one worker shelved, and a Deployment
of 4 replicas under a PodDisruptionBudget (minAvailable 3):

- refused with nothing changed: a skipped minor (1.35.4), a version the pinned Kubespray has no
  checksums for (1.36.0), a downgrade (1.33.10);
- `upgrade --to 1.34.7 --dry-run` lists the order (control plane, then the workers' batches) and
  the worker left behind;
- `upgrade --to 1.34.7` killed once the first worker runs the new kubelet, then run again: the API
  server and the three reachable nodes report 1.34.7, the shelved worker is reported behind
  (status, verify warns), the spec says 1.34.7 and create-cluster changes nothing;
- while it ran, a watch never saw fewer than 3 available replicas;
- `scale --unshelve` of the behind worker upgrades it before its uncordon.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid

import yaml
from helpers import BIN, ROOT, destroy_as_user, eventually, kubectl_runner, user_env, user_runner
from stackspray_sandbox.specs import write_small_cluster_spec

WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m"}},
                    }
                ]
            },
        },
    },
}
BUDGET = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}},
}


def test_upgrade_node_by_node_with_a_budget_and_a_shelved_worker(sandbox, ssh_key, tmp_path):
    name = f"up{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(
        tmp_path, name, ssh_key.with_suffix(".pub"), "10.62.0.0/24", 3, kubernetes={"kube_version": "1.33.11"}
    )
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inventories")}
    run = user_runner(sandbox, tmp_path, env=env)
    cluster = tmp_path / "inventories" / name
    w = [f"{name}-workers-{i}" for i in (1, 2, 3)]
    try:
        run("create-cluster", "--spec", str(spec))
        kubeconfig = cluster / "kubeconfig"

        run_kubectl = kubectl_runner(kubeconfig)

        def kubectl(*args: str, stdin: str | None = None) -> str:
            return run_kubectl(*args, stdin=stdin).stdout

        def kubelets() -> dict[str, str]:
            nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
            return {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes}

        def available() -> int:
            d = json.loads(kubectl("get", "deployment", "web", "-o", "json"))
            return (d.get("status") or {}).get("availableReplicas") or 0

        assert json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"] == "v1.33.11"
        run("scale", "--cluster", name, "--shelve", "--nodes", w[2])
        kubectl("apply", "-f", "-", stdin=json.dumps(WEB))
        kubectl("apply", "-f", "-", stdin=json.dumps(BUDGET))
        assert eventually(lambda: available() == 4, timeout=60), available()

        # Refused before anything changes.
        state_before = (cluster / "state.json").read_text()
        spec_before = spec.read_text()
        for to, words in (
            ("1.35.4", "one minor release at a time"),
            ("1.36.0", "no checksums for Kubernetes 1.36.0"),
            ("1.33.10", "does not downgrade"),
        ):
            refused = run("upgrade", "--cluster", name, "--to", to, ok=False)
            assert words in refused.stderr, refused.stderr
        assert (cluster / "state.json").read_text() == state_before and spec.read_text() == spec_before
        assert set(kubelets().values()) == {"v1.33.11"}

        dry = json.loads(run("upgrade", "--cluster", name, "--to", "1.34.7", "--dry-run", "--json").stdout)
        order = [(s["action"], s["node"], s["batch"]) for s in dry["steps"]]
        assert order == [
            ("snapshot", "", 0),
            ("upgrade", f"{name}-control-plane-1", 0),
            ("upgrade", w[0], 1),
            ("upgrade", w[1], 2),
            ("behind", w[2], 0),
        ] or order == [
            ("snapshot", "", 0),
            ("upgrade", f"{name}-control-plane-1", 0),
            ("behind", w[2], 0),
            ("upgrade", w[0], 1),
            ("upgrade", w[1], 2),
        ], order
        assert dry["behind"] == [w[2]] and spec.read_text() == spec_before

        # The watch: available replicas while the upgrade drains node after node.
        seen: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                try:
                    seen.append(available())
                except AssertionError:
                    pass  # the API server restarting (the control plane's upgrade): not a count
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        proc = subprocess.Popen(
            [str(BIN / "invoke"), "-r", str(ROOT), "upgrade", "--cluster", name, "--to", "1.34.7"],
            cwd=tmp_path,
            env={**user_env(sandbox), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first = eventually(
            lambda: [n for n in w[:2] if kubelets().get(n) == "v1.34.7"] or proc.poll() is not None,
            timeout=600,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert first is not True, "the upgrade ended before any worker was upgraded"
        done = json.loads(run("upgrade", "--cluster", name, "--to", "1.34.7", "--json").stdout)
        stop.set()
        watcher.join()
        versions = kubelets()
        assert json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"] == "v1.34.7"
        assert versions[f"{name}-control-plane-1"] == versions[w[0]] == versions[w[1]] == "v1.34.7", versions
        assert versions[w[2]] == "v1.33.11" and done["behind"] == [w[2]], (versions, done)
        assert seen and min(seen) >= 3, f"available replicas seen: min {min(seen)} of {len(seen)} samples"
        assert available() == 4
        assert yaml.safe_load(spec.read_text())["kubernetes"]["kube_version"] == "1.34.7"
        status = json.loads(run("status", "--cluster", name, "--json").stdout)["kubernetes"]
        assert status["server"] == "v1.34.7" and status["behind"] == [w[2]], status
        nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
        assert not [
            n["metadata"]["name"]
            for n in nodes
            if n["spec"].get("unschedulable") and n["metadata"]["name"] != w[2]
        ]
        again = run("create-cluster", "--spec", str(spec)).stdout + ""
        assert "nothing to change" in again or "converged" in again or name in again

        # The worker left behind: upgraded when it is unshelved, before its uncordon.
        woke = run("scale", "--cluster", name, "--unshelve", "--nodes", w[2])
        assert "left behind by an upgrade" in woke.stdout, woke.stdout
        assert kubelets()[w[2]] == "v1.34.7"
        node = json.loads(kubectl("get", "node", w[2], "-o", "json"))
        assert not node["spec"].get("unschedulable")
        state = json.loads((cluster / "state.json").read_text())
        assert state["upgrade_behind"] == [] and state["kube_version"] == "1.34.7"
    finally:
        destroy_as_user(sandbox, tmp_path, name, env)
