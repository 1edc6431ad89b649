"""Heal's check and its reboots, without Kubespray: which nodes are broken (heal_plan's pure
planner over what Nova and Kubernetes say), heal's memory of them, and soft and hard reboots
waited on until the Node is Ready. `invoke heal` (heal.py) adds the replacement, which needs
Kubespray; the autoscaler's round (autoscale.py) runs the check and the reboots when heal is
enabled — on the operator's machine and in the agent on the cluster alike — and reports a
replacement that is due.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from .cloudapi import CloudAPI
from .cloudops import act
from .cluster_state import ClusterState, HealAttempt, HealMemory
from .errors import StackSprayError
from .heal_plan import REMEDIES, HealStep, NodeHealth, plan_heal
from .kube import SCALE_ANNOTATION, Kube, KubeError
from .names import META_GROUP
from .observe import owned_servers
from .spec import CONTROL_PLANE, HealSpec
from .state import ClusterDir
from .timestamps import epoch

REBOOT = {"soft-reboot": "SOFT", "hard-reboot": "HARD"}


def observe(api: CloudAPI, kube: Kube, cluster: str, known: list[str]) -> tuple[list[NodeHealth], dict]:
    """Every node the cluster has (its servers, and those `known` from the state whose server is
    gone), with its Node; and the servers by name."""
    servers = {s.name: s for s in owned_servers(api, cluster)}
    nodes = {n["metadata"]["name"]: n for n in kube.list_json("nodes")}
    out = []
    for name in sorted(set(servers) | set(known), key=_natural):
        s = servers.get(name)
        group = ((s.metadata or {}).get(META_GROUP) if s else None) or _group_of(cluster, name)
        n = nodes.get(name)
        ready = since = None
        if n is not None:
            cond = next(
                (c for c in (n.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {}
            )
            ready = cond.get("status") == "True"
            since = epoch(cond.get("lastTransitionTime"))
        out.append(
            NodeHealth(
                name=name,
                group=group,
                control_plane=group == CONTROL_PLANE,
                server=s.status if s else None,
                task_state=getattr(s, "task_state", None) if s else None,
                ready=ready,
                since=since,
                scaling=((n or {}).get("metadata", {}).get("annotations") or {}).get(SCALE_ANNOTATION),
            )
        )
    return out, servers


def _natural(name: str) -> tuple:
    head, _, tail = name.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


def _group_of(cluster: str, server: str) -> str:
    head = server[len(cluster) + 1 :]
    return head.rpartition("-")[0] or head


def remember(memory: dict[str, HealMemory], steps: list[HealStep], now: float) -> None:
    """Start the clock of newly unhealthy nodes; forget nodes that are healthy again."""
    for step in steps:
        if step.action == "healthy":
            memory.pop(step.node, None)
        elif step.action in ("wait", "hold", "backoff", "report", *REMEDIES):
            mem = memory.setdefault(step.node, HealMemory())
            if mem.unhealthy_since is None:
                mem.unhealthy_since = now


class Rebooter:
    """Reboots a node and waits for it, through the cluster's cloud and API."""

    def __init__(self, name: str, cdir: ClusterDir, say, clock, api: CloudAPI, kube: Kube) -> None:
        self.name, self.cdir, self.say, self.clock, self.api, self.kube = name, cdir, say, clock, api, kube

    def wait_ready(self, node: str, timeout: float) -> bool:
        """The node's server is ACTIVE and its Node Ready (heal only remedies a node that was not,
        so Ready again is the remedy's effect)."""
        deadline, delay = time.monotonic() + timeout, 0.2
        while True:
            try:
                n = next((x for x in self.kube.list_json("nodes") if x["metadata"]["name"] == node), None)
            except KubeError:
                n = None
            if n is not None:
                cond = next(
                    (c for c in (n.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"),
                    {},
                )
                server = next((x for x in owned_servers(self.api, self.name) if x.name == node), None)
                if cond.get("status") == "True" and server is not None and server.status == "ACTIVE":
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    def reboot(self, step: HealStep, server, timeout: float) -> dict:
        started, at = time.monotonic(), self.clock()
        kind = REBOOT[step.action]
        self.say(f"{step.node}: {step.reason}: {step.action}")
        try:
            act(lambda: self.api.server_action(server.id, kind), f"{kind.lower()} reboot of {step.node}")
            ok = self.wait_ready(step.node, timeout)
            detail = "Ready again" if ok else f"not Ready {timeout:.0f}s after the reboot"
        except StackSprayError as exc:
            ok, detail = False, str(exc)
        self.say(f"{step.node}: {step.action}: {detail}")
        return {
            "node": step.node,
            "remedy": step.action,
            "outcome": "ok" if ok else "failed",
            "seconds": round(time.monotonic() - started, 1),
            "detail": detail,
            "at": at,
        }


def blocked_by(state: ClusterState) -> str | None:
    """Why no node may be remedied now: a pending rotation, an unfinished upgrade."""
    if state.rotation is not None:
        return "a credential rotation is pending: run `invoke credentials.refresh` first"
    if state.upgrade is not None:
        return f"an upgrade to {state.upgrade.to} is unfinished: run `invoke upgrade` again first"
    return None


def check(
    api: CloudAPI, kube: Kube, cluster: str, state: ClusterState, settings: dict[str, HealSpec], now: float
) -> tuple[list[HealStep], dict, dict[str, str]]:
    """Observe and plan: (the steps, the servers by name, each node's group)."""
    nodes, servers = observe(api, kube, cluster, list(state.heal))
    steps = plan_heal(nodes, settings, state.heal, now, blocked_by(state))
    return steps, servers, {n.name: n.group for n in nodes}


def reboot_all(
    rebooter: Rebooter,
    cdir: ClusterDir,
    reboots: list[HealStep],
    servers: dict,
    groups: dict[str, str],
    settings: dict[str, HealSpec],
    now: float,
) -> list[dict]:
    """The reboots of this round, at once, each recorded in heal's memory before and after."""
    if not reboots:
        return []
    state = cdir.load()
    for s in reboots:
        mem = state.heal.setdefault(s.node, HealMemory(unhealthy_since=now))
        mem.attempts.append(HealAttempt(s.action, now))
    cdir.save(state)
    timeouts = [(settings.get(groups[s.node]) or HealSpec()).reboot_timeout for s in reboots]
    with ThreadPoolExecutor(max_workers=len(reboots)) as pool:
        done = list(pool.map(rebooter.reboot, reboots, [servers[s.node] for s in reboots], timeouts))
    state = cdir.load()
    for d in done:
        mem = state.heal.get(d["node"])
        if mem is not None and mem.attempts:
            mem.attempts[-1].outcome = d["outcome"]
        if d["outcome"] == "ok":
            state.heal.pop(d["node"], None)
    cdir.save(state)
    return [{k: v for k, v in d.items() if k != "at"} for d in done]
