"""Autoscaling by shelving: the planner. Pure: what was observed (pods, nodes, budgets), the
settings and the loop's memory → decisions with reasons (no-ops explicit) and the new memory.

The rules follow the cluster-autoscaler's documented defaults (its FAQ: "How does scale-up
work?", "How does scale-down work?", "What types of pods can prevent CA from removing a node?"),
adjusted to workers that are shelved instead of deleted and take minutes to wake:

Scale up — pods with PodScheduled=False/Unschedulable, pending at least the group's
`pending_for`, priority not below -10 (the cluster-autoscaler's expendable-pods cutoff). A pod
that fits a node already up (or one being woken) wakes nothing. The others are packed, first fit
by decreasing size, onto the shelved workers of the groups whose nodes admit them (node selector,
required node affinity, tolerations of the node's own taints) and whose flavor's allocatable
(vCPU, memory, GPUs) holds them; the group helping the most pods with the least waste wins
(the least-waste expander), then the next; never above a group's `max` ACTIVE workers; a group
whose last unshelve failed is backed off (5 minutes, doubling to 30) and another one is tried.

Scale down — a worker of an autoscaled group whose pods (not DaemonSet, not mirror) request
under 50 % of its allocatable CPU and memory (GPUs on GPU workers) for the group's `idle` time,
and each of whose pods can move (see `movable`) and fits on the nodes that stay; not annotated
`cluster-autoscaler.kubernetes.io/scale-down-disabled: "true"`; no scale-up in its group for
`scale_down_delay` (10 minutes); never below `min`. Empty workers go together, others one at a
time. Control-plane nodes never; nothing is shelved in a round that wakes a worker.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

from . import cost
from .kube import tolerates
from .names import highest_first, natural_key

SHELVED = cost.SHELVED
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
SAFE_LOCAL_VOLUMES = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes"
SCALE_DOWN_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
EXPENDABLE_PRIORITY = -10  # the cluster-autoscaler's --expendable-pods-priority-cutoff
BACKOFF_FIRST, BACKOFF_MAX = 300.0, 1800.0

# The pods Kubespray v2.31.0 itself deploys that would pin a worker under the system-pods or
# local-storage rule, and why moving them is safe (the manifests, roles/kubernetes-apps/...):
KUBESPRAY_MOVABLE = {
    # csi_driver/cinder/templates/cinder-csi-controllerplugin.yml.j2: emptyDir `socket-dir` is the
    # Unix socket its sidecars talk over, made anew at start; hostPath /etc/ssl/certs is read-only
    # CA certificates; cinder-csi-poddisruptionbudget.yml.j2 covers it.
    ("kube-system", "app", "csi-cinder-controllerplugin"): "Cinder CSI controller (socket emptyDir only)",
    # metrics_server/templates/metrics-server-deployment.yaml.j2: emptyDir `tmp`, no budget.
    ("kube-system", "app.kubernetes.io/name", "metrics-server"): "metrics-server (tmp emptyDir only)",
    # policy_controller/calico/templates/calico-kube-controllers.yml.j2: no budget (a hostPath of
    # read-only etcd certificates only with the etcd datastore).
    ("kube-system", "k8s-app", "calico-kube-controllers"): "calico-kube-controllers (stateless)",
    # ansible/templates/dns-autoscaler.yml.j2: no budget, no volumes.
    ("kube-system", "k8s-app", "dns-autoscaler"): "dns-autoscaler (stateless)",
}


@dataclass(frozen=True)
class Resources:
    cpu: float = 0.0  # cores
    memory: float = 0.0  # bytes
    gpu: float = 0.0

    def __add__(self, o: Resources) -> Resources:
        return Resources(self.cpu + o.cpu, self.memory + o.memory, self.gpu + o.gpu)

    def __sub__(self, o: Resources) -> Resources:
        return Resources(self.cpu - o.cpu, self.memory - o.memory, self.gpu - o.gpu)

    def fits_in(self, free: Resources) -> bool:
        eps = 1e-9
        return self.cpu <= free.cpu + eps and self.memory <= free.memory + eps and self.gpu <= free.gpu + eps

    def show(self) -> str:
        text = f"{self.cpu:g} CPU, {self.memory / 2**30:.2f} GiB"
        return text + (f", {self.gpu:g} GPU" if self.gpu else "")


@dataclass(frozen=True)
class Pod:
    key: str  # namespace/name
    node: str | None = None
    phase: str = "Running"
    requests: Resources = Resources()
    labels: dict = field(default_factory=dict)
    priority: int = 0
    unschedulable: bool = False  # PodScheduled=False, reason Unschedulable
    pending_since: float | None = None
    node_selector: dict = field(default_factory=dict)
    affinity_terms: tuple = ()  # required nodeAffinity nodeSelectorTerms (ORed)
    tolerations: tuple = ()
    controller: str | None = None  # kind of the controlling owner
    owner: str | None = None  # name of the controlling owner (which DaemonSet, ReplicaSet, ...)
    mirror: bool = False
    local_volumes: tuple[str, ...] = ()  # names of emptyDir and hostPath volumes
    annotations: dict = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def daemon(self) -> bool:
        return self.controller == "DaemonSet"


@dataclass(frozen=True)
class Node:
    name: str
    group: str
    status: str  # Nova status
    ready: bool = True
    unschedulable: bool = False
    ours: bool = False  # cordoned by stackspray (a shelve or unshelve not finished)
    labels: dict = field(default_factory=dict)
    taints: tuple = ()  # the node's own taints (not the node.kubernetes.io/* ones)
    allocatable: Resources = Resources()
    su_active: float = 0.0
    annotations: dict = field(default_factory=dict)
    control_plane: bool = False
    task_state: str | None = None  # Nova task in progress (e.g. unshelving)
    flavor: str = ""
    # A worker an upgrade left behind while shelved: woken last (it runs an older kubelet), and
    # never when that kubelet is beyond Kubernetes' version skew (it would not join as it is).
    behind: bool = False
    beyond_skew: bool = False

    @property
    def shelved(self) -> bool:
        return self.status in SHELVED

    @property
    def usable(self) -> bool:
        """Takes pods now: ACTIVE, Ready, schedulable."""
        return self.status == "ACTIVE" and self.ready and not self.unschedulable


@dataclass(frozen=True)
class Budget:
    key: str  # namespace/name
    match_labels: dict
    disruptions_allowed: int
    match_expressions: tuple = ()

    def selects(self, pod: Pod) -> bool:
        return pod.namespace == self.key.split("/", 1)[0] and label_selector_matches(
            self.match_labels, self.match_expressions, pod.labels
        )


@dataclass(frozen=True)
class GroupSettings:
    min: int = 0
    max: int = 0
    idle: float = 1800.0  # seconds under the threshold before a worker is shelved
    pending_for: float = 30.0  # seconds a pod is pending before it wakes a worker


@dataclass(frozen=True)
class Settings:
    groups: dict  # group -> GroupSettings
    scale_down_delay: float = 600.0  # no scale-down in a group this long after a scale-up
    utilization_threshold: float = 0.5
    skip_nodes_with_local_storage: bool = True
    skip_nodes_with_system_pods: bool = True


@dataclass
class Memory:
    """What the loop remembers between rounds (kept in inventories/<cluster>/autoscale.json)."""

    unneeded_since: dict = field(default_factory=dict)  # node -> time first seen unneeded
    last_scale_up: dict = field(default_factory=dict)  # group -> time
    backoff: dict = field(default_factory=dict)  # group -> {"until", "delay", "why"}
    in_progress: dict = field(default_factory=dict)  # node -> "shelve" | "unshelve", before acting
    held: dict = field(default_factory=dict)  # node -> until: changed by hand with `invoke scale`

    @classmethod
    def from_dict(cls, data: dict | None) -> Memory:
        data = data or {}
        return cls(**{k: dict(data.get(k) or {}) for k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Decision:
    action: str  # unshelve | shelve | noop
    node: str | None
    group: str | None
    reason: str
    pods: list = field(default_factory=list)


@dataclass
class Plan:
    decisions: list
    memory: Memory
    pending: list  # [{"pod", "reason"}] for every unschedulable pod

    @property
    def actions(self) -> list:
        return [d for d in self.decisions if d.action != "noop"]

    def to_dict(self) -> dict:
        return {
            "decisions": [asdict(d) for d in self.decisions],
            "pending": self.pending,
            "memory": self.memory.to_dict(),
        }


# -- matching pods and nodes (the scheduler's filters the planner needs) -----------------------


def label_selector_matches(match_labels: dict, expressions, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (match_labels or {}).items()):
        return False
    return all(_expression(e, labels) for e in expressions or ())


def _expression(e: dict, labels: dict) -> bool:
    key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
    has = key in labels
    if op == "In":
        return has and labels[key] in values
    if op == "NotIn":
        return not has or labels[key] not in values
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt") and has and values:
        try:
            a, b = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def admits(node: Node, pod: Pod) -> str | None:
    """None when the node's labels and taints admit the pod, else why not (the scheduler's
    NodeAffinity and TaintToleration filters)."""
    if any(node.labels.get(k) != v for k, v in pod.node_selector.items()):
        return "its nodeSelector does not match"
    if pod.affinity_terms and not any(
        label_selector_matches({}, term.get("matchExpressions"), node.labels) for term in pod.affinity_terms
    ):
        return "its required node affinity does not match"
    for taint in node.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
            tolerates(t, taint) for t in pod.tolerations
        ):
            shown = f"{taint.get('key')}={taint.get('value', '')}:{taint['effect']}"
            return f"it does not tolerate the taint {shown}"
    return None


def _size(r: Resources) -> tuple:
    return (r.gpu, r.cpu, r.memory)


def _bound(pods: list[Pod], node: str) -> list[Pod]:
    return [p for p in pods if p.node == node and p.phase not in ("Succeeded", "Failed")]


def _requested(pods: list[Pod], node: str) -> Resources:
    total = Resources()
    for p in _bound(pods, node):
        total = total + p.requests
    return total


def utilization(node: Node, pods: list[Pod]) -> float:
    """The cluster-autoscaler's utilization: requests of the pods that are not DaemonSet or
    mirror pods over allocatable, the larger of CPU and memory — GPUs alone on a GPU worker."""
    moving = [p for p in _bound(pods, node.name) if not p.daemon and not p.mirror]
    used = Resources()
    for p in moving:
        used = used + p.requests
    a = node.allocatable
    if a.gpu:
        return used.gpu / a.gpu
    return max(used.cpu / a.cpu if a.cpu else 0.0, used.memory / a.memory if a.memory else 0.0)


def daemon_overhead(node: Node, pods: list[Pod]) -> Resources:
    """What the DaemonSet pods on `node` request once it is up: the ones bound to it (a shelved
    Node keeps its DaemonSet pods) and, for each DaemonSet with no pod there, one of its pods
    elsewhere when the node admits it (node selector, affinity, tolerations). The
    cluster-autoscaler counts a woken node the same way: its template is a node of the group with
    that node's DaemonSet pods (processors/nodeinfosprovider/mixed_nodeinfos_processor.go)."""
    mine = [p for p in _bound(pods, node.name) if p.daemon]
    total = Resources()
    for p in mine:
        total = total + p.requests
    have = {p.owner for p in mine if p.owner}
    seen: set[str] = set()
    for p in pods:
        if not p.daemon or not p.owner or p.owner in have or p.owner in seen or p.node == node.name:
            continue
        seen.add(p.owner)
        if admits(node, p) is None:
            total = total + p.requests
    return total


def room_when_woken(node: Node, pods: list[Pod]) -> Resources:
    """A shelved worker's allocatable less what its DaemonSet pods will take (`daemon_overhead`)."""
    return node.allocatable - daemon_overhead(node, pods)


# -- scale-down: can a pod move? ----------------------------------------------------------------


def movable(pod: Pod, settings: Settings, budgets: list[Budget], allowance: dict) -> str | None:
    """None when the pod may be evicted to shelve its node, else why not. `allowance` holds
    each budget's disruptions left this round (taken from when a pod is planned to move)."""
    safe = pod.annotations.get(SAFE_TO_EVICT)
    if safe == "false":
        return f'annotated {SAFE_TO_EVICT}: "false"'
    mine = [b for b in budgets if b.selects(pod)]
    for b in mine:
        if allowance.get(b.key, b.disruptions_allowed) < 1:
            return f"PodDisruptionBudget {b.key} allows no disruption now"
    kubespray = next(
        (
            why
            for (ns, k, v), why in KUBESPRAY_MOVABLE.items()
            if pod.namespace == ns and pod.labels.get(k) == v
        ),
        None,
    )
    if safe != "true" and not kubespray:
        if pod.controller is None:
            return "not managed by a controller: it would be lost for good"
        if settings.skip_nodes_with_system_pods and pod.namespace == "kube-system" and not mine:
            return "a kube-system pod without a PodDisruptionBudget (skip_nodes_with_system_pods)"
        named = set(filter(None, (pod.annotations.get(SAFE_LOCAL_VOLUMES) or "").split(",")))
        local = [v for v in pod.local_volumes if v not in named]
        if settings.skip_nodes_with_local_storage and local:
            return (
                f"local storage (emptyDir/hostPath {', '.join(local)}) would be lost "
                f"(skip_nodes_with_local_storage; or name it in {SAFE_LOCAL_VOLUMES})"
            )
    for b in mine:
        allowance[b.key] = allowance.get(b.key, b.disruptions_allowed) - 1
    return None


def _fit(pod: Pod, nodes: list[Node], free: dict) -> str | None:
    """First node (of `nodes`, in order) that admits the pod and has room; takes the room."""
    for n in nodes:
        if admits(n, pod) is None and pod.requests.fits_in(free[n.name]):
            free[n.name] = free[n.name] - pod.requests
            return n.name
    return None


# -- the planner ------------------------------------------------------------------------------


def plan_autoscale(
    nodes: list[Node],
    pods: list[Pod],
    budgets: list[Budget],
    settings: Settings,
    memory: Memory,
    now: float,
) -> Plan:
    """Decisions for one round (one per worker of an autoscaled group, and one per group that
    wakes workers), the pending pods with what happens to each, and the new memory."""
    mem = copy.deepcopy(memory)
    for n, until in list(mem.held.items()):
        if until <= now:
            del mem.held[n]
    for g, b in list(mem.backoff.items()):
        if b.get("until", 0) <= now and g in mem.backoff:
            mem.backoff[g] = dict(b, until=0)
    by_name = {n.name: n for n in nodes}
    scaled = {n.name: n for n in nodes if not n.control_plane and n.group in settings.groups}
    decisions: dict[str, Decision] = {}
    for name in [n for n in mem.in_progress if n not in scaled]:
        del mem.in_progress[name]

    # 1. Finish what an interrupted round started.
    for name, n in sorted(scaled.items(), key=lambda kv: natural_key(kv[0])):
        doing = mem.in_progress.get(name)
        if doing == "shelve" and n.status == "ACTIVE":
            decisions[name] = Decision("shelve", name, n.group, "an interrupted shelve: finishing")
        elif doing == "shelve":
            del mem.in_progress[name]
        elif doing == "unshelve" and (n.shelved or n.ours or n.status != "ACTIVE"):
            decisions[name] = Decision("unshelve", name, n.group, "an interrupted unshelve: finishing")
        elif doing == "unshelve":
            del mem.in_progress[name]
        elif n.status == "ACTIVE" and n.ours and not n.beyond_skew:
            decisions[name] = Decision(
                "unshelve", name, n.group, "ACTIVE but still cordoned by stackspray: finishing"
            )
            mem.in_progress[name] = "unshelve"

    # 2. Scale up.
    pending = [
        p
        for p in pods
        if p.node is None and p.phase == "Pending" and p.unschedulable and p.priority >= EXPENDABLE_PRIORITY
    ]
    report: dict[str, str] = {}
    for p in pods:
        if p.node is None and p.phase == "Pending" and p.unschedulable and p.priority < EXPENDABLE_PRIORITY:
            report[p.key] = f"priority {p.priority} is below {EXPENDABLE_PRIORITY}: wakes nothing"
    active = {g: sum(1 for n in scaled.values() if n.group == g and not n.shelved) for g in settings.groups}
    for d in decisions.values():
        if d.action == "unshelve" and scaled[d.node].shelved:
            active[d.group] += 1
    wake: dict[str, list[str]] = {}  # group -> nodes woken for pending pods

    def spare(g: str) -> list[Node]:
        """The group's shelved workers nothing has claimed yet, lowest-numbered first — those an
        upgrade left behind after the others, and never one beyond the version skew."""
        return [
            n
            for n in sorted(scaled.values(), key=lambda n: (n.behind, natural_key(n.name)))
            if n.group == g
            and n.shelved
            and not n.beyond_skew
            and n.name not in decisions
            and not n.task_state
            and n.name not in wake.get(g, [])
        ]

    def backed_off(g: str) -> bool:
        return mem.backoff.get(g, {}).get("until", 0) > now

    # Below min (a raised min, e.g. by a scheduled `autoscale.enable --min`): wake the difference.
    for g, gs in sorted(settings.groups.items()):
        if backed_off(g):
            continue
        for n in spare(g)[: max(0, gs.min - active[g])]:
            decisions[n.name] = Decision("unshelve", n.name, g, f"group {g} is below its min {gs.min}")
            mem.in_progress[n.name] = "unshelve"
            mem.last_scale_up[g] = now
            active[g] += 1
    # Room on nodes that are up or coming up (being woken: their pods wait for them).
    coming = [scaled[d.node] for d in decisions.values() if d.action == "unshelve"] + [
        n for n in scaled.values() if n.status != "ACTIVE" and n.task_state == "unshelving"
    ]
    up = sorted(
        [n for n in nodes if n.usable or n in coming], key=lambda n: (n not in coming, natural_key(n.name))
    )
    free = {n.name: n.allocatable - _requested(pods, n.name) for n in nodes}
    waiting = []
    expected: dict[str, list[str]] = {}  # node -> pending pods the scheduler will place there
    for p in sorted(pending, key=lambda p: (-p.priority, [-x for x in _size(p.requests)])):
        where = _fit(p, up, free)
        if where:
            expected.setdefault(where, []).append(p.key)
            report[p.key] = (
                f"fits on {where}, which is starting" if by_name[where] in coming else f"fits on {where}"
            )
        else:
            waiting.append(p)

    def age(p: Pod) -> float:
        return now - (p.pending_since if p.pending_since is not None else now)

    placed: dict[str, list[str]] = {}  # group -> pods
    left = list(waiting)
    while left:
        options = []
        for g, gs in sorted(settings.groups.items()):
            if backed_off(g):
                continue
            free_workers = spare(g)
            room = min(len(free_workers), gs.max - active[g])
            if room <= 0:
                continue
            ready_pods = [p for p in left if age(p) >= gs.pending_for]
            fresh = free_workers[:room]
            opened: list[Node] = []
            gfree: dict[str, Resources] = {}
            took = []
            for p in sorted(ready_pods, key=lambda p: [-x for x in _size(p.requests)]):
                if admits(fresh[0], p) is not None or not p.requests.fits_in(room_when_woken(fresh[0], pods)):
                    continue
                where = _fit(p, opened, gfree)
                if where is None and len(opened) < room:
                    n = fresh[len(opened)]
                    opened.append(n)
                    gfree[n.name] = room_when_woken(n, pods)
                    where = _fit(p, [n], gfree)
                if where:
                    took.append(p)
            if took:
                waste = 0.0
                for n in opened:
                    a, f = n.allocatable, gfree[n.name]
                    if a.gpu:
                        waste += f.gpu / a.gpu
                    else:
                        waste += (
                            (f.cpu / a.cpu if a.cpu else 0) + (f.memory / a.memory if a.memory else 0)
                        ) / 2
                options.append((-len(took), waste, len(opened), g, opened, took))
        if not options:
            break
        _, waste, _, g, opened, took = min(options, key=lambda o: o[:4])
        wake.setdefault(g, []).extend(n.name for n in opened)
        placed.setdefault(g, []).extend(p.key for p in took)
        active[g] += len(opened)
        for p in took:
            report[p.key] = f"wakes {g} ({', '.join(n.name for n in opened)})"
        left = [p for p in left if p not in took]

    for p in left:
        report[p.key] = _why_not(p, pods, scaled, settings, mem, active, now, age(p))
    for g, names_ in wake.items():
        for name in names_:
            n = scaled[name]
            decisions[name] = Decision(
                "unshelve",
                name,
                g,
                f"{len(placed[g])} pending pod(s) fit on {len(names_)} {g} worker(s) "
                f"({n.allocatable.show()} each)",
                sorted(placed[g]),
            )
            mem.in_progress[name] = "unshelve"
        mem.last_scale_up[g] = now
    waking = any(d.action == "unshelve" for d in decisions.values())

    # 3. Scale down. A node shelved in this round (in any group) is never room for another's pods;
    # the pending pods the scheduler will place (`expected`) and the pods a shelve in this round
    # moves (`incoming`) take their room first, and a node receiving pods is not shelved.
    allowance: dict[str, int] = {}
    pending_by_key = {p.key: p for p in pending}
    leaving: set[str] = set()
    incoming: dict[str, list[Pod]] = {}  # node -> pods a shelve in this round moves there

    def room_staying(exclude: str) -> tuple[list[Node], dict[str, Resources]]:
        stay = [m for m in nodes if m.usable and m.name != exclude and m.name not in leaving]
        room = {m.name: m.allocatable - _requested(pods, m.name) for m in stay}
        for m in stay:
            for taken in [pending_by_key[k] for k in expected.get(m.name, [])] + incoming.get(m.name, []):
                room[m.name] = room[m.name] - taken.requests
        return stay, room

    for g, gs in sorted(settings.groups.items()):
        members = sorted((n for n in scaled.values() if n.group == g), key=lambda n: natural_key(n.name))
        count = sum(1 for n in members if not n.shelved)
        empty, busy = [], []
        for n in members:
            if n.name in decisions:
                continue
            why = _keep(n, pods, budgets, settings, mem, now, dict(allowance))
            if why is None and n.name in incoming:
                moved = ", ".join(sorted(p.key for p in incoming[n.name]))
                why = (f"pods move here from a worker shelved in this round: {moved}", True)
            if why is None and n.name in expected:
                why = (f"pending pod(s) will run here: {', '.join(sorted(expected[n.name]))}", True)
            if why is not None:
                if why[1]:
                    mem.unneeded_since.pop(n.name, None)
                decisions[n.name] = Decision("noop", n.name, g, why[0])
                continue
            # Unneeded: its idle clock runs, also while scale-down waits — the cluster-autoscaler
            # updates its unneeded nodes on every loop and only the deletion waits for the
            # cooldown (core/static_autoscaler.go: UpdateClusterState, then isScaleDownInCooldown).
            since = mem.unneeded_since.setdefault(n.name, now)
            last = mem.last_scale_up.get(g)
            if last is not None and now - last < settings.scale_down_delay:
                decisions[n.name] = Decision(
                    "noop",
                    n.name,
                    g,
                    f"unneeded for {now - since:.0f}s; group {g} woke a worker {now - last:.0f}s ago: "
                    f"no scale-down for {settings.scale_down_delay:.0f}s",
                )
                continue
            if waking:
                decisions[n.name] = Decision(
                    "noop",
                    n.name,
                    g,
                    f"unneeded for {now - since:.0f}s; a worker is being woken this round: "
                    "nothing is shelved",
                )
                continue
            if now - since < gs.idle:
                decisions[n.name] = Decision(
                    "noop",
                    n.name,
                    g,
                    f"unneeded for {now - since:.0f}s (utilization {utilization(n, pods):.0%}); "
                    f"shelved after {gs.idle:.0f}s",
                )
                continue
            moving = [p for p in _bound(pods, n.name) if not p.daemon and not p.mirror]
            (busy if moving else empty).append(n)
        allowed = count - gs.min
        chosen: list[Node] = []
        for n in sorted(empty, key=lambda n: highest_first(n.name)):
            if len(chosen) < allowed:
                chosen.append(n)
                leaving.add(n.name)
        if not chosen and busy and allowed > 0:
            # One non-empty worker at a time: its pods must fit on the workers that stay.
            for n in sorted(
                busy,
                key=lambda n: (
                    utilization(n, pods),
                    highest_first(n.name),
                ),
            ):
                stay, room = room_staying(n.name)
                moving = [p for p in _bound(pods, n.name) if not p.daemon and not p.mirror]
                destinations = {p.key: _fit(p, stay, room) for p in moving}
                homeless = [k for k, where in destinations.items() if where is None]
                if homeless:
                    decisions[n.name] = Decision(
                        "noop", n.name, g, f"kept: {', '.join(homeless)} would not fit on the nodes that stay"
                    )
                    mem.unneeded_since.pop(n.name, None)
                    continue
                for p in moving:
                    movable(p, settings, budgets, allowance)
                    incoming.setdefault(destinations[p.key], []).append(p)
                chosen.append(n)
                leaving.add(n.name)
                break
        for n in empty + busy:
            if n in chosen:
                moving = [p.key for p in _bound(pods, n.name) if not p.daemon and not p.mirror]
                decisions[n.name] = Decision(
                    "shelve",
                    n.name,
                    g,
                    f"unneeded for {now - mem.unneeded_since[n.name]:.0f}s (utilization "
                    f"{utilization(n, pods):.0%}): " + (f"{len(moving)} pod(s) move" if moving else "empty"),
                    moving,
                )
                mem.in_progress[n.name] = "shelve"
                mem.unneeded_since.pop(n.name, None)
            elif n.name not in decisions:
                why = (
                    f"at min {gs.min}"
                    if len(chosen) >= allowed
                    else "empty workers first, then one non-empty worker at a time"
                )
                decisions[n.name] = Decision("noop", n.name, g, f"unneeded, kept: {why}")

    for n in sorted(nodes, key=lambda n: natural_key(n.name)):
        if n.name not in decisions:
            reason = (
                "control plane: never shelved" if n.control_plane else f"group {n.group} is not autoscaled"
            )
            decisions[n.name] = Decision("noop", n.name, n.group, reason)
    ordered = sorted(decisions.values(), key=lambda d: natural_key(d.node or ""))
    return Plan(ordered, mem, [{"pod": k, "reason": v} for k, v in sorted(report.items())])


def _keep(n, pods, budgets, settings, mem, now, allowance) -> tuple[str, bool] | None:
    """(why the worker is needed — or left alone — and whether that resets its idle time), or
    None: it is unneeded (its idle clock runs)."""
    if n.shelved:
        return f"{n.status} (0 SU): no pending pod needs it", True
    if n.status != "ACTIVE":
        return f"status {n.status}: left alone", True
    if n.task_state:
        return f"Nova task {n.task_state} in progress", True
    if n.name in mem.held:
        return "changed by hand with `invoke scale`: left alone until its idle time has passed", True
    if n.annotations.get(SCALE_DOWN_DISABLED) == "true":
        return f'annotated {SCALE_DOWN_DISABLED}: "true"', True
    if not n.ready:
        return "not Ready: left alone", True
    if n.unschedulable:
        return "cordoned by someone else: left alone", True
    use = utilization(n, pods)
    if use >= settings.utilization_threshold:
        return f"utilization {use:.0%} is not below {settings.utilization_threshold:.0%}", True
    for p in _bound(pods, n.name):
        if p.daemon or p.mirror:
            continue
        why = movable(p, settings, budgets, allowance)
        if why:
            return f"kept by {p.key}: {why}", True
    return None


def _why_not(
    p: Pod,
    pods: list[Pod],
    scaled: dict,
    settings: Settings,
    mem: Memory,
    active: dict,
    now: float,
    age: float,
) -> str:
    """Why a pending pod wakes no worker."""
    groups = [g for g in settings.groups if any(n.group == g for n in scaled.values())]
    if not groups:
        return "no autoscaled group has workers"
    reasons = []
    for g in sorted(groups):
        gs = settings.groups[g]
        sample = next(n for n in sorted(scaled.values(), key=lambda n: natural_key(n.name)) if n.group == g)
        room = room_when_woken(sample, pods)
        if not p.requests.fits_in(room):
            has = sample.allocatable.show()
            if room != sample.allocatable:
                has += f", {room.show()} of it once its DaemonSet pods run"
            reasons.append(f"{g}: needs {p.requests.show()}; a worker of {g} has {has}")
        elif (why := admits(sample, p)) is not None:
            reasons.append(f"{g}: {why}")
        elif age < gs.pending_for:
            reasons.append(f"{g}: pending {age:.0f}s of {gs.pending_for:.0f}s")
        elif mem.backoff.get(g, {}).get("until", 0) > now:
            b = mem.backoff[g]
            reasons.append(
                f"{g}: backed off for {b['until'] - now:.0f}s after a failed unshelve ({b.get('why', '')})"
            )
        elif active.get(g, 0) >= gs.max:
            reasons.append(f"{g}: at max {gs.max} ACTIVE")
        elif stale := [n.name for n in scaled.values() if n.group == g and n.shelved and n.beyond_skew]:
            reasons.append(
                f"{g}: its shelved workers {', '.join(sorted(stale, key=natural_key))} missed upgrades "
                "beyond Kubernetes' version skew: `invoke scale --unshelve --nodes …` upgrades them"
            )
        else:
            reasons.append(f"{g}: no shelved worker left")
    return "wakes nothing: " + "; ".join(reasons)


def backoff_after_failure(memory: Memory, group: str, now: float, why: str) -> Memory:
    """A failed unshelve ("No valid host", ERROR) backs the group off: 5 minutes, then doubling
    up to 30 for each failure in a row; a success clears it (`clear_backoff`)."""
    mem = copy.deepcopy(memory)
    before = mem.backoff.get(group) or {}
    delay = min(BACKOFF_MAX, before["delay"] * 2) if before.get("delay") else BACKOFF_FIRST
    mem.backoff[group] = {"until": now + delay, "delay": delay, "why": why[:200]}
    return mem


def clear_backoff(memory: Memory, group: str) -> Memory:
    mem = copy.deepcopy(memory)
    mem.backoff.pop(group, None)
    return mem
