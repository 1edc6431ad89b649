"""Autoscaling by shelving: how fast pods get a woken worker, and what a day costs in SU.

    .venv/bin/python benchmarks/autoscale.py [--json] [--replay-only]

1. Wake-up time on the sandbox, in one run: a 1 + 3 m3.tiny cluster (Kubespray stand-in), every
   worker shelved, autoscaling on (pending_for 0 s, a round every second). A Deployment of two
   300m pods (one worker's worth) is created and the clock runs until both pods are Running —
   the autoscaler noticing them, unshelving, the node going Ready, the uncordon, the scheduler.
   Then the same with the agent on the cluster (autoscale.enable --on cluster: its round every
   10 s, as users get it), after every worker is shelved again.
   The floor, measured in the same run on the same worker: Nova alone unshelving it (the call,
   then the server listed every 0.2 s until ACTIVE). Reported: each, and its ratio to the floor
   (goal 1.3x for the loop; the agent adds up to one interval).
2. A replayed day (no cloud: the planner itself, autoscale_plan.plan_autoscale, one round a
   minute): 4 m3.medium workers (8 vCPU, 30 GiB; 8 SU/hour each ACTIVE); a class from 10:00 to
   12:00 (12 pods of 2 CPU: three workers' worth) and a batch from 20:00 to 21:00 (16 pods of
   2 CPU: four workers); a woken worker takes 3 minutes to be Ready (Jetstream2: "under 5 min
   for 9 nodes"). SU of the day autoscaled (idle 30 min), against always-on and against a fixed
   schedule that keeps the workers up 09:30-12:30 and 19:30-21:30, and the minutes pods waited.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from stackspray.autoscale_plan import GroupSettings, Memory, Node, Pod, Resources, Settings, plan_autoscale

GIB = 2**30


# -- 2. the replayed day -------------------------------------------------------------------------


def replay_day(idle_min: float = 30.0, wake_min: int = 3) -> dict:
    """Minute by minute: the planner decides, workers wake after `wake_min`, pods are placed
    first-fit on Ready workers. Returns SU for autoscaled, always-on and scheduled, and waits."""
    workers = [f"w-{i}" for i in range(1, 5)]
    alloc = Resources(8.0, 30.0 * GIB)
    su_per_hour = 8.0
    status = {w: "SHELVED_OFFLOADED" for w in workers}
    ready_at: dict[str, int] = {}
    memory = Memory()
    settings = Settings(
        groups={"workers": GroupSettings(min=0, max=4, idle=idle_min * 60, pending_for=30)},
        scale_down_delay=600,
    )
    demand = [(10 * 60, 12 * 60, 12, "class"), (20 * 60, 21 * 60, 16, "batch")]
    placed: dict[str, str | None] = {}
    since: dict[str, int] = {}
    su = 0.0
    waited = 0
    for minute in range(24 * 60):
        now = minute * 60.0
        want = {f"{tag}-{i}" for start, end, n, tag in demand if start <= minute < end for i in range(n)}
        for gone in [p for p in placed if p not in want]:
            del placed[gone]
        for p in want:
            if p not in placed:
                placed[p], since[p] = None, minute
        for w in workers:
            if status[w] == "WAKING" and minute >= ready_at[w]:
                status[w] = "ACTIVE"
        usable = [w for w in workers if status[w] == "ACTIVE"]
        used = {w: sum(2.0 for p, at in placed.items() if at == w) for w in workers}
        for p in sorted(q for q, at in placed.items() if at is None):
            free = [w for w in usable if used[w] + 2.0 <= alloc.cpu]
            if free:
                placed[p] = free[0]
                used[free[0]] += 2.0
        waited += sum(1 for at in placed.values() if at is None)
        nodes = [
            Node(
                name=w,
                group="workers",
                status="ACTIVE" if status[w] in ("ACTIVE", "WAKING") else status[w],
                ready=status[w] == "ACTIVE",
                allocatable=alloc,
                su_active=su_per_hour,
                ours=status[w] == "WAKING",
            )
            for w in workers
        ]
        pods = [
            Pod(
                key=f"default/{p}",
                node=at,
                phase="Running" if at else "Pending",
                requests=Resources(2.0, 4.0 * GIB),
                unschedulable=at is None,
                pending_since=since[p] * 60.0,
                controller="ReplicaSet",
            )
            for p, at in placed.items()
        ]
        plan = plan_autoscale(nodes, pods, [], settings, memory, now)
        memory = plan.memory
        for d in plan.actions:
            memory.in_progress.pop(d.node, None)
            if d.action == "unshelve" and status[d.node] == "SHELVED_OFFLOADED":
                status[d.node], ready_at[d.node] = "WAKING", minute + wake_min
            elif d.action == "shelve":
                status[d.node] = "SHELVED_OFFLOADED"
                for p, at in placed.items():
                    if at == d.node:
                        placed[p] = None
        su += sum(su_per_hour / 60 for w in workers if status[w] != "SHELVED_OFFLOADED")
    always = 4 * su_per_hour * 24
    windows = [(9.5, 12.5), (19.5, 21.5)]
    scheduled = 4 * su_per_hour * sum(b - a for a, b in windows)
    return {
        "workers": 4,
        "su_autoscaled": round(su, 1),
        "su_always_on": always,
        "su_fixed_schedule": scheduled,
        "autoscaled_vs_always_on": round(su / always, 3),
        "autoscaled_vs_schedule": round(su / scheduled, 3),
        "pod_minutes_waiting": waited,
        "idle_min": idle_min,
        "wake_min": wake_min,
    }


# -- 1. wake-up time on the sandbox ------------------------------------------------------------------


def wake_up(paths) -> dict:
    import openstack
    from kubernetes import client
    from stackspray_sandbox.specs import write_small_cluster_spec

    from stackspray import autoscale, autoscale_setup
    from stackspray.cluster import create_cluster, destroy_cluster
    from stackspray.kube import Kube
    from stackspray.progress import Progress
    from stackspray.scale import Request, scale_cluster
    from stackspray.spec import load_spec

    quiet = Progress(emit=lambda m: None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-autoscale-"))
    inv = tmp / "inventories"
    name = f"ba{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp, name, paths.home / "demo_id_ed25519.pub", "10.96.0.0/24", 3)
    try:
        result = create_cluster(load_spec(spec), progress=quiet, root=inv)
        kube = Kube(result.kubeconfig)
        apps = client.AppsV1Api(kube.api)
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="bench")))
        conn = openstack.connect(cloud="sandbox")
        assert scale_cluster(name, Request(workers=0), progress=quiet, root=inv).ok
        autoscale_setup.enable(name, min_=0, max_=3, idle="1h", pending_for="0s", service=False, root=inv)

        # The floor: Nova alone unshelving the worker the autoscaler will pick (the lowest-numbered).
        first = next(s for s in conn.compute.servers() if s.name == f"{name}-workers-1")
        t0 = time.monotonic()
        conn.compute.unshelve_server(first)
        while True:
            s = conn.compute.get_server(first.id)
            if s.status == "ACTIVE" and not s.task_state:
                break
            time.sleep(0.2)
        nova_unshelve = time.monotonic() - t0
        assert scale_cluster(name, Request(workers=0), progress=quiet, root=inv).ok  # back, cordoned by us

        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                autoscale.run_round(name, progress=quiet, root=inv)
                stop.wait(1.0)

        t0 = time.monotonic()
        apps.create_namespaced_deployment("bench", _web("web"))
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        pods = _wait_running(kube, 2)
        to_running = time.monotonic() - t0
        stop.set()
        thread.join(timeout=120)
        woken = sorted({p.spec.node_name for p in pods})

        # The agent on the cluster: the same wake-up, every worker shelved again first.
        apps.delete_namespaced_deployment("web", "bench")
        while kube.core.list_namespaced_pod("bench").items:
            time.sleep(0.5)
        assert scale_cluster(name, Request(workers=0), progress=quiet, root=inv).ok
        autoscale_setup.enable(name, min_=0, max_=3, idle="1h", pending_for="0s", on="cluster", root=inv)
        t0 = time.monotonic()
        apps.create_namespaced_deployment("bench", _web("web2"))
        _wait_running(kube, 2)
        agent_to_running = time.monotonic() - t0
    finally:
        destroy_cluster(name, cloud="sandbox", root=inv, progress=quiet)
    return {
        "pods_to_running_s": round(to_running, 1),
        "nova_unshelve_s": round(nova_unshelve, 1),
        "ratio": round(to_running / nova_unshelve, 2),
        "agent_pods_to_running_s": round(agent_to_running, 1),
        "agent_ratio": round(agent_to_running / nova_unshelve, 2),
        "woken": woken,
    }


def _wait_running(kube, count: int) -> list:
    """The bench namespace's pods once `count` of them run, each bound and Ready."""
    while True:
        pods = kube.core.list_namespaced_pod("bench").items
        if len(pods) == count and all(
            p.spec.node_name
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            for p in pods
        ):
            return pods
        time.sleep(0.2)


def _web(name: str):
    from kubernetes import client

    container = client.V1Container(
        name="c", image="x", resources=client.V1ResourceRequirements(requests={"cpu": "300m"})
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": name}),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--replay-only", action="store_true", help="only the replayed day (no sandbox)")
    args = ap.parse_args()
    out: dict = {"replay": replay_day()}
    if not args.replay_only:
        from stackspray_sandbox.paths import SandboxPaths

        paths = SandboxPaths.default()
        os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(paths.clouds_yaml))
        out["wake_up"] = wake_up(paths)
    if args.json:
        print(json.dumps(out))
        return
    if "wake_up" in out:
        w = out["wake_up"]
        print(
            f"wake-up: pods Running {w['pods_to_running_s']}s after creation; Nova alone unshelves in "
            f"{w['nova_unshelve_s']}s: {w['ratio']}x (goal 1.3x); woke {', '.join(w['woken'])}"
        )
        print(
            f"wake-up with the agent on the cluster: {w['agent_pods_to_running_s']}s, "
            f"{w['agent_ratio']}x Nova's unshelve"
        )
    r = out["replay"]
    print(
        f"replayed day, {r['workers']} m3.medium workers: autoscaled {r['su_autoscaled']} SU, always on "
        f"{r['su_always_on']:g} SU ({r['autoscaled_vs_always_on']:.1%}), fixed schedule "
        f"{r['su_fixed_schedule']:g} SU ({r['autoscaled_vs_schedule']:.1%}); pods waited "
        f"{r['pod_minutes_waiting']} pod-minutes"
    )


if __name__ == "__main__":
    main()
