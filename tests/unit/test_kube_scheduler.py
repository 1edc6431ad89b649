"""The API stand-in's scheduler: kube-scheduler's filters and its message, table-driven."""

from __future__ import annotations

import pytest
from stackspray_sandbox.standins.kube_api.scheduler import choose, pod_requests, quantity

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node(name, cpu="2", mem_gi=6, gpu=None, labels=None, taints=None, unschedulable=False):
    alloc = {"cpu": cpu, "memory": f"{mem_gi}Gi", "pods": "110"}
    if gpu:
        alloc["nvidia.com/gpu"] = str(gpu)
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {"allocatable": alloc},
    }


def pod(cpu=None, mem=None, gpu=None, selector=None, tolerations=None, affinity=None):
    req = {k: v for k, v in {"cpu": cpu, "memory": mem, "nvidia.com/gpu": gpu}.items() if v}
    spec = {"containers": [{"name": "c", "resources": {"requests": req} if req else {}}]}
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = tolerations
    if affinity:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": affinity}}
    return {"metadata": {"name": "p"}, "spec": spec}


CLUSTER = [node("cp", taints=[CP_TAINT]), node("w1", cpu="1", mem_gi=3), node("w2", cpu="4", mem_gi=15)]

CASES = [
    ("fits the roomiest worker", pod(cpu="500m"), CLUSTER, {}, "w2", None),
    (
        "too big for every node",
        pod(cpu="8"),
        CLUSTER,
        {},
        None,
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
    ),
    (
        "a toleration admits the control plane",
        pod(cpu="2", tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]),
        [CLUSTER[0], CLUSTER[1]],
        {},
        "cp",
        None,
    ),
    (
        "node selector",
        pod(selector={"gpu": "a100"}),
        CLUSTER,
        {},
        None,
        "didn't match Pod's node affinity/selector",
    ),
    (
        "required affinity In",
        pod(
            affinity={
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["b"]}]}
                ]
            }
        ),
        [node("a", labels={"pool": "a"}), node("b", labels={"pool": "b"})],
        {},
        "b",
        None,
    ),
    ("GPUs counted", pod(gpu="1"), [node("c", cpu="8"), node("g", gpu=1)], {}, "g", None),
    (
        "cordoned nodes are skipped",
        pod(),
        [node("w", unschedulable=True)],
        {},
        None,
        "1 node(s) were unschedulable",
    ),
    (
        "what is already bound counts",
        pod(cpu="1"),
        [node("w", cpu="2")],
        {"w": [pod(cpu="1500m")]},
        None,
        "1 Insufficient cpu",
    ),
    (
        "an unreachable (shelved) node's taints keep pods off it",
        pod(),
        [node("w", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}])],
        {},
        None,
        "untolerated taint {node.kubernetes.io/unreachable: }",
    ),
]


@pytest.mark.parametrize("p,nodes,bound,chosen,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_filters_choose_or_explain(p, nodes, bound, chosen, message):
    got, why = choose(p, nodes, bound)
    assert got == chosen
    if message:
        assert message in why, why
    else:
        assert why == ""


def test_requests_follow_the_api_helpers():
    p = pod(cpu="250m", mem="512Mi")
    p["spec"]["containers"].append({"name": "d", "resources": {"limits": {"cpu": "1"}}})
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "2"}}}]
    want = pod_requests(p)
    assert want["cpu"] == 2.0 and want["memory"] == 512 * 2**20
    assert quantity("100m") == 0.1 and quantity("1Gi") == 2**30 and quantity("64M") == 64e6
