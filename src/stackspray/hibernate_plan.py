"""What `hibernate` and `wake` would do, as pure functions: the nodes as observed (Nova status)
and what the cluster's state remembers → one step per thing to do, no-ops explicit, in the
order they are carried out. Tested table-driven from fixture files.

hibernate: record which workers are ACTIVE → stop the autoscaler's agent → an etcd snapshot
(when backups are set up) → shelve the workers (cordoned first) → stop etcd → shelve the control
plane. The control plane goes last because it holds etcd and the API every earlier step uses.

wake: unshelve the control plane → etcd healthy and the API ready → certificates → the
application credential → the workers (as before, N, or none) → start the agent again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .cluster_state import ClusterState, Hibernation
from .errors import StackSprayError
from .names import natural_key

SHELVED = ("SHELVED", "SHELVED_OFFLOADED")
SHELVABLE = ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED")  # Nova's shelve accepts these vm_states


class HibernateError(StackSprayError):
    """hibernate or wake cannot be done as asked (nothing was changed)."""


@dataclass(frozen=True)
class NodeView:
    """One server of the cluster as hibernate/wake see it."""

    name: str
    status: str  # Nova status
    control_plane: bool = False  # control plane (and etcd): last to sleep, first to wake
    fault: str = ""  # Nova's fault message when the server is in ERROR


@dataclass
class Step:
    """One thing to do; `node` empty for the cluster-wide steps."""

    action: str
    reason: str
    node: str = ""
    outcome: str = "planned"  # planned | done | noop | failed
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def hibernated_refusal(state: ClusterState, command: str) -> str | None:
    """Why `command` cannot run now (the cluster is hibernated, or going to sleep or waking), or None."""
    h = state.hibernation
    if h is None:
        return None
    if h.phase == "hibernated":
        return (
            f"cluster {state.cluster!r} is hibernated (since {h.since}): every server is shelved, so "
            f"{command} has nothing running to act on. Run `invoke wake --cluster {state.cluster}` first"
        )
    return (
        f"cluster {state.cluster!r} is {h.phase} (started {h.since}): {command} waits until that is done. "
        f"If that command was interrupted, run `invoke {'wake' if h.phase == 'waking' else 'hibernate'} "
        f"--cluster {state.cluster}` again to finish it"
    )


def refuse_if_hibernated(state: ClusterState, command: str) -> None:
    """Raise HibernateError when the cluster is hibernated, hibernating or waking."""
    why = hibernated_refusal(state, command)
    if why:
        raise HibernateError(why)


def _ordered(nodes: list[NodeView]) -> tuple[list[NodeView], list[NodeView]]:
    cp = sorted((n for n in nodes if n.control_plane), key=lambda n: natural_key(n.name))
    workers = sorted((n for n in nodes if not n.control_plane), key=lambda n: natural_key(n.name))
    return cp, workers


def plan_hibernate(
    nodes: list[NodeView],
    record: Hibernation | None,
    *,
    backups: bool,
    agent: bool,
    rotation_pending: bool = False,
) -> list[Step]:
    """The steps of `hibernate` (see the module's docstring). Raises HibernateError for what must
    be fixed first: a pending credential rotation, a server in ERROR, a cluster with no servers."""
    if not nodes:
        raise HibernateError("the cluster has no servers in the cloud: nothing to hibernate")
    if rotation_pending:
        raise HibernateError(
            "a credential rotation is pending: finish it first with `invoke credentials.refresh` "
            "(a rotation needs the cluster awake), then hibernate"
        )
    if record is not None and record.phase == "waking":
        raise HibernateError(
            "a wake is in progress (or was interrupted): finish it with `invoke wake` first, then hibernate"
        )
    broken = [n for n in nodes if n.status not in SHELVABLE + SHELVED]
    if broken:
        raise HibernateError(
            "cannot shelve "
            + ", ".join(f"{n.name} ({n.status}{': ' + n.fault if n.fault else ''})" for n in broken)
            + ": Nova shelves only ACTIVE, SHUTOFF, PAUSED or SUSPENDED servers; repair or heal the node "
            "(`invoke heal`, or `openstack server reboot --hard`), then hibernate"
        )
    cp, workers = _ordered(nodes)
    cp_up = any(n.status not in SHELVED for n in cp)
    steps: list[Step] = []
    if record is None:
        active = [n.name for n in workers if n.status == "ACTIVE"]
        steps.append(
            Step(
                "record",
                "workers ACTIVE now, woken again by `wake --as-before`: " + (", ".join(active) or "none"),
            )
        )
    else:
        steps.append(Step("noop", "resuming an interrupted hibernate (its record is kept)"))
    if agent and cp_up:
        steps.append(
            Step("stop-agent", "the autoscaler's agent must not wake workers while the cluster sleeps")
        )
    elif agent:
        steps.append(Step("noop", "the agent's node is already shelved"))
    if backups and cp_up and (record is None or record.snapshot is None):
        steps.append(Step("snapshot", "backups are set up: an etcd snapshot before anything stops"))
    elif backups and record is not None and record.snapshot:
        steps.append(Step("noop", f"snapshot {record.snapshot} already taken"))
    elif not backups:
        steps.append(Step("noop", "no etcd backups set up (invoke backup), so no snapshot is taken"))
    for n in workers:
        if n.status in SHELVED:
            steps.append(Step("noop", f"already {n.status}", n.name))
        else:
            steps.append(Step("shelve", f"{n.status} → SHELVED_OFFLOADED (cordoned first)", n.name))
    if cp_up:
        steps.append(Step("stop-etcd", "etcd stopped cleanly on its nodes before their servers are shelved"))
    for n in cp:
        if n.status in SHELVED:
            steps.append(Step("noop", f"already {n.status}", n.name))
        else:
            steps.append(
                Step("shelve", f"control plane: {n.status} → SHELVED_OFFLOADED, after the workers", n.name)
            )
    return steps


def choose_workers(workers: list[NodeView], record: Hibernation | None, want: int | None) -> list[str]:
    """The workers wake brings back: `want` None → those ACTIVE before hibernation; a number →
    that many ACTIVE in all, those ACTIVE before first, then the lowest-numbered."""
    before = set(record.active_workers) if record else set()
    if want is None:
        return [n.name for n in workers if n.name in before]
    if want > len(workers):
        raise HibernateError(
            f"--workers {want}: the cluster has {len(workers)} worker(s); to add nodes raise the group's "
            "count in the spec and run create-cluster after the wake"
        )
    ranked = sorted(workers, key=lambda n: (n.status in SHELVED, n.name not in before, natural_key(n.name)))
    return [n.name for n in ranked[:want]]


def plan_wake(
    nodes: list[NodeView],
    record: Hibernation | None,
    *,
    want: int | None = None,
    agent: bool = False,
) -> list[Step]:
    """The steps of `wake`: `want` None wakes the workers that were ACTIVE before hibernation,
    a number makes that many ACTIVE. A cluster that is not hibernated gets only no-ops."""
    if not nodes:
        raise HibernateError("the cluster has no servers in the cloud: nothing to wake")
    if want is not None and want < 0:
        raise HibernateError(f"--workers: the number of ACTIVE workers must be 0 or more, got {want}")
    cp, workers = _ordered(nodes)
    if record is None and not any(n.status in SHELVED for n in cp):
        return [Step("noop", "the cluster is not hibernated: its control plane is up", n.name) for n in cp]
    broken = [n for n in cp if n.status not in SHELVED + ("ACTIVE",)]
    if broken:
        raise HibernateError(
            "the control plane cannot be woken: "
            + ", ".join(f"{n.name} is {n.status}{' (' + n.fault + ')' if n.fault else ''}" for n in broken)
            + "; repair it (openstack server show / reboot --hard) and re-run wake"
        )
    steps = []
    for n in cp:
        if n.status in SHELVED:
            steps.append(Step("unshelve", f"control plane: {n.status} → ACTIVE, first", n.name))
        else:
            steps.append(Step("noop", "control plane already ACTIVE", n.name))
    steps.append(Step("api", "etcd healthy on its nodes, the API server's /readyz"))
    steps.append(Step("certificates", "checked; renewed when expired or under 30 days"))
    steps.append(Step("credential", "checked; rotated when expired or near its threshold"))
    chosen = set(choose_workers(workers, record, want))
    for n in workers:
        if n.name in chosen:
            what = (
                f"{n.status} → ACTIVE, Ready, uncordoned"
                if n.status in SHELVED
                else "ACTIVE: uncordoned if we cordoned it"
            )
            steps.append(Step("unshelve", what, n.name))
        elif n.status in SHELVED:
            steps.append(Step("noop", "stays shelved (the autoscaler or `invoke scale` can wake it)", n.name))
        else:
            steps.append(Step("noop", f"{n.status}: left as it is", n.name))
    if agent:
        steps.append(Step("start-agent", "the autoscaler's agent runs again"))
    steps.append(Step("finish", "the hibernation record is cleared: every command works again"))
    return steps
