"""Soft scaling against the sandbox (real Nova shelve/unshelve, node hosts that stop and start) and
the Kubernetes API stand-in the Kubespray stand-in runs on the first control-plane node (reached
only through the official `kubernetes` client)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from helpers import ROOT, built_cluster, eventually, kill_when, quiet, respec
from kubernetes import client
from stackspray_sandbox import faults

from stackspray.cluster import cluster_status, create_cluster
from stackspray.errors import StackSprayError
from stackspray.kube import Kube
from stackspray.scale import Request, scale_cluster
from stackspray.spec import load_spec

# It edits this machine's crontab or user manager: one such module at a time (tests/conftest.py).
pytestmark = pytest.mark.host_scheduler

NS = "apps"


class Cluster:
    def __init__(self, name: str, inv: Path, kubeconfig: str) -> None:
        self.name, self.inv = name, inv
        self.kube = Kube(kubeconfig)
        self.cp = f"{name}-control-plane-1"
        self.w = [f"{name}-workers-{i}" for i in range(1, 5)]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", "scale", "--cluster", self.name, *args],
            cwd=ROOT,
            env=dict(os.environ, STACKSPRAY_INVENTORIES=str(self.inv)),
            capture_output=True,
            text=True,
            timeout=900,
        )

    def put_pod(self, name: str, node: str, labels: dict | None = None, owner: str | None = "ReplicaSet"):
        refs = (
            [
                client.V1OwnerReference(
                    api_version="apps/v1",
                    kind=owner,
                    name=f"{name}-rs",
                    uid=str(uuid.uuid4()),
                    controller=True,
                )
            ]
            if owner
            else None
        )
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": name}, owner_references=refs),
            spec=client.V1PodSpec(node_name=node, containers=[client.V1Container(name="c", image="busybox")]),
        )
        self.kube.core.create_namespaced_pod(NS, pod)

    def pods(self, node: str) -> set[str]:
        return {p.metadata.name for p in self.kube.pods_on(node)}

    def reset(self) -> None:
        """Every worker ACTIVE, Ready and uncordoned; no test pods or budgets."""
        for p in self.kube.core.list_namespaced_pod(NS).items:
            self.kube.core.delete_namespaced_pod(p.metadata.name, NS)
        policy = client.PolicyV1Api(self.kube.api)
        for b in policy.list_namespaced_pod_disruption_budget(NS).items:
            policy.delete_namespaced_pod_disruption_budget(b.metadata.name, NS)
        result = scale_cluster(self.name, Request(workers=4), progress=quiet(), root=self.inv)
        assert result.ok, result.to_dict()


def server_status(conn, name: str) -> dict[str, str]:
    return {
        s.name: s.status
        for s in conn.compute.servers()
        if (s.metadata or {}).get("stackspray-cluster") == name
    }


@pytest.fixture(scope="module")
def cluster(sandbox, ssh_key, tmp_path_factory):
    """A 1 control-plane + 4 worker cluster built through the Kubespray stand-in (module-wide)."""
    tmp = tmp_path_factory.mktemp("scale")
    with built_cluster(sandbox, ssh_key, tmp, "sc", "10.99.0.0/24", workers=4) as (name, inv, result, spec):
        c = Cluster(name, inv, result.kubeconfig)
        c.spec_file = spec
        yield c


def test_workers_1_then_4(conn, cluster):
    c = cluster
    c.reset()
    c.put_pod("web-a", c.w[0])
    c.put_pod("web-b", c.w[1])
    c.put_pod("web-c", c.w[1])
    c.put_pod("batch", c.w[2])
    before = cluster_status(c.name, root=c.inv)
    per_worker = next(n["su_per_hour_if_active"] for n in before.nodes if n["name"] == c.w[0])

    out = c.cli("--workers", "1", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    changed = {s["node"]: (s["action"], s["outcome"]) for s in report["steps"] if s["action"] != "noop"}
    # The node with the most pods stays; the three others go, in parallel.
    assert changed == {n: ("shelve", "done") for n in (c.w[0], c.w[2], c.w[3])}
    statuses = server_status(conn, c.name)
    assert [statuses[n] for n in c.w] == [
        "SHELVED_OFFLOADED",
        "ACTIVE",
        "SHELVED_OFFLOADED",
        "SHELVED_OFFLOADED",
    ]
    assert statuses[c.cp] == "ACTIVE"
    nodes = c.kube.nodes()
    assert [nodes[n].unschedulable for n in c.w] == [True, False, True, True]
    assert all(nodes[n].scaling == "shelve" for n in (c.w[0], c.w[2], c.w[3]))
    # Pods were evicted; DaemonSet pods stay with their node, as with kubectl drain --ignore-daemonsets.
    assert {p.rsplit("-", 1)[0] for p in c.pods(c.w[0])} == {"calico-node", "kube-proxy", "nodelocaldns"}
    assert "batch" not in c.pods(c.w[2]) and {"web-b", "web-c"} <= c.pods(c.w[1])
    # The Node follows its host: shelved → not Ready, once the node lifecycle controller's grace
    # period (40 s on a Kubespray cluster) has passed without a word from the kubelet.
    assert eventually(lambda: not any(c.kube.node(n).ready for n in (c.w[0], c.w[2], c.w[3])), timeout=75)
    after = cluster_status(c.name, root=c.inv)
    assert after.su_per_hour == pytest.approx(before.su_per_hour - 3 * per_worker)
    assert after.su_saved_per_hour == pytest.approx(3 * per_worker)
    assert report["su_per_hour_before"] == pytest.approx(before.su_per_hour)
    assert report["su_per_hour_after"] == pytest.approx(after.su_per_hour)

    out = c.cli("--workers", "4")
    assert out.returncode == 0, out.stdout + out.stderr
    assert all(s == "ACTIVE" for s in server_status(conn, c.name).values())
    nodes = c.kube.nodes()
    assert all(nodes[n].ready and not nodes[n].unschedulable and not nodes[n].scaling for n in c.w)
    assert cluster_status(c.name, root=c.inv).su_per_hour == pytest.approx(before.su_per_hour)
    assert "Service Units: " in out.stdout and "/hour more" in out.stdout

    again = c.cli("--workers", "4", "--json")
    assert again.returncode == 0
    assert {s["action"] for s in json.loads(again.stdout)["steps"]} == {"noop"}


def test_pdb_blocks_one_node_others_proceed(conn, cluster):
    c = cluster
    c.reset()
    c.put_pod("db-0", c.w[2], labels={"app": "db"})
    c.put_pod("web-x", c.w[3])
    client.PolicyV1Api(c.kube.api).create_namespaced_pod_disruption_budget(
        NS,
        client.V1PodDisruptionBudget(
            metadata=client.V1ObjectMeta(name="db"),
            spec=client.V1PodDisruptionBudgetSpec(
                min_available=1, selector=client.V1LabelSelector(match_labels={"app": "db"})
            ),
        ),
    )
    out = c.cli("--shelve", "--nodes", f"{c.w[2]},{c.w[3]}", "--drain-timeout", "4")
    assert out.returncode == 1, out.stdout + out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("  ") and c.w[2] in ln)
    assert "blocked" in line and "apps/db-0" in line and "disruption budget" in line, line
    assert f"not changed as asked: {c.w[2]}" in out.stderr
    statuses = server_status(conn, c.name)
    assert statuses[c.w[2]] == "ACTIVE" and statuses[c.w[3]] == "SHELVED_OFFLOADED"
    blocked = c.kube.node(c.w[2])
    assert not blocked.unschedulable and blocked.scaling is None, (
        "a blocked node is uncordoned and left ACTIVE"
    )
    assert "db-0" in c.pods(c.w[2])


def test_control_plane_is_never_selected(conn, cluster):
    c = cluster
    c.reset()
    refused = c.cli("--shelve", "--nodes", c.cp)
    assert refused.returncode == 1
    assert f"{c.cp} is a control-plane node" in refused.stderr
    plan = c.cli("--shelve", "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    steps = {s["node"]: s["action"] for s in json.loads(plan.stdout)["steps"]}
    assert steps == {c.cp: "noop", **{n: "shelve" for n in c.w}}
    assert all(s == "ACTIVE" for s in server_status(conn, c.name).values()), "a dry run changes nothing"
    assert not any(n.unschedulable for n in c.kube.nodes().values())


def test_api_faults_during_shelve_are_survived(conn, cluster):
    c = cluster
    c.reset()
    action = r"/servers/[^/]+/action$"
    faults.inject("nova", method="POST", path=action, status=503, retry_after=1, count=1)
    faults.inject("nova", method="POST", path=action, kind="lose_response", count=1)
    faults.inject("nova", method="GET", path=r"/servers/[^/]+$", kind="reset", count=2)
    result = scale_cluster(c.name, Request(shelve=2), progress=quiet(), root=c.inv)
    fired = {(f["service"], f["kind"]) for f in faults.fired()}
    assert {("nova", "status"), ("nova", "lose_response"), ("nova", "reset")} <= fired
    assert result.ok, result.to_dict()
    statuses = server_status(conn, c.name)
    assert sorted(statuses[n] for n in c.w) == ["ACTIVE", "ACTIVE", "SHELVED_OFFLOADED", "SHELVED_OFFLOADED"]


def test_killed_run_converges_on_rerun(conn, cluster):
    c = cluster
    c.reset()
    # Slow the shelve calls down so the kill lands while they are under way.
    faults.inject("nova", method="POST", path=r"/servers/[^/]+/action$", kind="delay", delay=3, count=3)
    seen = kill_when(
        ["scale", "--cluster", c.name, "--workers", "1"],
        dict(os.environ, STACKSPRAY_INVENTORIES=str(c.inv)),
        ": shelving",
    )
    assert ": shelving" in seen, seen
    faults.clear()

    out = c.cli("--workers", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    statuses = server_status(conn, c.name)
    assert sorted(statuses[n] for n in c.w) == ["ACTIVE"] + ["SHELVED_OFFLOADED"] * 3
    nodes = c.kube.nodes()
    for n in c.w:
        shelved = statuses[n] == "SHELVED_OFFLOADED"
        assert nodes[n].unschedulable == shelved and (nodes[n].scaling == "shelve") == shelved, n
    again = c.cli("--workers", "1", "--json")
    assert {s["action"] for s in json.loads(again.stdout)["steps"]} == {"noop"}


def test_schedule_installs_runs_lists_and_removes(conn, cluster, monkeypatch, cron_daemon):
    """The crontab backend (this machine has no systemd user manager): entries are installed,
    replaced, listed and removed; other crontab lines are kept; the installed command works."""
    from stackspray_sandbox.infra import install_apt_packages

    install_apt_packages()  # crontab comes from Debian's cron package
    c = cluster
    c.reset()
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    foreign = "17 3 * * * /usr/bin/true # someone else's job"
    subprocess.run(["crontab", "-"], input=foreign + "\n", text=True, check=True)
    env = dict(os.environ, STACKSPRAY_INVENTORIES=str(c.inv), STACKSPRAY_SCHEDULER="cron")

    def sched(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", "scale.schedule", "--cluster", c.name, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )

    try:
        assert sched("--at", "20:00", "--workers", "0", "--days", "mon-fri").returncode == 0
        assert sched("--at", "07:00", "--workers", "4").returncode == 0
        assert sched("--at", "07:00", "--workers", "3").returncode == 0  # same time: replaces
        lines = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout.splitlines()
        ours = [ln for ln in lines if ln.endswith(f"# stackspray:{c.name}:scale-2000-MoTuWeThFr")]
        assert len(ours) == 1 and ours[0].startswith("0 20 * * 1,2,3,4,5 ")
        assert len([ln for ln in lines if f"stackspray:{c.name}:scale-0700" in ln]) == 1
        assert foreign in lines
        listed = json.loads(sched("--list", "--json").stdout)
        assert {(j["id"], j["command"]) for j in listed} == {
            ("scale-2000-MoTuWeThFr", f"scale --cluster {c.name} --workers 0"),
            ("scale-0700", f"scale --cluster {c.name} --workers 3"),
        }
        # What cron would run, run now: the 07:00 job (3 ACTIVE workers) shelves one.
        command = next(ln for ln in lines if "scale-0700" in ln).split(" ", 5)[5].rsplit(" # ", 1)[0]
        ran = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=600)
        assert ran.returncode == 0, ran.stderr
        log = c.inv / c.name / "logs" / "scheduled-scale-0700.log"
        assert "shelve" in log.read_text() and "saving" in log.read_text()
        assert sorted(server_status(conn, c.name)[n] for n in c.w) == ["ACTIVE"] * 3 + ["SHELVED_OFFLOADED"]

        assert sched("--remove", "scale-0700").returncode == 0
        assert [j["id"] for j in json.loads(sched("--list", "--json").stdout)] == ["scale-2000-MoTuWeThFr"]
        missing = sched("--remove", "scale-0700")
        assert missing.returncode == 1 and "no scheduled job 'scale-0700'" in missing.stderr
        assert sched("--remove", "all").returncode == 0
        lines = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout.splitlines()
        assert lines == [foreign]
    finally:
        if saved.returncode == 0:
            subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True)


def test_create_cluster_refuses_kubespray_while_workers_are_shelved(conn, cluster):
    """Kubespray needs every node: a change that runs it waits for --unshelve, creating nothing."""
    c = cluster
    c.reset()
    assert c.cli("--shelve", "--nodes", c.w[3]).returncode == 0
    respec(c.spec_file, workers=5)
    try:
        with pytest.raises(StackSprayError, match=r"1 node\(s\) are shelved .*--unshelve"):
            create_cluster(load_spec(c.spec_file), progress=quiet(), root=c.inv)
        assert f"{c.name}-workers-5" not in server_status(conn, c.name)
        # With nothing to change, create-cluster runs no playbook and does not mind shelved nodes.
        respec(c.spec_file, workers=4)
        rerun = quiet()
        create_cluster(load_spec(c.spec_file), progress=rerun, root=c.inv)
        assert not any("running " in line and ".yml" in line for line in rerun.lines)
    finally:
        respec(c.spec_file, workers=4)
