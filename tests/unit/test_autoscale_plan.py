"""The autoscaler's planner, table-driven from tests/unit/autoscale_plans/*.json (memory in GiB
there), the back-off arithmetic, and reading pods from the API's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackspray.autoscale import pod_from_json, pod_requests
from stackspray.autoscale_plan import (
    Budget,
    GroupSettings,
    Memory,
    Node,
    Pod,
    Resources,
    Settings,
    backoff_after_failure,
    clear_backoff,
    plan_autoscale,
)

CASES = sorted((Path(__file__).parent / "autoscale_plans").glob("*.json"))
GIB = 2**30


def res(d: dict | None) -> Resources:
    d = d or {}
    return Resources(float(d.get("cpu", 0)), float(d.get("memory_gib", 0)) * GIB, float(d.get("gpu", 0)))


def load(case: dict):
    nodes = [
        Node(
            **{k: v for k, v in n.items() if k not in ("allocatable", "taints", "labels", "annotations")},
            allocatable=res(n.get("allocatable")),
            taints=tuple(n.get("taints", ())),
            labels=n.get("labels", {}),
            annotations=n.get("annotations", {}),
        )
        for n in case["nodes"]
    ]
    pods = [
        Pod(
            **{k: v for k, v in p.items() if k not in ("requests", "tolerations", "local_volumes")},
            requests=res(p.get("requests")),
            tolerations=tuple(p.get("tolerations", ())),
            local_volumes=tuple(p.get("local_volumes", ())),
        )
        for p in case["pods"]
    ]
    budgets = [Budget(**b) for b in case["budgets"]]
    raw = case["settings"]
    settings = Settings(
        groups={g: GroupSettings(**v) for g, v in raw["groups"].items()},
        **{k: v for k, v in raw.items() if k != "groups"},
    )
    return nodes, pods, budgets, settings, Memory.from_dict(case["memory"])


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_plan(path):
    case = json.loads(path.read_text())
    nodes, pods, budgets, settings, memory = load(case)
    plan = plan_autoscale(nodes, pods, budgets, settings, memory, case["now"])
    got = {d.node: d.action for d in plan.decisions}
    assert got == case["expect"], (case["description"], {d.node: d.reason for d in plan.decisions})
    reasons = {d.node: d.reason for d in plan.decisions}
    for node, text in case["expect_reasons"].items():
        assert text in reasons[node], (node, reasons[node])
    pending = {p["pod"]: p["reason"] for p in plan.pending}
    for pod, text in case["expect_pending"].items():
        assert text in pending[pod], (pod, pending[pod])
    for key, want in case["expect_memory"].items():
        assert getattr(plan.memory, key) == want, key
    # The planner is pure: the memory it was given is unchanged.
    assert memory == Memory.from_dict(case["memory"])
    # Every node has exactly one decision, with a reason.
    assert sorted(got) == sorted(n.name for n in nodes) and all(d.reason for d in plan.decisions)


def test_cases_exist():
    assert len(CASES) >= 25


def test_backoff_doubles_to_thirty_minutes_and_clears():
    m = Memory()
    delays = []
    for _ in range(5):
        m = backoff_after_failure(m, "workers", 0.0, "No valid host was found")
        delays.append(m.backoff["workers"]["delay"])
    assert delays == [300, 600, 1200, 1800, 1800]
    assert "workers" not in clear_backoff(m, "workers").backoff


def test_a_pod_read_from_the_api():
    pod = pod_from_json(
        {
            "metadata": {
                "name": "web-1",
                "namespace": "hub",
                "creationTimestamp": "2026-12-01T10:00:00Z",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web", "uid": "u", "controller": True}],
                "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
            },
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m", "nvidia.com/gpu": "1"}}},
                ],
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                "volumes": [
                    {"name": "scratch", "emptyDir": {}},
                    {"name": "conf", "configMap": {"name": "x"}},
                ],
                "priority": -5,
            },
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "lastTransitionTime": "2026-12-01T10:00:05Z",
                    }
                ],
            },
        }
    )
    assert pod.key == "hub/web-1" and pod.node is None and pod.unschedulable
    assert pod.requests == Resources(2.0, float(GIB), 1.0), "the largest init container wins for CPU"
    assert pod.controller == "ReplicaSet" and pod.owner == "web"
    assert pod.priority == -5 and pod.local_volumes == ("scratch",)
    assert pod.pending_since == 1796119205.0
    assert pod_requests({"containers": [{"name": "x"}]}) == Resources()


def test_a_silent_loop_is_said_so():
    """autoscale.status never shows a loop nothing runs as if it ran."""
    from types import SimpleNamespace

    from stackspray.autoscale_setup import loop_warning

    auto = SimpleNamespace(enabled_at="2026-12-06T10:00:00Z")
    at = 1796551200.0  # 2026-12-06T10:00:00Z
    assert loop_warning("lab", False, None, None, auto, at + 999) is None
    assert "no loop is installed" in loop_warning("lab", True, None, None, auto, at)
    assert loop_warning("lab", True, "systemd", "2026-12-06T10:00:00Z", auto, at + 25) is None
    late = loop_warning("lab", True, "systemd", "2026-12-06T10:00:00Z", auto, at + 31)
    assert "last round ended 31s ago" in late and "stackspray-lab_autoscale" in late
    assert loop_warning("lab", True, "cron", None, auto, at + 170) is None
    never = loop_warning("lab", True, "cron", None, auto, at + 190)
    assert "no round yet" in never and "cron daemon" in never
