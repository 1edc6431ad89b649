"""Soft scaling: shelve workers the cluster does not need (0 SU on Jetstream2) and bring them back.

`plan_scale` is pure: the workers as observed (Nova status, Kubernetes cordon, pods) and the
request → one step per node, no-ops explicit. `scale_cluster` observes, plans, prints, stops on
dry-run, then runs every node's steps concurrently (bounded); a node that fails or is blocked
does not stop the others, and the report gives each node's outcome.

Shelve one node: cordon (annotated as ours) → drain through the Eviction API → shelve → wait
SHELVED_OFFLOADED. The node stays cordoned while shelved. A drain that a PodDisruptionBudget
blocks past the timeout uncordons the node and leaves it ACTIVE.
Unshelve one node: unshelve → wait ACTIVE → wait for the Node to be Ready → uncordon (only a
cordon stackspray made; an operator's own cordon stays).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import cost, lease
from . import schedule as sched
from .cloudapi import CloudAPI, connect_api
from .cloudops import (
    PARALLEL,
    SERVER_TIMEOUT,
    concurrently,
    flavors_by_name,
    read,
    retry_or_raise,
    typed,
    wait_until,
)
from .cluster_state import ScaleRun
from .errors import Conflict, StackSprayError
from .hibernate_plan import refuse_if_hibernated
from .kube import Kube
from .names import highest_first, natural_key
from .observe import META_GROUP, flavor_name, owned_servers
from .progress import Progress
from .spec import CONTROL_PLANE
from .state import ClusterDir, Run
from .upgrade_plan import within_skew

SHELVED = cost.SHELVED


class ScaleError(StackSprayError):
    """The scale request cannot be carried out as asked (nothing was changed)."""


@dataclass(frozen=True)
class NodeView:
    """What the planner knows of one node."""

    name: str
    status: str  # Nova status
    su_active: float  # SU/hour when ACTIVE
    control_plane: bool = False
    workloads: int = 0  # pods a drain would move, outside kube-system
    system: int = 0  # and in kube-system (CoreDNS, calico-kube-controllers, …: moved more lightly)
    ours: bool = False  # cordoned by stackspray (interrupted or shelved by us)


@dataclass(frozen=True)
class Request:
    """Exactly one of shelve / unshelve / workers. shelve/unshelve: a count, or "all"."""

    shelve: int | str | None = None
    unshelve: int | str | None = None
    workers: int | None = None
    nodes: tuple[str, ...] = ()


@dataclass
class Step:
    node: str
    action: str  # shelve | unshelve | uncordon | noop
    reason: str
    outcome: str = "planned"  # planned | done | noop | blocked | failed
    detail: str = ""
    seconds: float = 0.0


def _shelve_order(n: NodeView) -> tuple:
    # Finish what an interrupted run started, then the nodes with the fewest of the user's pods
    # to move (kube-system's add-ons, which Kubespray places on any node and which come back
    # elsewhere in seconds, only break ties); among equals the highest-numbered first, so the
    # lowest-numbered workers stay up.
    return (not n.ours, n.workloads, n.system, highest_first(n.name))


def _parse_count(value, flag: str) -> int | str | None:
    if value is None or value is False:
        return None
    if value is True or value == "all":
        return "all"
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ScaleError(f"{flag}: expected a number of workers or nothing (= all), got {value!r}") from None
    if n < 1:
        raise ScaleError(f"{flag}: the number of workers must be at least 1, got {n}")
    return n


def make_request(
    *, shelve=None, unshelve=None, workers: int | None = None, nodes: str | list[str] | None = None
) -> Request:
    """Validate the flags of `invoke scale` into a Request (ScaleError says what to fix)."""
    sh, un = _parse_count(shelve, "--shelve"), _parse_count(unshelve, "--unshelve")
    names = tuple(
        n.strip() for n in (nodes.split(",") if isinstance(nodes, str) else nodes or []) if n.strip()
    )
    given = [f for f, v in (("--shelve", sh), ("--unshelve", un), ("--workers", workers)) if v is not None]
    if len(given) != 1:
        raise ScaleError(
            "say what to do with exactly one of --shelve [N], --unshelve [N] or --workers N"
            + (f" (got {' and '.join(given)})" if given else "")
        )
    if workers is not None and workers < 0:
        raise ScaleError(f"--workers: the number of ACTIVE workers must be 0 or more, got {workers}")
    if names and workers is not None:
        raise ScaleError("--nodes goes with --shelve or --unshelve, not with --workers")
    if names and isinstance(sh or un, int):
        raise ScaleError("give either a number of workers or --nodes, not both")
    return Request(shelve=sh, unshelve=un, workers=workers, nodes=names)


def plan_scale(nodes: list[NodeView], req: Request) -> list[Step]:
    """One step per node (control plane included, as explicit no-ops). Raises ScaleError."""
    by_name = {n.name: n for n in nodes}
    workers = [n for n in nodes if not n.control_plane]
    active = [n for n in workers if n.status == "ACTIVE"]
    shelved = sorted((n for n in workers if n.status in SHELVED), key=lambda n: natural_key(n.name))

    for name in req.nodes:
        if name not in by_name:
            known = ", ".join(sorted((n.name for n in workers), key=natural_key)) or "none"
            raise ScaleError(f"--nodes: {name!r} is not a node of this cluster (workers: {known})")
        if by_name[name].control_plane:
            raise ScaleError(
                f"--nodes: {name} is a control-plane node; soft scaling never shelves the control plane "
                "(it runs etcd and the Kubernetes API). Name worker nodes only"
            )

    to_shelve: list[NodeView] = []
    to_unshelve: list[NodeView] = []
    if req.nodes:
        chosen = [by_name[n] for n in req.nodes]
        (to_shelve if req.shelve else to_unshelve).extend(chosen)
    elif req.shelve == "all":
        to_shelve = workers
    elif req.unshelve == "all":
        to_unshelve = workers
    elif isinstance(req.shelve, int):
        if req.shelve > len(active):
            raise ScaleError(
                f"--shelve {req.shelve}: only {len(active)} worker(s) are ACTIVE; "
                f"use --workers N to say how many should stay ACTIVE"
            )
        to_shelve = sorted(active, key=_shelve_order)[: req.shelve]
    elif isinstance(req.unshelve, int):
        if req.unshelve > len(shelved):
            raise ScaleError(f"--unshelve {req.unshelve}: only {len(shelved)} worker(s) are shelved")
        to_unshelve = shelved[: req.unshelve]
    elif req.workers is not None:
        if req.workers > len(workers):
            raise ScaleError(
                f"--workers {req.workers}: the cluster has {len(workers)} worker(s); to add nodes raise the "
                "workers count in the spec and run create-cluster"
            )
        if len(active) > req.workers:
            to_shelve = sorted(active, key=_shelve_order)[: len(active) - req.workers]
        elif len(active) < req.workers:
            to_unshelve = shelved[: req.workers - len(active)]
        # ACTIVE workers we still hold cordoned (an interrupted run) and that stay: release them.
        to_unshelve += [n for n in active if n.ours and n not in to_shelve]

    steps = []
    for n in sorted(nodes, key=lambda n: (not n.control_plane, natural_key(n.name))):
        if n.control_plane:
            steps.append(Step(n.name, "noop", "control plane: never shelved"))
        elif n in to_shelve:
            if n.status in SHELVED:
                steps.append(Step(n.name, "noop", f"already {n.status}"))
            elif n.status == "ACTIVE":
                moves = f"{n.workloads} pod(s) to move" if n.workloads else "no pods to move"
                if n.system:
                    moves += f" (and {n.system} of kube-system)"
                steps.append(
                    Step(n.name, "shelve", ("finishing an interrupted shelve; " if n.ours else "") + moves)
                )
            else:
                steps.append(
                    Step(n.name, "noop", f"status {n.status}: left alone (neither ACTIVE nor shelved)")
                )
        elif n in to_unshelve:
            if n.status in SHELVED:
                steps.append(Step(n.name, "unshelve", f"{n.status} → ACTIVE"))
            elif n.status == "ACTIVE" and n.ours:
                steps.append(Step(n.name, "uncordon", "ACTIVE but still cordoned by stackspray: finishing"))
            elif n.status == "ACTIVE":
                steps.append(Step(n.name, "noop", "already ACTIVE"))
            else:
                steps.append(
                    Step(n.name, "noop", f"status {n.status}: left alone (neither ACTIVE nor shelved)")
                )
        else:
            steps.append(Step(n.name, "noop", f"{n.status}, not selected"))
    return steps


def su_per_hour(nodes: list[NodeView], steps: list[Step] | None = None) -> float:
    """SU/hour now, or after the steps (shelved nodes cost 0 %, ACTIVE 100 %)."""
    after = {s.node: s.action for s in steps or []}
    total = 0.0
    for n in nodes:
        status = {"shelve": "SHELVED_OFFLOADED", "unshelve": "ACTIVE"}.get(after.get(n.name, ""), n.status)
        total += n.su_active * cost.STATE_FACTOR.get(status, 1.0)
    return total


# -- carrying it out --------------------------------------------------------------------------


@dataclass
class ScaleResult:
    cluster: str
    steps: list[Step]
    su_per_hour_before: float
    su_per_hour_after: float
    dry_run: bool
    log: str = ""
    problems: list[str] = field(default_factory=list)
    su_rates: dict = field(default_factory=dict)  # family -> {su_per_vcpu_hour, source}

    @property
    def ok(self) -> bool:
        return all(s.outcome in ("planned", "done", "noop") for s in self.steps)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def _servers(api: CloudAPI, name: str) -> dict:
    return {s.name: s for s in owned_servers(api, name)}


def observe_nodes(
    api: CloudAPI,
    kube: Kube | None,
    name: str,
    flavors: dict | None = None,
    rates: cost.Rates | None = None,
) -> tuple[list[NodeView], dict, set[str], dict]:
    """(node views, servers by name, names Kubernetes knows, flavors by name); the servers,
    flavors (unless given) and Nodes are read at once. SU at `rates` (default: the built-in table)."""
    calls = {"servers": lambda: _servers(api, name)}
    if flavors is None:
        calls["flavors"] = lambda: flavors_by_name(api)
    if kube:
        calls["nodes"] = kube.nodes
        calls["workloads"] = kube.workload_counts
    got = concurrently(calls)
    servers = got["servers"]
    if not servers:
        raise ScaleError(f"cluster {name!r} has no servers in the cloud: nothing to scale")
    flavors = flavors if flavors is not None else got["flavors"]
    knodes = got.get("nodes", {})
    active = {s.name for s in servers.values() if s.status == "ACTIVE" and s.name in knodes}
    counts = {n: c for n, c in got.get("workloads", {}).items() if n in active}
    views = []
    for sname, s in servers.items():
        fl = flavor_name(s)
        vcpus = flavors[fl].vcpus if fl in flavors else 0
        k = knodes.get(sname)
        views.append(
            NodeView(
                name=sname,
                status=s.status,
                su_active=cost.su_if_active(fl, vcpus, rates),
                control_plane=(s.metadata or {}).get(META_GROUP) == CONTROL_PLANE,
                workloads=counts.get(sname, (0, 0))[0],
                system=counts.get(sname, (0, 0))[1],
                ours=bool(k and k.scaling),
            )
        )
    return views, servers, set(knodes), flavors


def server_action(
    api: CloudAPI, server_id: str, action: str, done: tuple[str, ...], what: str, observed=None
) -> None:
    """shelve/unshelve once, idempotently: re-read first, and after a failed call look again —
    the call may have been carried out although its answer was lost (Nova then answers 409).
    `observed`: the server as this command listed it a moment ago (under the cluster's lock),
    which stands for the first read."""
    for attempt in range(6):
        if attempt == 0 and observed is not None:
            s = observed
        else:
            s = read(lambda: api.get("server", server_id), f"{what}: read")
        if s.status in done or s.task_state:  # done, or Nova is already on it
            return
        try:
            api.server_action(server_id, action)
            return
        except Exception as exc:  # noqa: BLE001 (typed below)
            if isinstance(typed(exc, what), Conflict):
                continue  # state changed under us: look again
            retry_or_raise(exc, attempt, what, f"{action} failed, will look again")
    raise StackSprayError(f"{what}: {action} still not accepted after 6 attempts")


class ServerWatch:
    """One shared view of the cluster's servers for every node being waited on: whoever needs a
    fresher view than `max_age` lists the servers once (under a lock) and all waiters read it, so
    waiting on 8 nodes costs one API call per round instead of 8."""

    def __init__(self, api: CloudAPI, cluster: str) -> None:
        self.api, self.cluster = api, cluster
        self.lock = threading.Lock()
        self.at = 0.0
        self.servers: dict = {}

    def get(self, server_id: str, max_age: float = 0.15):
        with self.lock:
            if time.monotonic() - self.at > max_age:
                self.servers = {s.id: s for s in _servers(self.api, self.cluster).values()}
                self.at = time.monotonic()
            return self.servers.get(server_id)


GAVE_UP_AFTER = 10.0  # seconds at rest in the old status before an action counts as abandoned


def wait_status(watch: ServerWatch, server_id: str, want: tuple[str, ...], what: str) -> None:
    """Wait until the server is in one of `want` with no task. An unshelve Nova gives up on
    leaves the server SHELVED_OFFLOADED with no task (the conductor's NoValidHost path in
    nova/conductor/manager.py unshelve_instance; a failed spawn only records a fault): seen
    at rest there for GAVE_UP_AFTER seconds, it fails at once with the fault, instead of after
    SERVER_TIMEOUT."""
    started = time.monotonic()

    def check():
        s = watch.get(server_id)
        if s is None:
            raise StackSprayError(f"{what}: the server no longer exists")
        fault = (getattr(s, "fault", None) or {}).get("message")
        if s.status == "ERROR":
            raise StackSprayError(f"{what}: the server went to ERROR ({fault or 'no fault recorded'})")
        if (
            "ACTIVE" in want
            and s.status in SHELVED
            and not s.task_state
            and time.monotonic() - started > GAVE_UP_AFTER
        ):
            raise StackSprayError(
                f"{what}: Nova did not unshelve it: it is {s.status} again with no task "
                f"({fault or 'no fault shown: no valid host for it, or its boot failed; '}"
                f"{'' if fault else '`openstack server event list` says which'})"
            )
        return True if s.status in want and not s.task_state else None

    wait_until(check, f"{what}: waiting for {'/'.join(want)}", timeout=SERVER_TIMEOUT, cap=2.0)


def _shelve_one(
    api,
    watch: ServerWatch,
    kube: Kube,
    step: Step,
    server,
    in_k8s: bool,
    say,
    drain_timeout: float,
    force: bool,
):
    name = step.node
    if in_k8s:
        say(f"{name}: cordon and drain")
        kube.cordon(name)
        try:
            drained = kube.drain(name, timeout=drain_timeout, force=force)
        except Exception:
            # The VM will not be shelved: put the node back in service (best effort) before reporting.
            with contextlib.suppress(Exception):
                kube.uncordon(name)
            raise
        if not drained.ok:
            kube.uncordon(name)
            step.outcome = "blocked"
            step.detail = "left ACTIVE and uncordoned; blocked by " + "; ".join(
                f"{pod}: {why}" for pod, why in drained.blocked.items()
            )
            say(f"{name}: {step.detail}")
            return
        if drained.evicted:
            say(f"{name}: evicted {len(drained.evicted)} pod(s)")
    say(f"{name}: shelving")
    server_action(api, server.id, "shelve", SHELVED, f"server {name}", observed=server)
    wait_status(watch, server.id, ("SHELVED_OFFLOADED",), f"server {name}")
    say(f"{name}: SHELVED_OFFLOADED")
    step.outcome, step.detail = (
        "done",
        "SHELVED_OFFLOADED" + ("" if in_k8s else " (not a Kubernetes node: no drain)"),
    )


def _unshelve_one(
    api,
    watch: ServerWatch,
    kube: Kube,
    step: Step,
    server,
    in_k8s: bool,
    say,
    ready_timeout: float,
    catch_up: Callable[[str], None] | None = None,
    behind: bool = False,
):
    name = step.node
    if step.action == "unshelve":
        say(f"{name}: unshelving")
        server_action(api, server.id, "unshelve", ("ACTIVE",), f"server {name}", observed=server)
        wait_status(watch, server.id, ("ACTIVE",), f"server {name}")
    if not in_k8s:
        step.outcome, step.detail = "done", "ACTIVE (not a Kubernetes node)"
        return
    say(f"{name}: ACTIVE; waiting for the Node to be Ready")
    kube.wait_ready(name, timeout=ready_timeout)
    note = ""
    if behind and catch_up is not None:
        # Left behind by an upgrade while shelved: upgraded now, still cordoned, before any pod
        # lands on it.
        catch_up(name)
    elif behind:
        # Without Kubespray here (the autoscaler's agent on the cluster): a kubelet within
        # Kubernetes' version skew policy takes pods as it is, rather than bill idle and leave
        # the pods that woke it Pending; beyond it, the node stays cordoned.
        kubelet, server = kube.node(name).kubelet, kube.server_version()
        if not within_skew(kubelet, server):
            step.outcome = "done"
            step.detail = (
                f"ACTIVE, Ready, left cordoned: its kubelet {kubelet} is beyond the version skew of the "
                f"API server {server}; `invoke scale --unshelve --nodes {name}` upgrades, then uncordons it"
            )
            say(f"{name}: {step.detail}")
            return
        note = (
            f" at kubelet {kubelet}, behind the API server's {server} (within the version skew policy):"
            f" it missed an upgrade while shelved; `invoke upgrade --to {server.lstrip('v')}` upgrades it"
        )
    node = kube.node(name)
    if node.scaling:
        kube.uncordon(name)
        step.outcome, step.detail = "done", "ACTIVE, Ready, uncordoned" + note
        say(f"{name}: Ready and uncordoned{note}")
    else:
        step.outcome = "done"
        step.detail = "ACTIVE, Ready" + (
            " (cordoned by someone else: left cordoned)" if node.unschedulable else ""
        )


def scale_cluster(
    name: str,
    req: Request,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    root: Path | None = None,
    drain_timeout: float = 300.0,
    ready_timeout: float = 600.0,
    force: bool = False,
    source: str = "manual",
    api: CloudAPI | None = None,
    kube: Kube | None = None,
    locked: bool = False,
    lease_wait: float = 600.0,
    waking: bool = False,
    catch_up: Callable[[str], None] | None = None,
) -> ScaleResult:
    """Plan and (unless dry_run) carry out a soft-scaling request on cluster `name`. `source`
    (manual | autoscale) is recorded with the run: the autoscaler leaves nodes changed by hand
    alone for a while. The cluster's node Lease is held while it observes and acts (waiting up
    to `lease_wait` seconds for another actor, e.g. the autoscaler's agent), unless `locked`:
    the caller holds the lock and the Lease. `waking`: called by `wake`, which holds the
    cluster's hibernation record (every other caller is refused while it is kept). `catch_up(node)`
    upgrades a worker an upgrade left behind while it was shelved, after it is Ready and before
    its uncordon (upgrade.catch_up, given by the commands of the operator's machine)."""
    say = progress or Progress()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    if not state:
        raise ScaleError(f"no cluster {name!r} in {cdir.path}: create it with `invoke create-cluster`")
    if not waking:
        refuse_if_hibernated(state, "scale")
    # `locked`: the caller holds the cluster's lock already (the autoscaler's round).
    with cdir.run_log("scale") if locked else cdir.command("scale") as logfile_or_run:
        run = logfile_or_run if not locked else Run("scale", logfile_or_run)
        say(f"observing cluster {name!r}")
        api = api or connect_api(state.cloud)
        kubeconfig = state.kubeconfig
        if kube is None and not kubeconfig:
            raise ScaleError(
                f"cluster {name!r} has no kubeconfig (was it created with --no-kubernetes?): nodes cannot "
                "be drained safely; run `invoke create-cluster` to build Kubernetes first"
            )
        kube = kube or Kube(kubeconfig)
        with contextlib.ExitStack() as leased:
            if not (locked or dry_run):
                # One actor changes the nodes at a time across machines (the autoscaler's round
                # holds the Lease itself: `locked`). Observed and planned under it.
                leased.enter_context(lease.holding(kube, "scale", say, wait=lease_wait))
            return _scale_leased(
                name,
                req,
                cdir,
                run,
                api,
                kube,
                say,
                dry_run,
                drain_timeout,
                ready_timeout,
                force,
                source,
                catch_up,
            )


def _scale_leased(
    name: str,
    req: Request,
    cdir: ClusterDir,
    this_run: Run,
    api: CloudAPI,
    kube: Kube,
    say: Progress,
    dry_run: bool,
    drain_timeout: float,
    ready_timeout: float,
    force: bool,
    source: str,
    catch_up: Callable[[str], None] | None = None,
) -> ScaleResult:
    """scale_cluster's observation, plan and actions (the cluster's lock and Lease held)."""
    logfile = this_run.log
    rates = cost.rates_for(cdir.load().su_rates)
    views, servers, known, flavors = observe_nodes(api, kube, name, rates=rates)
    steps = plan_scale(views, req)
    before = su_per_hour(views)
    result = ScaleResult(name, steps, before, su_per_hour(views, steps), dry_run, str(logfile))
    result.su_rates = rates.used([flavor_name(s) for s in servers.values()])
    for s in steps:
        if s.action != "noop":
            say(f"plan: {s.action} {s.node} ({s.reason})")
    if dry_run:
        return result
    work = [s for s in steps if s.action != "noop"]
    for s in steps:
        if s.action == "noop":
            s.outcome = "noop"
    if not work:
        say("nothing to do: the workers are already as asked")

    watch = ServerWatch(api, name)

    def run(step: Step) -> None:
        started = time.monotonic()
        try:
            srv, in_k8s = servers[step.node], step.node in known
            if step.action == "shelve":
                _shelve_one(api, watch, kube, step, srv, in_k8s, say, drain_timeout, force)
            else:
                behind = step.node in cdir.load().upgrade_behind
                _unshelve_one(api, watch, kube, step, srv, in_k8s, say, ready_timeout, catch_up, behind)
        except Exception as exc:  # noqa: BLE001 (one node's failure must not strand the others)
            step.outcome, step.detail = "failed", str(exc)
            say(f"{step.node}: FAILED: {exc}")
        step.seconds = round(time.monotonic() - started, 1)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        list(pool.map(run, work))
    after, _, _, _ = observe_nodes(api, None, name, flavors, rates)
    result.su_per_hour_after = su_per_hour(after)
    _record(cdir, result, source)
    return result


def _record(cdir: ClusterDir, result: ScaleResult, source: str = "manual") -> None:
    state = cdir.load()
    state.scale_runs.append(
        ScaleRun(
            at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            changed={s.node: f"{s.action}:{s.outcome}" for s in result.steps if s.action != "noop"},
            su_per_hour_after=result.su_per_hour_after,
            source=source,
        )
    )
    state.scale_runs = state.scale_runs[-20:]
    cdir.save(state)


def schedule(
    cluster: str, *, at: str, workers: int, days: str | None = None, root: Path | None = None
) -> dict:
    """Install a timer (or crontab entry) running `invoke scale --cluster C --workers N` at `at`."""
    if not ClusterDir(cluster, root).exists():
        raise ScaleError(f"no cluster {cluster!r} here: create it with `invoke create-cluster` first")
    if workers < 0:
        raise ScaleError(f"--workers: the number of ACTIVE workers must be 0 or more, got {workers}")
    when = sched.parse_when(at, days)
    job = sched.Job(
        cluster, f"scale-{when.label()}", ("scale", "--cluster", cluster, "--workers", str(workers)), when
    )
    return sched.install(job)
