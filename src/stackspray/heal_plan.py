"""Which nodes `invoke heal` calls broken and what it does about each: a pure function of what
was observed (servers, Nodes), the groups' settings and heal's memory, tested table-driven from
fixture files (the planner's unit tests).

Unhealthy (Cluster API's MachineHealthCheck conditions, with what stackspray knows on top): the
server in ERROR, the server SHUTOFF (stackspray never stops servers, it shelves them), or ACTIVE
while its Node is not Ready (or absent) — for longer than the group's `unhealthy_for`. Never a
shelved server, one Nova is busy with (a task state: shelving, unshelving, rebooting, …) or one
stackspray's scale holds (its annotation on the Node).

Remedies in order, each after the previous one failed: soft reboot (Nova allows it only for an
ACTIVE server), hard reboot, replace. A group with more unhealthy nodes than `max_unhealthy`
allows gets none (MachineHealthCheck's maxUnhealthy: more likely the cloud than the nodes); one
replacement at a time per cluster, and none while a worker is shelved (joining the new server
needs Kubespray to reach every node); a node whose replacement failed waits out a backoff. A
control-plane node is reported with its recovery procedure, never remedied automatically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .cluster_state import HealAttempt as Attempt
from .cluster_state import HealMemory as NodeMemory
from .spec import HealSpec

__all__ = ["Attempt", "HealStep", "NodeHealth", "NodeMemory", "backoff_after", "plan_heal"]

REMEDIES = ("soft-reboot", "hard-reboot", "replace")
# Nova's statuses of a server on its way somewhere: not heal's to judge until it gets there.
IN_PROGRESS = {"BUILD", "REBOOT", "HARD_REBOOT", "MIGRATING", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE"}
BACKOFF = (300.0, 600.0, 1200.0, 1800.0)  # after the 1st, 2nd, 3rd, later failed replacement


@dataclass(frozen=True)
class NodeHealth:
    """One node as observed: its server in Nova and its Node in Kubernetes."""

    name: str
    group: str
    control_plane: bool = False
    server: str | None = None  # Nova status; None: no server
    task_state: str | None = None  # Nova's OS-EXT-STS:task_state
    ready: bool | None = None  # the Node's Ready condition is True; None: no Node
    since: float | None = None  # when the Node's Ready condition last changed (epoch seconds)
    scaling: str | None = None  # stackspray's scale annotation on the Node


@dataclass(frozen=True)
class HealStep:
    node: str
    action: str  # healthy | skip | wait | hold | report | backoff | soft-reboot | hard-reboot | replace
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _problem(n: NodeHealth) -> str | None:
    """Why the node is unhealthy, or None."""
    if n.server == "ERROR":
        return "server ERROR"
    if n.server == "SHUTOFF":
        return "server SHUTOFF (stopped outside stackspray)"
    if n.server == "ACTIVE" and n.ready is not True:
        return "Node NotReady" if n.ready is False else "no Node in Kubernetes"
    return None


def _next_remedy(n: NodeHealth, mem: NodeMemory) -> str:
    done = [a.remedy for a in mem.attempts]
    if mem.replacing or "replace" in done:
        return "replace"
    if "hard-reboot" in done:
        return "replace"
    if "soft-reboot" in done or n.server != "ACTIVE":
        return "hard-reboot"
    return "soft-reboot"


def plan_heal(
    nodes: list[NodeHealth],
    settings: dict[str, HealSpec],
    memory: dict[str, NodeMemory],
    now: float,
    blocked: str | None = None,
) -> list[HealStep]:
    """One step per node, in the nodes' order: what heal does about it now, and why."""
    steps: dict[str, HealStep] = {}
    unhealthy: dict[str, list[str]] = {}
    size: dict[str, int] = {}
    for n in nodes:
        size[n.group] = size.get(n.group, 0) + 1
        mem = memory.get(n.name) or NodeMemory()
        if n.server is None:
            if mem.replacing:
                unhealthy.setdefault(n.group, []).append(n.name)
                steps[n.name] = HealStep(n.name, "replace", "its replacement was interrupted: finishing it")
            else:
                steps[n.name] = HealStep(n.name, "skip", "no server: create-cluster makes it")
            continue
        if n.server.startswith("SHELVED"):
            steps[n.name] = HealStep(n.name, "skip", f"{n.server}: shelved, not broken")
            continue
        if n.task_state:
            steps[n.name] = HealStep(n.name, "skip", f"Nova is busy with it ({n.task_state})")
            continue
        if n.scaling:
            steps[n.name] = HealStep(n.name, "skip", f"stackspray's scale holds it ({n.scaling})")
            continue
        if n.server in IN_PROGRESS:
            steps[n.name] = HealStep(n.name, "skip", f"server {n.server}: in progress")
            continue
        problem = _problem(n)
        if problem is None:
            if n.server == "ACTIVE":
                steps[n.name] = HealStep(n.name, "healthy", "ACTIVE and Ready")
            else:
                steps[n.name] = HealStep(n.name, "skip", f"server {n.server}: not judged")
            continue
        unhealthy.setdefault(n.group, []).append(n.name)
        cfg = settings.get(n.group) or HealSpec()
        since = mem.unhealthy_since
        if n.server == "ACTIVE" and n.ready is False and n.since is not None:
            since = n.since if since is None else min(since, n.since)
        since = now if since is None else since
        if now - since < cfg.unhealthy_for:
            steps[n.name] = HealStep(
                n.name,
                "wait",
                f"{problem} for {now - since:.0f}s of the {cfg.unhealthy_for:.0f}s unhealthy_for",
            )
            continue
        if n.control_plane:
            steps[n.name] = HealStep(
                n.name,
                "report",
                f"{problem}: a control-plane node is never remedied automatically; restore it from a "
                "backup (invoke restore, docs/backups.md) or follow Kubespray's recover-control-plane.md",
            )
            continue
        steps[n.name] = HealStep(n.name, _next_remedy(n, mem), problem)
    for group, bad in unhealthy.items():
        cfg = settings.get(group) or HealSpec()
        cap = cfg.max_unhealthy_of(size[group])
        if len(bad) > cap:
            why = (
                f"{len(bad)} of {size[group]} nodes of group {group} are unhealthy, more than max_unhealthy "
                f"{cfg.max_unhealthy} ({cap}): more likely the cloud than the nodes; nothing is remedied"
            )
            for name in bad:
                if steps[name].action in REMEDIES:
                    steps[name] = HealStep(name, "hold", why)
    replacing = False
    shelved = [n.name for n in nodes if n.server and n.server.startswith("SHELVED")]
    for n in nodes:
        step = steps[n.name]
        if step.action not in REMEDIES:
            continue
        if step.action == "replace" and shelved and not (memory.get(n.name) or NodeMemory()).server_deleted:
            # Joining the new server runs Kubespray's scale.yml, which needs every node's facts
            # (docs/operations/nodes.md: facts.yml first): a shelved node makes it fail. Nothing
            # is taken out that could not be put back.
            steps[n.name] = HealStep(
                n.name,
                "hold",
                f"{step.reason}; replacing it needs Kubespray to reach every node and "
                f"{', '.join(shelved)} {'is' if len(shelved) == 1 else 'are'} shelved: "
                "`invoke scale --unshelve` first, then heal again",
            )
            continue
        if blocked:
            steps[n.name] = HealStep(n.name, "hold", blocked)
            continue
        mem = memory.get(n.name) or NodeMemory()
        if mem.backoff_until is not None and now < mem.backoff_until:
            steps[n.name] = HealStep(
                n.name,
                "backoff",
                f"{step.reason}; its last replacement failed: next try in {mem.backoff_until - now:.0f}s",
            )
        elif step.action == "replace":
            if replacing:
                steps[n.name] = HealStep(n.name, "wait", f"{step.reason}; one replacement at a time")
            replacing = True
    return [steps[n.name] for n in nodes]


def backoff_after(failures: int) -> float:
    """Seconds to wait after the `failures`-th failed replacement (5, 10, 20, then 30 minutes)."""
    return BACKOFF[min(max(failures, 1), len(BACKOFF)) - 1]
