"""invoke autoscale: wake shelved workers when pods cannot be scheduled, shelve them when idle.

Each round observes the cluster (servers and flavors from the cloud; nodes, pods and budgets
from Kubernetes), plans with the pure planner (autoscale_plan.py), records what it is about to
do, then does it through soft scaling's own path (`scale.scale_cluster`: cordon, drain through the
Eviction API, shelve; unshelve, wait Ready, uncordon), which takes the cluster's lock for each
action — so the loop waits while create-cluster, add-nodes, share or credentials.refresh hold it.
One loop per cluster at a time (`.autoscale.lock`).

Files in the cluster's folder:
- state.json `autoscale`: the settings (autoscale.enable writes them, autoscale.disable drops them);
- autoscale.json: the loop's memory (idle clocks, back-offs, actions in progress), its last round
  and the Service Units saved today;
- autoscale-events.jsonl: one line per decision that changed something or could not (last ones in
  `autoscale.status`); logs/autoscale-run-*.log: each run's log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kubernetes.utils import parse_quantity

from . import autoscale_windows, cost, heal_check, lease
from .autoscale_plan import (
    SHELVED,
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
from .cloudapi import CloudAPI, connect_api
from .cloudops import flavors_by_name
from .cluster_state import Autoscale, ClusterState
from .errors import LockedError, StackSprayError
from .files import atomic_write
from .hibernate_plan import hibernated_refusal
from .kube import SCALE_ANNOTATION, Kube, kubelet_version, node_is_ready
from .observe import META_GROUP, flavor_name, owned_servers
from .progress import Progress
from .scale import make_request, scale_cluster
from .spec import CONTROL_PLANE, HealSpec
from .state import ClusterDir
from .timestamps import epoch
from .upgrade_plan import within_skew

log = logging.getLogger(__name__)

MEMORY_FILE = "autoscale.json"
EVENTS_FILE = "autoscale-events.jsonl"
GPU = "nvidia.com/gpu"
LOCK_WAIT = 600.0  # seconds an action waits for the cluster's lock before the round gives up


class AutoscaleError(StackSprayError):
    """autoscale cannot be enabled or run as asked."""


# -- settings -----------------------------------------------------------------------------------


def cluster_dir_and_state(cluster: str, root: Path | None) -> tuple[ClusterDir, ClusterState]:
    cdir = ClusterDir(cluster, root)
    state = cdir.load()
    if not state:
        raise AutoscaleError(f"no cluster {cluster!r} in {cdir.path}: create it with `invoke create-cluster`")
    if not state.kubeconfig:
        raise AutoscaleError(
            f"cluster {cluster!r} has no kubeconfig (created with --no-kubernetes?): the autoscaler "
            "reads pods from Kubernetes; run `invoke create-cluster` to build it first"
        )
    return cdir, state


@dataclass
class AutoscaleRounds:
    """The rounds one `autoscale.run` made (with --json: the last one)."""

    cluster: str
    rounds: list[dict]

    def to_dict(self) -> dict:
        return self.rounds[-1] if self.rounds else {}


def settings_of(auto: Autoscale, book: dict | None = None, now: float | None = None) -> Settings:
    """The planner's settings; with the loop's `book` and the time, a window that fired holds its
    group's min and max (the book notes when the operator's limits changed)."""
    held = {}
    if auto.windows and book is not None:
        t = time.time() if now is None else now
        held = autoscale_windows.effective(auto, autoscale_windows.track_base(auto, book, t), t)
    return Settings(
        groups={
            g: GroupSettings(*(held[g][:2] if g in held else (s.min, s.max)), s.idle, s.pending_for)
            for g, s in auto.groups.items()
        },
        scale_down_delay=auto.scale_down_delay,
        skip_nodes_with_local_storage=auto.skip_nodes_with_local_storage,
        skip_nodes_with_system_pods=auto.skip_nodes_with_system_pods,
    )


# -- observing ------------------------------------------------------------------------------------


def _quantity(value) -> float:
    try:
        return float(parse_quantity(value)) if value is not None else 0.0
    except (ValueError, TypeError, ArithmeticError):
        return 0.0


def _resources(d: dict | None) -> Resources:
    d = d or {}
    return Resources(_quantity(d.get("cpu")), _quantity(d.get("memory")), _quantity(d.get(GPU)))


def pod_requests(spec: dict) -> Resources:
    """A pod's effective requests, as the scheduler counts them (resource helpers in
    k8s.io/component-helpers/resource: the sum of its containers, or its largest init container
    if more)."""
    total = Resources()
    for c in spec.get("containers") or []:
        total = total + _resources((c.get("resources") or {}).get("requests"))
    for c in spec.get("initContainers") or []:
        r = _resources((c.get("resources") or {}).get("requests"))
        total = Resources(max(total.cpu, r.cpu), max(total.memory, r.memory), max(total.gpu, r.gpu))
    return total


def pod_from_json(p: dict) -> Pod:
    """What the planner needs of one pod (core/v1 Pod as JSON)."""
    meta, spec, status = p.get("metadata") or {}, p.get("spec") or {}, p.get("status") or {}
    sched_cond = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
    unschedulable = sched_cond.get("status") == "False" and sched_cond.get("reason") == "Unschedulable"
    terms = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    owner_ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), {})
    controller = owner_ref.get("kind")
    annotations = meta.get("annotations") or {}
    return Pod(
        key=f"{meta.get('namespace', 'default')}/{meta.get('name')}",
        node=spec.get("nodeName") or None,
        phase=status.get("phase") or "Pending",
        requests=pod_requests(spec),
        labels=meta.get("labels") or {},
        priority=int(spec.get("priority") or 0),
        unschedulable=unschedulable,
        pending_since=epoch(sched_cond.get("lastTransitionTime")) or epoch(meta.get("creationTimestamp")),
        node_selector=spec.get("nodeSelector") or {},
        affinity_terms=tuple(terms),
        tolerations=tuple(spec.get("tolerations") or ()),
        controller=controller,
        owner=owner_ref.get("name"),
        mirror="kubernetes.io/config.mirror" in annotations,
        local_volumes=tuple(
            v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v or "hostPath" in v
        ),
        annotations=annotations,
    )


def budget_from_json(b: dict) -> Budget:
    sel = (b.get("spec") or {}).get("selector") or {}
    meta = b.get("metadata") or {}
    return Budget(
        key=f"{meta.get('namespace', 'default')}/{meta.get('name')}",
        match_labels=sel.get("matchLabels") or {},
        match_expressions=tuple(sel.get("matchExpressions") or ()),
        disruptions_allowed=int((b.get("status") or {}).get("disruptionsAllowed") or 0),
    )


def observe_cluster(
    api: CloudAPI,
    kube: Kube,
    cluster: str,
    rates: cost.Rates | None = None,
    behind: Iterable[str] = (),
) -> tuple[list[Node], list[Pod], list[Budget]]:
    """The cluster's nodes (each server with its Kubernetes Node), pods and budgets; SU at `rates`.
    `behind`: the workers an upgrade left behind while shelved (their kubelets are held against
    the API server's version)."""
    servers = owned_servers(api, cluster)
    if not servers:
        raise AutoscaleError(f"cluster {cluster!r} has no servers in the cloud")
    flavors = flavors_by_name(api)
    knodes = {n["metadata"]["name"]: n for n in kube.list_json("nodes")}
    behind = set(behind) & set(knodes)
    server_version = kube.server_version() if behind else ""
    pods = [pod_from_json(p) for p in kube.list_json("pods")]
    budgets = [budget_from_json(b) for b in kube.list_json("poddisruptionbudgets")]
    nodes = []
    for s in servers:
        k = knodes.get(s.name)
        if k is None:
            continue  # not (yet) a Kubernetes node: nothing could run there
        fl = flavor_name(s)
        f = flavors.get(fl)
        meta, kspec, kstatus = k.get("metadata") or {}, k.get("spec") or {}, k.get("status") or {}
        alloc = _resources(kstatus.get("allocatable"))
        if not alloc.cpu and f is not None:
            alloc = Resources(float(f.vcpus), float(f.ram) * 2**20, 0.0)
        group = (s.metadata or {}).get(META_GROUP) or ""
        nodes.append(
            Node(
                name=s.name,
                group=group,
                status=s.status,
                ready=node_is_ready(k),
                unschedulable=bool(kspec.get("unschedulable")),
                ours=SCALE_ANNOTATION in (meta.get("annotations") or {}),
                labels=meta.get("labels") or {},
                taints=tuple(
                    t
                    for t in kspec.get("taints") or []
                    if not str(t.get("key", "")).startswith("node.kubernetes.io/")
                ),
                allocatable=alloc,
                su_active=cost.su_if_active(fl, f.vcpus if f is not None else 0, rates),
                annotations=meta.get("annotations") or {},
                control_plane=group == CONTROL_PLANE,
                task_state=getattr(s, "task_state", None),
                flavor=fl or "",
                behind=s.name in behind,
                beyond_skew=s.name in behind and not within_skew(kubelet_version(k), server_version),
            )
        )
    return nodes, pods, budgets


# -- the loop's book: memory, last round, SU saved, events -----------------------------------------


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def load_book(cdir: ClusterDir) -> dict:
    try:
        return json.loads((cdir.path / MEMORY_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def save_book(cdir: ClusterDir, book: dict) -> None:
    atomic_write(cdir.path / MEMORY_FILE, json.dumps(book, indent=2, sort_keys=True) + "\n", 0o644)


def event(cdir: ClusterDir, **fields) -> dict:
    """Append one decision to the events file and the run's log."""
    fields = {"at": iso(time.time()), **fields}
    cdir.path.mkdir(parents=True, exist_ok=True)
    with open(cdir.path / EVENTS_FILE, "a") as fh:
        fh.write(json.dumps(fields, sort_keys=True) + "\n")
    log.info("autoscale: %s", " ".join(f"{k}={v}" for k, v in fields.items() if k != "at"))
    return fields


def events(cdir: ClusterDir, last: int = 10) -> list[dict]:
    try:
        lines = (cdir.path / EVENTS_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for ln in lines[-last:]:
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(ln))
    return out


def _held(state: ClusterState, settings: Settings, groups: dict[str, str]) -> dict[str, float]:
    """Nodes a manual `invoke scale` changed, left alone until their group's idle time passes."""
    held: dict[str, float] = {}
    for run in state.scale_runs:
        if run.source == "autoscale":
            continue
        at = epoch(run.at)
        for node in run.changed:
            gs = settings.groups.get(groups.get(node, ""))
            if gs is not None and at is not None:
                held[node] = max(held.get(node, 0.0), at + gs.idle)
    return held


def _account(book: dict, nodes: list[Node], settings: Settings, now: float) -> None:
    """Add the SU the shelved workers of autoscaled groups saved since the last round (today)."""
    today = dt.datetime.fromtimestamp(now).date().isoformat()
    midnight = dt.datetime.combine(dt.date.fromisoformat(today), dt.time()).timestamp()
    saved = book.get("saved") if (book.get("saved") or {}).get("day") == today else {"day": today, "su": 0.0}
    last = book.get("last_at")
    if last is not None:
        seconds = max(0.0, now - max(float(last), midnight))
        rate = sum(n.su_active for n in nodes if n.group in settings.groups and n.status in SHELVED)
        saved["su"] = round(saved["su"] + rate * seconds / 3600, 4)
    book["saved"], book["last_at"] = saved, now


# -- one round --------------------------------------------------------------------------------------


def plan_round(cluster: str, cdir: ClusterDir, state: ClusterState, api: CloudAPI, kube: Kube, now: float):
    """Observe and plan (no change anywhere but the book's note of the limits it saw): (plan,
    nodes, book). A window that fired (autoscale_windows.py) sets its group's min and max."""
    book = load_book(cdir)
    settings = settings_of(state.autoscale, book, now)
    memory = Memory.from_dict(book.get("memory"))
    nodes, pods, budgets = observe_cluster(
        api, kube, cluster, cost.rates_for(state.su_rates), state.upgrade_behind
    )
    memory.held.update(_held(state, settings, {n.name: n.group for n in nodes}))
    return plan_autoscale(nodes, pods, budgets, settings, memory, now), nodes, book


def _with_cluster_lock(fn: Callable, wait: float, say: Progress):
    """fn() (which takes the cluster's lock); while another command holds it, wait with backoff
    up to `wait` seconds, then None."""
    deadline, delay = time.monotonic() + wait, 1.0
    while True:
        try:
            return fn()
        except LockedError as exc:
            if time.monotonic() + delay > deadline:
                say(f"autoscale: {exc}; skipping this round")
                return None
            say(f"autoscale: waiting for the cluster's lock ({exc})")
            time.sleep(delay)
            delay = min(15.0, delay * 1.6)


def run_round(
    cluster: str,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    root: Path | None = None,
    lock_wait: float = LOCK_WAIT,
    drain_timeout: float = 120.0,
    ready_timeout: float = 600.0,
    catch_up: Callable[[str], None] | None = None,
) -> dict:
    """One round: take the cluster's lock (waiting with backoff while another command holds it),
    then observe, plan, record the intent and act — all under that one lock, so a round never
    acts on what it saw before someone else changed the cluster (a manual `scale`, a pod that
    arrived meanwhile). A dry run only observes and plans."""
    say = progress or Progress()
    cdir, state = cluster_dir_and_state(cluster, root)
    if not state.autoscale or not (state.autoscale.groups or state.autoscale.heal):
        raise AutoscaleError(
            f"autoscaling is not enabled on {cluster!r}: `invoke autoscale.enable --cluster {cluster}`"
        )
    asleep = hibernated_refusal(state, "the autoscaler's round")
    if asleep:  # paused, not failed: the loop keeps running and resumes after the wake
        say(f"autoscale: paused: {asleep}")
        return {
            "at": iso(time.time()),
            "decisions": [],
            "pending": [],
            "dry_run": dry_run,
            "outcomes": {},
            "paused": asleep,
        }
    if dry_run:
        plan, _, _ = plan_round(
            cluster, cdir, state, connect_api(state.cloud), Kube(state.kubeconfig), time.time()
        )
        summary = {"at": iso(time.time()), **plan.to_dict(), "dry_run": True}
        summary.pop("memory")
        for d in plan.actions:
            say(f"plan: {d.action} {d.node} ({d.reason})")
        return summary

    def locked() -> dict:
        with cdir.lock("autoscale round"):
            return _round(
                cluster, cdir, say, root, drain_timeout, ready_timeout, lock_wait, catch_up=catch_up
            )

    try:
        done = _with_cluster_lock(locked, lock_wait, say)
        why = "the cluster is busy (its lock is held): next round"
    except lease.LeaseBusy as exc:
        done, why = None, f"{exc}: next round"
        say(f"autoscale: {why}")
    if done is None:  # busy for the whole wait: nothing was planned or done; the next round plans
        event(cdir, action="round", outcome="skipped", reason=why)
        return {"at": iso(time.time()), "decisions": [], "pending": [], "dry_run": False, "outcomes": {}}
    return done


def _round(
    cluster: str,
    cdir: ClusterDir,
    say: Progress,
    root,
    drain_timeout: float,
    ready_timeout: float,
    lease_wait: float = LOCK_WAIT,
    role: str = "autoscaler",
    catch_up: Callable[[str], None] | None = None,
) -> dict:
    """A round under the cluster's lock (held by the caller) and its node Lease (taken here,
    waiting up to `lease_wait` for another machine's actor): observation, plan and actions."""
    state = cdir.load()
    api, kube = connect_api(state.cloud), Kube(state.kubeconfig)
    with lease.holding(kube, role, say, wait=lease_wait):
        return round_leased(
            cluster, cdir, state, api, kube, say, root, drain_timeout, ready_timeout, catch_up=catch_up
        )


def round_leased(
    cluster: str,
    cdir: ClusterDir,
    state: ClusterState,
    api: CloudAPI,
    kube: Kube,
    say: Progress,
    root,
    drain_timeout: float,
    ready_timeout: float,
    catch_up: Callable[[str], None] | None = None,
) -> dict:
    """One round's observation, plan, recorded intent and actions, by whoever holds the
    cluster's lock and node Lease (the loop here, or the agent on the cluster). A worker an
    upgrade left behind is upgraded by `catch_up` before its uncordon; without it (the agent:
    no Kubespray there) it takes pods as it is while its kubelet is within the version skew."""
    now = time.time()
    plan, nodes, book = plan_round(cluster, cdir, state, api, kube, now)
    summary = {"at": iso(now), **plan.to_dict(), "dry_run": False}
    summary.pop("memory")
    for d in plan.actions:
        say(f"plan: {d.action} {d.node} ({d.reason})")
    _account(book, nodes, settings_of(state.autoscale), now)
    reported = book.get("reported") or {}
    for p in plan.pending:
        if p["reason"].startswith("wakes nothing") and reported.get(p["pod"]) != p["reason"]:
            event(cdir, action="pending", pod=p["pod"], reason=p["reason"])
    book["reported"] = {p["pod"]: p["reason"] for p in plan.pending}
    memory = plan.memory
    book["memory"], book["last"] = memory.to_dict(), summary
    save_book(cdir, book)  # the intent, before acting: a killed round is finished by the next

    outcomes: dict[str, dict] = {}
    for action in ("unshelve", "shelve"):
        chosen = [d for d in plan.actions if d.action == action]
        if not chosen:
            continue
        for d in chosen:
            say(f"autoscale: {action} {d.node}: {d.reason}")
        result = scale_cluster(
            cluster,
            make_request(**{action: True}, nodes=[d.node for d in chosen]),
            progress=say,
            root=root,
            drain_timeout=drain_timeout,
            ready_timeout=ready_timeout,
            source="autoscale",
            api=api,
            kube=kube,
            locked=True,
            catch_up=catch_up,
        )
        steps = {s.node: s for s in result.steps}
        for d in chosen:
            s = steps.get(d.node)
            outcome = s.outcome if s else "failed"
            memory.in_progress.pop(d.node, None)
            if outcome == "failed" and action == "unshelve":
                memory = backoff_after_failure(memory, d.group, time.time(), s.detail if s else "")
            elif outcome in ("done", "noop") and action == "unshelve":
                memory = clear_backoff(memory, d.group)
            outcomes[d.node] = event(
                cdir,
                action=action,
                node=d.node,
                group=d.group,
                outcome=outcome,
                reason=d.reason,
                detail=(s.detail if s else "not in the scale plan"),
                pods=d.pods,
            )
    book["memory"] = memory.to_dict()
    save_book(cdir, book)
    summary["outcomes"] = outcomes
    if state.autoscale and state.autoscale.heal:
        summary["heal"] = heal_round(cluster, cdir, api, kube, say)
    return summary


def heal_round(cluster: str, cdir: ClusterDir, api: CloudAPI, kube: Kube, say: Progress) -> dict:
    """heal's check as part of the round (heal.enable): broken nodes found as `invoke heal` finds
    them, soft- then hard-rebooted here; a replacement that is due needs Kubespray, so it is
    reported (`invoke heal` runs it) — the loop on the operator's machine runs it after the round.
    Every decision that changed since the last round is an event."""
    state = cdir.load()
    auto = state.autoscale
    assert auto is not None
    settings = {g: HealSpec(h.unhealthy_for, h.max_unhealthy, h.reboot_timeout) for g, h in auto.heal.items()}
    now = time.time()
    steps, servers, groups = heal_check.check(api, kube, cluster, state, settings, now)
    heal_check.remember(state.heal, steps, now)
    cdir.save(state)
    book = load_book(cdir)
    told = book.get("heal_told") or {}
    for s in steps:
        if s.action not in ("healthy", "skip") and told.get(s.node) != s.action:
            reason = s.reason
            if s.action == "replace":
                reason += f"; a replacement needs Kubespray: `invoke heal --cluster {cluster}` runs it"
            event(cdir, action="heal", node=s.node, decision=s.action, reason=reason)
    book["heal_told"] = {s.node: s.action for s in steps if s.action not in ("healthy", "skip")}
    save_book(cdir, book)
    reboots = [s for s in steps if s.action in heal_check.REBOOT]
    rebooter = heal_check.Rebooter(cluster, cdir, say, time.time, api, kube)
    remedies = heal_check.reboot_all(rebooter, cdir, reboots, servers, groups, settings, now)
    for r in remedies:
        event(
            cdir,
            action="heal",
            node=r["node"],
            decision=r["remedy"],
            outcome=r["outcome"],
            reason=r["detail"],
        )
    return {
        "steps": [s.to_dict() for s in steps if s.action not in ("healthy", "skip")],
        "remedies": remedies,
        "replace": [s.node for s in steps if s.action == "replace"],
    }


def run(
    cluster: str,
    *,
    once: bool = False,
    dry_run: bool = False,
    interval: float = 10.0,
    progress: Progress | None = None,
    root: Path | None = None,
    lock_wait: float | None = None,
    rounds: int | None = None,
    replace: Callable[[], dict] | None = None,
    catch_up: Callable[[str], None] | None = None,
) -> list[dict]:
    """The loop: a round every `interval` seconds (once with `once`). In the loop a failed round
    is logged and the next one tried; with `once` it raises. `replace`: run when a round's heal
    check found a replacement due (`invoke heal`, which needs Kubespray: this machine has it, the
    agent on the cluster does not) — after the round, its locks released. `catch_up(node)`:
    upgrades a woken worker an upgrade left behind, before its uncordon (upgrade.catch_up)."""
    say = progress or Progress()
    cdir = ClusterDir(cluster, root)
    done: list[dict] = []
    # One loop per cluster: a second one is refused at once, naming the first.
    with cdir.lock("autoscale.run", file=".autoscale.lock"), cdir.run_log("autoscale.run"):
        while True:
            started = time.monotonic()
            try:
                done.append(
                    run_round(
                        cluster,
                        dry_run=dry_run,
                        progress=say,
                        root=root,
                        lock_wait=lock_wait if lock_wait is not None else (50.0 if once else LOCK_WAIT),
                        catch_up=catch_up,
                    )
                )
                due = (done[-1].get("heal") or {}).get("replace")
                if due and replace is not None:
                    say(f"heal: replacing {', '.join(due)} (invoke heal)")
                    done[-1]["heal"]["replaced"] = replace()
            except Exception as exc:
                if once or dry_run:
                    raise
                log.exception("autoscale round failed")
                event(cdir, action="round", outcome="failed", reason=str(exc)[:500])
                say(f"autoscale: round failed: {exc}")
            if once or dry_run or (rounds is not None and len(done) >= rounds):
                return done
            time.sleep(max(1.0, interval - (time.monotonic() - started)))
