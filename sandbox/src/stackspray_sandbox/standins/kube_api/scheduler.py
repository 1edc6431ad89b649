"""STAND-IN scheduler: which node a pending pod is bound to, or why none, as kube-scheduler's
filters decide it (pkg/scheduler/framework/plugins: nodeunschedulable, nodename, tainttoleration,
nodeaffinity, noderesources/fit.go), and the message it writes into the pod's PodScheduled
condition (pkg/scheduler/schedule_one.go, framework/types.go FitError.Error). Scoring is
reduced to "the fewest pods the pod prefers to avoid (preferred anti-affinity on the hostname),
then the node with the most free CPU, then by name". Pure functions on plain objects;
server.py runs them. Copied to the node beside server.py."""

from __future__ import annotations

GPU = "nvidia.com/gpu"


def quantity(q) -> float:
    """A resource.Quantity ("500m", "2", "1Gi", "512Mi", 1) as a number (CPU in cores)."""
    text = str(q).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    for suffix, factor in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40), ("Pi", 2**50)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    for suffix, factor in (("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def pod_requests(pod: dict) -> dict[str, float]:
    """The pod's effective requests: the sum over its containers, or the largest init container
    when that is more (pkg/api/v1/resource/helpers.go PodRequests); a limit without a request
    counts as the request (defaulting)."""
    spec = pod.get("spec", {})

    def of(containers) -> dict[str, float]:
        total: dict[str, float] = {}
        for c in containers or []:
            res = c.get("resources") or {}
            want = {**(res.get("limits") or {}), **(res.get("requests") or {})}
            for k, v in want.items():
                total[k] = total.get(k, 0.0) + quantity(v)
        return total

    total = of(spec.get("containers"))
    for c in spec.get("initContainers") or []:
        for k, v in of([c]).items():
            total[k] = max(total.get(k, 0.0), v)
    return total


def tolerates(tol: dict, taint: dict) -> bool:
    """core/v1 Toleration.ToleratesTaint (k8s.io/api/core/v1/toleration.go)."""
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    if tol.get("key") and tol["key"] != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (tol.get("value") or "") == (taint.get("value") or "")


def _expression_matches(expr: dict, labels: dict) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    have = labels.get(key)
    if op == "In":
        return have is not None and have in values
    if op == "NotIn":
        return have is None or have not in values
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt"):
        try:
            return (int(have) > int(values[0])) if op == "Gt" else (int(have) < int(values[0]))
        except (TypeError, ValueError, IndexError):
            return False
    return False


def affinity_matches(pod: dict, node: dict) -> bool:
    """nodeSelector and requiredDuringSchedulingIgnoredDuringExecution (terms ORed, expressions
    ANDed): the NodeAffinity filter."""
    labels = node.get("metadata", {}).get("labels") or {}
    spec = pod.get("spec", {})
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(all(_expression_matches(e, labels) for e in t.get("matchExpressions") or []) for t in terms)


def anti_affinity_penalty(pod: dict, on_node: list[dict]) -> int:
    """The InterPodAffinity score's preferred anti-affinity part for one node
    (pkg/scheduler/framework/plugins/interpodaffinity/scoring.go processExistingPod): each
    preferred podAntiAffinity term of the pod, topology kubernetes.io/hostname, costs its weight
    for every pod on the node its label selector matches (in the pod's namespace, or the term's
    namespaces). Other topology keys are not modelled (the sandbox has one zone)."""
    spec = pod.get("spec", {})
    ns = pod.get("metadata", {}).get("namespace", "")
    terms = ((spec.get("affinity") or {}).get("podAntiAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution"
    ) or []
    penalty = 0
    for t in terms:
        term = t.get("podAffinityTerm") or {}
        if term.get("topologyKey") != "kubernetes.io/hostname":
            continue
        selector = term.get("labelSelector") or {}
        spaces = term.get("namespaces") or [ns]
        for other in on_node:
            labels = other.get("metadata", {}).get("labels") or {}
            if other.get("metadata", {}).get("namespace", "") not in spaces:
                continue
            if all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
                _expression_matches(e, labels) for e in selector.get("matchExpressions") or []
            ):
                penalty += int(t.get("weight") or 0)
    return penalty


def untolerated_taint(pod: dict, taints: list[dict]) -> dict | None:
    """The first NoSchedule/NoExecute taint the pod does not tolerate (TaintToleration)."""
    tolerations = pod.get("spec", {}).get("tolerations") or []
    for taint in taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
            tolerates(t, taint) for t in tolerations
        ):
            return taint
    return None


def free(node: dict, pods_on_node: list[dict]) -> dict[str, float]:
    """Allocatable minus what the pods bound to the node request (NodeResourcesFit)."""
    allocatable = {k: quantity(v) for k, v in (node.get("status", {}).get("allocatable") or {}).items()}
    left = dict(allocatable)
    for p in pods_on_node:
        for k, v in pod_requests(p).items():
            left[k] = left.get(k, 0.0) - v
    left["pods"] = allocatable.get("pods", 110) - len(pods_on_node)
    return left


def choose(pod: dict, nodes: list[dict], bound: dict[str, list[dict]]) -> tuple[str | None, str]:
    """(node name, "") for a pod that fits somewhere; (None, the scheduler's message) otherwise.
    `nodes` are views with their taints (the node lifecycle controller's included) and
    allocatable; `bound` maps a node's name to the pods already on it."""
    reasons: dict[str, int] = {}
    no_victims = 0  # nodes short of resources: preemption finds nothing lower to evict here
    fits: list[tuple[float, str]] = []
    want = pod_requests(pod)
    for node in nodes:
        name = node["metadata"]["name"]
        reason = None
        if node.get("spec", {}).get("unschedulable") and not any(
            tolerates(t, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
            for t in pod.get("spec", {}).get("tolerations") or []
        ):
            reason = "node(s) were unschedulable"
        elif not affinity_matches(pod, node):
            reason = "node(s) didn't match Pod's node affinity/selector"
        elif (taint := untolerated_taint(pod, node.get("spec", {}).get("taints") or [])) is not None:
            value = taint.get("value") or ""
            reason = f"node(s) had untolerated taint {{{taint['key']}: {value}}}"
        else:
            left = free(node, bound.get(name, []))
            short = sorted(k for k, v in want.items() if v > left.get(k, 0.0) + 1e-9)
            if left["pods"] < 1:
                short = ["pods", *short]
            if short:
                reason = ", ".join(f"Insufficient {k}" for k in short)
                no_victims += 1
        if reason is None:
            on_node = bound.get(name, [])
            fits.append((anti_affinity_penalty(pod, on_node), -free(node, on_node).get("cpu", 0.0), name))
        else:
            for r in reason.split(", "):
                reasons[r] = reasons.get(r, 0) + 1
    if fits:
        return sorted(fits)[0][-1], ""
    n = len(nodes)
    detail = ", ".join(sorted(f"{count} {r}" for r, count in reasons.items()))
    preemption = sorted(
        [f"{no_victims} No preemption victims found for incoming pod"] * bool(no_victims)
        + [f"{n - no_victims} Preemption is not helpful for scheduling"] * bool(n - no_victims)
    )
    return None, (
        f"0/{n} nodes are available: {detail}. preemption: 0/{n} nodes are available: "
        f"{', '.join(preemption)}."
    )
