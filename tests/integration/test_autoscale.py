"""Autoscaling by shelving against the sandbox (real Nova shelve/unshelve of node hosts) and the
Kubernetes API stand-in, whose Deployment and ReplicaSet controllers make the pods and whose
scheduler binds them; everything judged through the official kubernetes client and Nova.
Commands run as a user runs them: `invoke` from another folder, OS_CLOUD exported.

The workers are m3.tiny (1 vCPU): pods of 300m CPU fit two per worker next to Kubespray's DaemonSet
pods (calico-node 150m, nodelocaldns 100m) and a CoreDNS replica (100m), never three."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import BIN, ROOT, built_cluster, eventually, invoke, kill_when, user_env
from kubernetes import client
from stackspray_sandbox import faults

from stackspray.kube import Kube
from stackspray.state import ClusterDir

# It edits this machine's crontab or user manager: one such module at a time (tests/conftest.py).
pytestmark = pytest.mark.host_scheduler

NS = "apps"
IDLE = 5  # seconds: the test's --idle (the default is 30 minutes)


class Cluster:
    def __init__(self, sandbox, name: str, inv: Path, kubeconfig: str, cwd: Path) -> None:
        self.sandbox, self.name, self.inv, self.cwd = sandbox, name, inv, cwd
        self.kube = Kube(kubeconfig)
        self.apps = client.AppsV1Api(self.kube.api)
        self.policy = client.PolicyV1Api(self.kube.api)
        self.cp = f"{name}-control-plane-1"
        self.w = [f"{name}-workers-{i}" for i in range(1, 4)]
        self.env = {"STACKSPRAY_INVENTORIES": str(inv), "STACKSPRAY_SCHEDULER": "cron"}

    def invoke(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return invoke(self.sandbox, self.cwd, *args, timeout=timeout, env=self.env)

    def round(self, *extra: str) -> dict:
        out = self.invoke("autoscale.run", "--cluster", self.name, "--once", "--json", *extra)
        assert out.returncode in (0, 1), out.stdout + out.stderr
        doc = json.loads(out.stdout)
        assert "decisions" in doc, doc
        return doc

    def status(self) -> dict:
        out = self.invoke("autoscale.status", "--cluster", self.name, "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        return json.loads(out.stdout)

    def deployment(self, name: str, replicas: int, cpu: str = "300m", node: str | None = None, **template):
        pod_meta = client.V1ObjectMeta(labels={"app": name}, annotations=template.pop("annotations", None))
        spec = client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="c", image="busybox", resources=client.V1ResourceRequirements(requests={"cpu": cpu})
                )
            ],
            node_selector={"kubernetes.io/hostname": node} if node else None,
            **template,
        )
        self.apps.create_namespaced_deployment(
            NS,
            client.V1Deployment(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1DeploymentSpec(
                    replicas=replicas,
                    selector=client.V1LabelSelector(match_labels={"app": name}),
                    template=client.V1PodTemplateSpec(metadata=pod_meta, spec=spec),
                ),
            ),
        )

    def pods(self, app: str) -> list:
        return self.kube.core.list_namespaced_pod(NS, label_selector=f"app={app}").items

    def running_on(self, app: str) -> dict[str, str]:
        """pod -> node, once every pod of the app runs (Ready) somewhere."""
        pods = self.pods(app)
        ready = [
            p
            for p in pods
            if p.spec.node_name
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        return {p.metadata.name: p.spec.node_name for p in ready} if len(ready) == len(pods) else {}

    def servers(self, conn) -> dict[str, str]:
        return {
            s.name: s.status
            for s in conn.compute.servers()
            if (s.metadata or {}).get("stackspray-cluster") == self.name
        }

    def clear(self) -> None:
        for d in self.apps.list_namespaced_deployment(NS).items:
            self.apps.delete_namespaced_deployment(d.metadata.name, NS)
        for b in self.policy.list_namespaced_pod_disruption_budget(NS).items:
            self.policy.delete_namespaced_pod_disruption_budget(b.metadata.name, NS)
        for p in self.kube.core.list_namespaced_pod(NS).items:
            self.kube.core.delete_namespaced_pod(p.metadata.name, NS)
        assert eventually(lambda: not self.kube.core.list_namespaced_pod(NS).items)


def actions(doc: dict) -> dict[str, str]:
    return {d["node"]: d["action"] for d in doc["decisions"] if d["action"] != "noop"}


@pytest.fixture(scope="module")
def cluster(sandbox, ssh_key, tmp_path_factory):
    """1 control-plane + 3 m3.tiny workers, autoscaled between 0 and 3 with short timers."""
    tmp = tmp_path_factory.mktemp("autoscale")
    elsewhere = tmp_path_factory.mktemp("operator-home")
    with built_cluster(sandbox, ssh_key, tmp, "as", "10.68.0.0/24", workers=3) as (name, inv, result, _):
        c = Cluster(sandbox, name, inv, result.kubeconfig, elsewhere)
        c.kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        out = c.invoke(
            "autoscale.enable",
            "--cluster",
            name,
            "--min",
            "0",
            "--max",
            "3",
            "--idle",
            f"{IDLE}s",
            "--pending-for",
            "0s",
            "--scale-down-delay",
            "0s",
            "--no-service",
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "autoscaled between 0 and 3" in out.stdout and "loop: not installed" in out.stdout
        yield c


def test_pending_pods_wake_exactly_the_workers_they_need(conn, cluster):
    c = cluster
    shelved = c.invoke("scale", "--cluster", c.name, "--workers", "0")
    assert shelved.returncode == 0, shelved.stdout + shelved.stderr
    assert all(c.servers(conn)[n] == "SHELVED_OFFLOADED" for n in c.w)
    time.sleep(IDLE + 1)  # a manual scale holds its nodes for the idle time

    c.deployment("web", 4)  # 4 x 300m: two per worker
    assert eventually(lambda: len(c.pods("web")) == 4 and all(not p.spec.node_name for p in c.pods("web")))
    cond = eventually(
        lambda: next(
            (x for x in c.pods("web")[0].status.conditions or [] if x.reason == "Unschedulable"), None
        ),
        timeout=10,
    )
    assert cond is not None, "the scheduler marks them Unschedulable (every worker is shelved)"

    dry = c.round("--dry-run")
    assert sorted(actions(dry).values()) == ["unshelve", "unshelve"] and dry["dry_run"]
    assert all(s == "SHELVED_OFFLOADED" for n, s in c.servers(conn).items() if n in c.w), "dry run"

    doc = c.round()
    woke = actions(doc)
    assert sorted(woke.values()) == ["unshelve", "unshelve"], doc["decisions"]
    assert all(doc["outcomes"][n]["outcome"] == "done" for n in woke), doc["outcomes"]
    statuses = c.servers(conn)
    assert sorted(statuses[n] for n in c.w) == ["ACTIVE", "ACTIVE", "SHELVED_OFFLOADED"]
    assert {n for n in c.w if statuses[n] == "ACTIVE"} == set(woke)
    placed = eventually(lambda: c.running_on("web"), timeout=20)
    assert placed and set(placed.values()) == set(woke), placed
    nodes = c.kube.nodes()
    assert all(not nodes[n].unschedulable and nodes[n].scaling is None for n in woke)
    # Nothing more to do: a second round wakes nothing and shelves nothing (scale-up just happened).
    again = c.round()
    assert not actions(again), again["decisions"]


def test_idle_workers_are_drained_and_shelved(conn, cluster):
    c = cluster
    c.clear()
    up = [n for n in c.w if c.servers(conn)[n] == "ACTIVE"]
    assert len(up) == 2
    c.deployment("web", 2)  # the scheduler spreads them: one 300m pod per worker (30 %)
    placed = eventually(lambda: c.running_on("web"), timeout=20)
    assert sorted(placed.values()) == sorted(up), placed

    first = c.round()
    assert not actions(first), "the idle clock starts"
    reasons = {d["node"]: d["reason"] for d in first["decisions"]}
    assert all("unneeded for" in reasons[n] for n in up), reasons
    time.sleep(IDLE + 1)
    doc = c.round()
    gone = actions(doc)
    # One non-empty worker at a time: the highest-numbered, whose pod fits on the other.
    assert gone == {up[1]: "shelve"}, doc["decisions"]
    assert doc["outcomes"][up[1]]["outcome"] == "done", doc["outcomes"]
    assert c.servers(conn)[up[1]] == "SHELVED_OFFLOADED"
    placed = eventually(lambda: c.running_on("web"), timeout=20)
    assert set(placed.values()) == {up[0]}, "the drained pod was replaced on the worker that stays"
    kept = {d["node"]: d["reason"] for d in c.round()["decisions"]}
    assert "utilization 60% is not below 50%" in kept[up[0]], kept


@pytest.mark.parametrize(
    "blocker, reason",
    [
        ("pdb", "PodDisruptionBudget apps/db allows no disruption now"),
        ("safe-to-evict", 'safe-to-evict: "false"'),
        ("bare", "not managed by a controller"),
        ("emptydir", "local storage (emptyDir/hostPath scratch)"),
    ],
)
def test_what_keeps_a_worker_active(conn, cluster, blocker, reason):
    c = cluster
    c.clear()
    (w,) = [n for n in c.w if c.servers(conn)[n] == "ACTIVE"]
    if blocker == "pdb":
        c.deployment("db", 1, cpu="100m", node=w)
        c.policy.create_namespaced_pod_disruption_budget(
            NS,
            client.V1PodDisruptionBudget(
                metadata=client.V1ObjectMeta(name="db"),
                spec=client.V1PodDisruptionBudgetSpec(
                    min_available=1, selector=client.V1LabelSelector(match_labels={"app": "db"})
                ),
            ),
        )
        app = "db"
    elif blocker == "safe-to-evict":
        app = "pinned"
        c.deployment(
            app,
            1,
            cpu="100m",
            node=w,
            annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        )
    elif blocker == "bare":
        app = "bare"
        c.kube.core.create_namespaced_pod(
            NS,
            client.V1Pod(
                metadata=client.V1ObjectMeta(name="bare", labels={"app": "bare"}),
                spec=client.V1PodSpec(
                    node_name=w, containers=[client.V1Container(name="c", image="busybox")]
                ),
            ),
        )
    else:
        app = "scratch"
        c.deployment(
            app,
            1,
            cpu="100m",
            node=w,
            volumes=[client.V1Volume(name="scratch", empty_dir=client.V1EmptyDirVolumeSource())],
        )
    assert eventually(lambda: c.running_on(app), timeout=20)
    time.sleep(IDLE + 1)
    doc = c.round()
    assert not actions(doc), doc["decisions"]
    assert c.servers(conn)[w] == "ACTIVE"
    st = c.status()
    assert reason in st["nodes"][w]["reason"] and st["nodes"][w]["action"] == "noop", st["nodes"][w]
    assert st["groups"]["workers"] == {"active": 1, "shelved": 2, "min": 0, "max": 3}


def test_the_last_idle_worker_goes_and_a_pod_that_fits_no_flavor_wakes_nothing(conn, cluster):
    c = cluster
    c.clear()
    (w,) = [n for n in c.w if c.servers(conn)[n] == "ACTIVE"]
    c.round()
    time.sleep(IDLE + 1)
    doc = c.round()
    assert actions(doc) == {w: "shelve"} and doc["outcomes"][w]["outcome"] == "done", doc["decisions"]
    assert all(s == "SHELVED_OFFLOADED" for n, s in c.servers(conn).items() if n in c.w)

    c.deployment("huge", 1, cpu="4")  # more CPU than any worker (1 vCPU) has
    assert eventually(lambda: c.pods("huge"))
    doc = c.round()
    assert not actions(doc), doc["decisions"]
    (pod,) = [p for p in doc["pending"] if p["pod"].startswith(f"{NS}/huge-")]
    assert "wakes nothing" in pod["reason"] and "needs 4 CPU" in pod["reason"], pod
    st = c.status()
    assert any(p["pod"] == pod["pod"] and "needs 4 CPU" in p["reason"] for p in st["pending"])
    assert any(e.get("pod") == pod["pod"] and e["action"] == "pending" for e in st["events"]), st["events"]
    costs = json.loads(c.invoke("status", "--cluster", c.name, "--json").stdout)
    control_plane = next(n["su_per_hour"] for n in costs["nodes"] if n["role"] == "control-plane")
    assert st["su_per_hour"] == pytest.approx(control_plane), "only the control plane costs SU now"
    assert all(s == "SHELVED_OFFLOADED" for n, s in c.servers(conn).items() if n in c.w)


def test_a_round_killed_mid_unshelve_or_mid_drain_is_finished_by_the_next(conn, cluster, sandbox):
    c = cluster
    c.clear()
    c.deployment("web", 1)
    assert eventually(lambda: c.pods("web"))
    time.sleep(1.5)  # the scheduler's pass marks it Unschedulable
    env = {**user_env(sandbox), **c.env}
    faults.inject("nova", method="POST", path=r"/servers/[^/]+/action$", kind="delay", delay=3, count=1)
    seen = kill_when(["-r", str(ROOT), "autoscale.run", "--cluster", c.name, "--once"], env, ": unshelving")
    faults.clear()
    assert ": unshelving" in seen, seen
    book = json.loads((c.inv / c.name / "autoscale.json").read_text())
    (woken,) = book["memory"]["in_progress"]
    assert book["memory"]["in_progress"][woken] == "unshelve", "the intent was written before acting"
    doc = c.round()
    assert actions(doc) == {woken: "unshelve"}, doc["decisions"]
    assert "interrupted unshelve" in next(d["reason"] for d in doc["decisions"] if d["node"] == woken)
    assert doc["outcomes"][woken]["outcome"] == "done"
    assert eventually(lambda: c.running_on("web"), timeout=20) == {
        p.metadata.name: woken for p in c.pods("web")
    }

    c.clear()
    c.round()
    time.sleep(IDLE + 1)
    seen = kill_when(["-r", str(ROOT), "autoscale.run", "--cluster", c.name, "--once"], env, ": shelving")
    assert ": shelving" in seen, seen
    node = c.kube.node(woken)
    assert node.unschedulable and node.scaling == "shelve", "killed after the drain: cordoned by us"
    doc = c.round()
    assert actions(doc) == {woken: "shelve"} and doc["outcomes"][woken]["outcome"] == "done", doc["decisions"]
    assert "interrupted shelve" in next(d["reason"] for d in doc["decisions"] if d["node"] == woken)
    assert c.servers(conn)[woken] == "SHELVED_OFFLOADED"
    assert not json.loads((c.inv / c.name / "autoscale.json").read_text())["memory"]["in_progress"]


def test_one_loop_at_a_time_and_it_waits_for_the_cluster_lock(conn, cluster, sandbox):
    c = cluster
    c.clear()
    loop = subprocess.Popen(
        [str(BIN / "invoke"), "-r", str(ROOT), "autoscale.run", "--cluster", c.name, "--interval", "2"],
        cwd=c.cwd,
        env={**user_env(sandbox), **c.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = c.inv / c.name / ".autoscale.lock"
        assert eventually(lambda: lock.exists() and f"pid {loop.pid}" in lock.read_text(), timeout=30)
        second = c.invoke("autoscale.run", "--cluster", c.name, "--once")
        assert second.returncode != 0, second.stdout + second.stderr
        assert f"is busy: stackspray autoscale.run (pid {loop.pid}) holds" in second.stderr, second.stderr
    finally:
        loop.terminate()
        loop.wait(timeout=30)

    # While another command holds the cluster's lock, the round waits for it, then acts.
    c.deployment("web", 1)
    assert eventually(lambda: c.pods("web"))
    time.sleep(1.5)
    held = threading.Event()

    def hold() -> None:
        with ClusterDir(c.name, c.inv).lock("create-cluster"):
            held.set()
            time.sleep(8)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    started = time.monotonic()
    out = c.invoke("autoscale.run", "--cluster", c.name, "--once")
    t.join()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "waiting for the cluster's lock" in out.stdout and "stackspray create-cluster" in out.stdout
    assert time.monotonic() - started >= 7
    assert eventually(lambda: c.running_on("web"), timeout=20)
    assert sorted(c.servers(conn)[n] for n in c.w) == ["ACTIVE", "SHELVED_OFFLOADED", "SHELVED_OFFLOADED"]


def test_enable_is_refused_where_nothing_would_run_the_loop(cluster):
    """A machine with crontab but no cron daemon and no systemd user manager (this one, seen
    from a PID namespace of its own, where no cron process is visible): enable refuses, naming
    what to start, and installs and changes nothing."""
    c = cluster
    before = c.status()
    env = {**user_env(c.sandbox), "STACKSPRAY_INVENTORIES": str(c.inv)}  # no STACKSPRAY_SCHEDULER
    out = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", str(BIN / "stackspray"), "autoscale.enable"]
        + ["--cluster", c.name, "--min", "0", "--max", "2", "--on", "here"],
        cwd=c.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "no cron daemon runs on this machine" in text and "systemctl enable --now cron" in text, text
    crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    assert f"stackspray:{c.name}:autoscale" not in crontab
    after = c.status()
    assert after["settings"] == before["settings"] and after["service"] is None


def test_the_crontab_entry_installs_runs_and_goes_with_disable_and_destroy(conn, cluster, cron_daemon):
    """With a cron daemon running (no systemd user manager here), enable installs a crontab line
    that cron really runs every minute; a window changes the limits and the loop acts on them;
    disable and destroy take every line away."""
    c = cluster
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    mark = f"# stackspray:{c.name}:autoscale"

    def ours() -> list[str]:
        lines = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout.splitlines()
        return [ln for ln in lines if ln.endswith(mark)]

    try:
        # One pod that needs one worker, whatever the tests before left: the loop keeps one.
        c.clear()
        c.deployment("web", 1)
        log = c.inv / c.name / "logs" / "autoscale.log"
        log.unlink(missing_ok=True)
        out = c.invoke(
            "autoscale.enable",
            "--cluster",
            c.name,
            "--on",
            "here",
            "--idle",
            f"{IDLE}s",
            "--pending-for",
            "0s",
        )
        assert out.returncode == 0 and "loop: cron (crontab)" in out.stdout, out.stdout + out.stderr
        (line,) = ours()
        assert line.startswith("* * * * * ") and "autoscale.run --cluster" in line and "--once" in line
        # cron itself runs it, in its own bare environment, within a minute.
        assert eventually(lambda: log.exists() and c.w[0] in log.read_text(), timeout=100), (
            log.read_text() if log.exists() else "cron never ran the line (no log)"
        )
        assert c.status()["service"] == "cron"

        # A window: at its time the schedule raises min, and the loop (cron's) wakes the difference.
        window = c.invoke(
            "autoscale.schedule", "--cluster", c.name, "--at", "09:45", "--min", "2", "--days", "mon-fri"
        )
        assert window.returncode == 0, window.stdout + window.stderr
        lines = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout.splitlines()
        (job,) = [
            ln for ln in lines if ln.endswith(f"# stackspray:{c.name}:autoscale-workers-0945-MoTuWeThFr")
        ]
        assert job.startswith("45 9 * * 1,2,3,4,5 ")
        assert "autoscale.limits --cluster" in job and "--min 2" in job
        # The cron-run loop keeps the one worker the pod needs (its run may still be at it).
        assert eventually(lambda: sum(c.servers(conn)[n] == "ACTIVE" for n in c.w) == 1, timeout=120), (
            log.read_text()
        )
        # 09:45 is not now: what cron runs then, run now in cron's bare environment.
        ran = subprocess.run(
            ["sh", "-c", job.split(" ", 5)[5].rsplit(" # ", 1)[0]],
            env={"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"]},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert c.status()["groups"]["workers"]["min"] == 2
        assert eventually(
            lambda: sorted(c.servers(conn)[n] for n in c.w) == ["ACTIVE", "ACTIVE", "SHELVED_OFFLOADED"],
            timeout=240,
        ), "the cron-run loop did not wake a second worker for min 2"

        # Nova says ACTIVE before the round has seen the node Ready and uncordoned it and logged it.
        def woken_for_min() -> bool:
            return any(
                e.get("action") == "unshelve" and "below its min 2" in e.get("reason", "")
                for e in c.status()["events"]
            )

        assert eventually(woken_for_min, timeout=120), c.status()["events"]
        listed = c.invoke("autoscale.schedule", "--cluster", c.name, "--list", "--json")
        assert [j["id"] for j in json.loads(listed.stdout)] == ["autoscale-workers-0945-MoTuWeThFr"]

        out = c.invoke("autoscale.disable", "--cluster", c.name)
        assert out.returncode == 0 and "removed: cron" in out.stdout, out.stdout
        assert not ours() and c.status()["enabled"] is False
        crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
        assert f"stackspray:{c.name}:autoscale-" not in crontab, "disable takes the windows away too"

        assert c.invoke("autoscale.enable", "--cluster", c.name, "--on", "here").returncode == 0 and ours()
        out = c.invoke("destroy-cluster", "--cluster", c.name, "--yes")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "removed the autoscaler (cron)" in out.stdout, out.stdout
        assert not ours()
        crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
        assert f"stackspray:{c.name}:" not in crontab, "the window went with the cluster too"
        assert not c.servers(conn)
    finally:
        if saved.returncode == 0:
            subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True)
