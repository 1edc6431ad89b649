"""hibernate and wake as a user runs them (`OS_CLOUD` exported, from another folder), on a 1 + 2
cluster the Kubespray stand-in built, with the share on every node's fstab, a Deployment and a
Secret, an etcd backup set up; the API stand-in keeps its objects in etcd on the control plane's
disk, so they must survive its server being shelved.

First cycle: `hibernate --dry-run` changes nothing; `hibernate` → every server SHELVED_OFFLOADED
as the openstack CLI lists them, status HIBERNATED at 0 SU/hour, a snapshot taken first;
credentials.refresh exits cleanly and rotates nothing, scale refuses; a wake killed during its
API phase, then `wake --as-before` → objects unchanged, the Deployment's pods Running, the share
in fstab, the claim Bound, every phase timed.
Second cycle, with the autoscaler's agent on the cluster: a hibernate killed while the workers
are being shelved, finished by a re-run (the agent stopped); `wake --workers 0` → the workers
stay shelved, the pods bound to them are evicted by the NoExecute taint after the (shortened)
toleration and wait Pending, and the agent — started again by wake — wakes a worker for them.
Last, a control plane whose unshelve fails stops the wake with what to try, no worker touched;
the same wake re-run afterwards finishes.
"""

from __future__ import annotations

import json
import subprocess
import uuid

from conftest import ssh
from helpers import (
    BIN,
    ROOT,
    destroy_as_user,
    eventually,
    kill_when,
    kubectl_runner,
    user_env,
    user_runner,
)
from stackspray_sandbox import faults
from stackspray_sandbox.specs import write_small_cluster_spec

SECRET_VALUE = "s3cr3t-" + uuid.uuid4().hex
WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "lab", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "300m"}},
                    }
                ]
            },
        },
    },
}
TOLERATION = 60  # kube_apiserver_pod_eviction_unreachable_timeout_seconds for this cluster


def openstack(sandbox, *args: str):
    out = subprocess.run(
        [str(BIN / "openstack"), *args, "-f", "json"], env=user_env(sandbox), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_hibernate_and_wake_keep_everything_and_cost_nothing_between(sandbox, ssh_key, tmp_path):
    name = f"hb{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(
        tmp_path,
        name,
        ssh_key.with_suffix(".pub"),
        "10.61.0.0/24",
        2,
        share={"size_gb": 1, "mount_on_nodes": True, "mount_path": "/mnt/data"},
        kubernetes={
            "kube_apiserver_pod_eviction_unreachable_timeout_seconds": str(TOLERATION),
            "kube_apiserver_pod_eviction_not_ready_timeout_seconds": str(TOLERATION),
        },
    )
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inventories")}
    run = user_runner(sandbox, tmp_path, env=env)
    cluster = tmp_path / "inventories" / name
    try:
        run("create-cluster", "--spec", str(spec))
        kubeconfig = cluster / "kubeconfig"

        run_kubectl = kubectl_runner(kubeconfig)

        def kubectl(*args: str, stdin: str | None = None) -> str:
            return run_kubectl(*args, stdin=stdin).stdout

        def servers() -> dict[str, str]:
            return {
                s["Name"]: s["Status"]
                for s in openstack(sandbox, "server", "list")
                if s["Name"].startswith(f"{name}-")
            }

        def pods() -> list[dict]:
            return json.loads(kubectl("-n", "lab", "get", "pods", "-l", "app=web", "-o", "json"))["items"]

        def running() -> dict[str, str]:
            return {
                p["metadata"]["name"]: p["spec"].get("nodeName")
                for p in pods()
                if p["spec"].get("nodeName")
                and any(
                    c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])
                )
            }

        kubectl("create", "namespace", "lab")
        kubectl("-n", "lab", "create", "secret", "generic", "token", f"--from-literal=value={SECRET_VALUE}")
        kubectl("apply", "-f", "-", stdin=json.dumps(WEB))
        first = eventually(lambda: len(r := running()) == 2 and r, timeout=60)
        assert first, pods()
        run("backup", "--cluster", name)  # backups set up: hibernate takes a snapshot first
        state = json.loads((cluster / "state.json").read_text())
        cred = state["credential"]
        cp = f"{name}-control-plane-1"
        cp_ip = state["servers"][cp]["fixed_ip"]

        # -- first cycle ------------------------------------------------------------------------
        dry = run("hibernate", "--cluster", name, "--dry-run").stdout
        assert "shelve" in dry and "stop-etcd" in dry and "snapshot" in dry and "dry run" in dry
        assert set(servers().values()) == {"ACTIVE"}

        slept = json.loads(run("hibernate", "--cluster", name, "--json").stdout)
        assert [p["phase"] for p in slept["phases"]] == ["begin", "snapshot", "workers", "control plane"]
        assert slept["su_per_hour_after"] == 0 and slept["su_per_hour_before"] > 0
        assert any("floating IP" in u for u in slept["still_uses"]), slept["still_uses"]
        assert set(servers().values()) == {"SHELVED_OFFLOADED"}, servers()
        status = json.loads(run("status", "--cluster", name, "--json").stdout)
        assert status["su_per_hour"] == 0 and status["hibernation"]["phase"] == "hibernated"
        assert status["hibernation"]["active_workers"] == [f"{name}-workers-1", f"{name}-workers-2"]
        assert status["hibernation"]["snapshot"], status["hibernation"]
        assert "HIBERNATED since" in run("status", "--cluster", name).stdout
        listed = json.loads(run("backup.list", "--cluster", name, "--json").stdout)["backups"]
        assert listed[-1]["id"] == status["hibernation"]["snapshot"]

        refreshed = json.loads(run("credentials.refresh", "--cluster", name, "--force", "--json").stdout)
        assert refreshed["outcome"] == "deferred" and refreshed["credential"]["id"] == cred["id"]
        assert json.loads((cluster / "state.json").read_text())["credential"] == cred
        refused = run("scale", "--cluster", name, "--workers", "1", ok=False)
        assert "is hibernated" in refused.stderr and f"invoke wake --cluster {name}" in refused.stderr

        killed = kill_when(
            ["-r", str(ROOT), "wake", "--cluster", name],
            {**user_env(sandbox), **env},
            "api: starting",
            timeout=600,
        )
        assert "api: starting" in killed, killed
        assert "is waking" in run("scale", "--cluster", name, "--workers", "1", ok=False).stderr
        woke = json.loads(run("wake", "--cluster", name, "--as-before", "--json").stdout)
        phases = [p["phase"] for p in woke["phases"]]
        assert phases == ["control plane", "api", "certificates", "credential", "workers", "finish"], phases
        assert all(p["seconds"] >= 0 for p in woke["phases"])
        assert set(servers().values()) == {"ACTIVE"}, servers()
        assert kubectl("get", "--raw", "/readyz").strip() == "ok"
        value = kubectl("-n", "lab", "get", "secret", "token", "-o", "jsonpath={.data.value}")
        assert (
            subprocess.run(["base64", "-d"], input=value, capture_output=True, text=True).stdout
            == SECRET_VALUE
        )
        again = eventually(lambda: len(r := running()) == 2 and r, timeout=120)
        assert again, pods()
        assert set(again) == set(first), "the same pods run again: none was evicted by a short wake"
        for node_ip in [cp_ip] + [state["servers"][f"{name}-workers-{i}"]["fixed_ip"] for i in (1, 2)]:
            assert "/mnt/data" in ssh(node_ip, ssh_key, "cat /etc/fstab")
        claim = json.loads(kubectl("get", "pvc", f"{name}-share", "-o", "json"))
        assert claim["status"]["phase"] == "Bound"
        status = json.loads(run("status", "--cluster", name, "--json").stdout)
        assert status["hibernation"] is None and status["su_per_hour"] > 0
        nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
        assert not [n["metadata"]["name"] for n in nodes if n["spec"].get("unschedulable")], "uncordoned"

        # -- second cycle: the agent on, a killed hibernate, wake --workers 0 ---------------------
        run("autoscale.enable", "--cluster", name, "--pending-for", "0s")
        killed = kill_when(
            ["-r", str(ROOT), "hibernate", "--cluster", name],
            {**user_env(sandbox), **env},
            ": SHELVED_OFFLOADED",
            timeout=600,
        )
        assert ": SHELVED_OFFLOADED" in killed, killed
        assert "is hibernating" in run("scale", "--cluster", name, "--workers", "1", ok=False).stderr
        slept = json.loads(run("hibernate", "--cluster", name, "--json").stdout)
        assert set(servers().values()) == {"SHELVED_OFFLOADED"}, servers()
        assert json.loads((cluster / "state.json").read_text())["hibernation"]["agent"] is True
        assert any(s["action"] == "noop" and "resuming" in s["reason"] for s in slept["steps"])

        woke = json.loads(run("wake", "--cluster", name, "--workers", "0", "--json").stdout)
        assert woke["phases"][-1]["detail"].startswith("the autoscaler's agent started")
        assert ssh(cp_ip, ssh_key, "systemctl is-active stackspray-autoscaler.service").strip() == "active"
        # The pods bound to the shelved workers are evicted after their toleration, made again,
        # wait Pending, and the agent wakes a worker for them.
        back = eventually(lambda: len(r := running()) == 2 and r, timeout=300)
        assert back and not set(back) & set(first), pods()
        active = [n for n, st in servers().items() if st == "ACTIVE" and "workers" in n]
        assert len(active) == 1, servers()  # 2 x 300m fit on one m3.tiny (the DaemonSets' 250m counted)
        events = json.loads(kubectl("-n", "lab", "get", "events", "-o", "json"))["items"]
        assert any(e["reason"] == "TaintManagerEviction" for e in events), [e["reason"] for e in events]

        # -- a control plane that does not come back stops the wake, workers untouched ----------
        run("hibernate", "--cluster", name)
        faults.boot_errors(1, name_contains=cp, paths=sandbox.paths)
        failed = run("wake", "--cluster", name, ok=False)
        assert "did not come back, so no worker was touched" in failed.stderr, failed.stderr
        assert "Nova did not unshelve it" in failed.stderr, failed.stderr
        assert {n: st for n, st in servers().items() if "workers" in n} == {
            f"{name}-workers-{i}": "SHELVED_OFFLOADED" for i in (1, 2)
        }
        faults.clear(sandbox.paths)
        woke = json.loads(run("wake", "--cluster", name, "--json").stdout)
        assert (
            woke["phases"][0]["phase"] == "control plane"
            and kubectl("get", "--raw", "/readyz").strip() == "ok"
        )
    finally:
        faults.clear(sandbox.paths)
        destroy_as_user(sandbox, tmp_path, name, env)
