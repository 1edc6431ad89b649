"""`invoke heal`: find broken workers and bring them back — never a shelved one.

Each round observes the cluster's servers (Nova) and Nodes (Kubernetes), plans with the pure
`heal_plan.plan_heal`, prints the plan (`--dry-run` stops there), and carries out the remedies:
reboots of several nodes at once, each waited on until its Node is Ready again (the group's
`reboot_timeout`); a replacement alone — the Node removed as Kubespray removes an unreachable one
(remove-node.yml with reset_nodes=false, allow_ungraceful_removal=true), the server deleted,
then create-cluster's converge, which makes it again on its own port (same name and address, so
the inventory does not change) and joins it with scale.yml. Rounds repeat while a remedy failed
and the next one is due. What was tried is kept in the cluster's state (`heal`), so an
interrupted heal, or the next one, continues the ladder: an interrupted replacement is finished.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import inventory, kubespray
from .cloudapi import CloudAPI, connect_api
from .cloudops import WaitFailed, act, wait_gone
from .cluster_state import HealAttempt, HealMemory
from .converge import create_cluster
from .errors import StackSprayError
from .heal_plan import REMEDIES, HealStep, NodeHealth, backoff_after, plan_heal
from .hibernate_plan import refuse_if_hibernated
from .kube import SCALE_ANNOTATION, Kube, KubeError
from .names import META_GROUP
from .observe import owned_servers
from .progress import Progress
from .spec import CONTROL_PLANE, ClusterSpec, HealSpec, load_spec
from .state import ClusterDir
from .target import resolve

MAX_ROUNDS = 6
REBOOT = {"soft-reboot": "SOFT", "hard-reboot": "HARD"}


@dataclass
class HealResult:
    """The plan heal found first, and every remedy it carried out."""

    cluster: str
    dry_run: bool
    steps: list[dict] = field(default_factory=list)
    remedies: list[dict] = field(default_factory=list)  # node, remedy, outcome, seconds, detail
    left: list[dict] = field(default_factory=list)  # the last round's steps that are not healthy
    log: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def unresolved(self) -> list[dict]:
        """Nodes left broken: a remedy failed, or held, backed off, or only reported."""
        return [s for s in self.left if s["action"] in ("hold", "backoff", "report", *REMEDIES)]


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


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
            since = _epoch(cond.get("lastTransitionTime"))
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


def _remember(memory: dict[str, HealMemory], steps: list[HealStep], now: float) -> None:
    """Start the clock of newly unhealthy nodes; forget nodes that are healthy again."""
    for step in steps:
        if step.action == "healthy":
            memory.pop(step.node, None)
        elif step.action in ("wait", "hold", "backoff", "report", *REMEDIES):
            mem = memory.setdefault(step.node, HealMemory())
            if mem.unhealthy_since is None:
                mem.unhealthy_since = now


class _Healer:
    def __init__(
        self, name: str, cdir: ClusterDir, spec: ClusterSpec | None, say: Progress, clock, api, kube
    ) -> None:
        self.name, self.cdir, self.spec, self.say, self.clock = name, cdir, spec, say, clock
        state = cdir.load()
        self.api = api or connect_api(state.cloud)
        self.kube = kube or Kube(state.kubeconfig)

    def settings(self) -> dict[str, HealSpec]:
        return {g.name: g.heal for g in self.spec.node_groups} if self.spec else {}

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


def heal(
    name: str,
    *,
    dry_run: bool = False,
    root: Path | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
    api: CloudAPI | None = None,
    kube: Kube | None = None,
) -> HealResult:
    """Observe, plan and remedy the cluster's broken workers (see the module's docstring). `api`,
    `kube`: the cloud and the cluster's API (default: from the state's cloud and kubeconfig)."""
    say = progress or Progress()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    if not state.kubeconfig:
        raise StackSprayError(
            f"cluster {name!r} has no Kubernetes to heal: run `invoke create-cluster` first"
        )
    refuse_if_hibernated(state, "heal")
    spec = load_spec(state.spec) if state.spec and Path(state.spec).exists() else None
    result = HealResult(name, dry_run)
    for _ in range(MAX_ROUNDS):
        replace: HealStep | None = None
        with cdir.command("heal") as run:
            result.log = str(run.log)
            healer = _Healer(name, cdir, spec, say, clock, api, kube)
            state = cdir.load()
            nodes, servers = observe(healer.api, healer.kube, name, list(state.heal))
            blocked = (
                "a credential rotation is pending: run `invoke credentials.refresh` first"
                if state.rotation is not None
                else f"an upgrade to {state.upgrade.to} is unfinished: run `invoke upgrade` again first"
                if state.upgrade is not None
                else None
            )
            now = clock()
            steps = plan_heal(nodes, healer.settings(), state.heal, now, blocked)
            if not result.steps:
                result.steps = [s.to_dict() for s in steps]
                for s in steps:
                    if s.action != "healthy":
                        say(f"{s.node}: {s.action}: {s.reason}")
                if not any(s.action != "healthy" for s in steps):
                    say(f"cluster {name}: every node is healthy")
            result.left = [s.to_dict() for s in steps if s.action != "healthy"]
            if dry_run:
                return result
            _remember(state.heal, steps, now)
            cdir.save(state)
            reboots = [s for s in steps if s.action in REBOOT]
            replace = next((s for s in steps if s.action == "replace"), None)
            if not reboots and replace is None:
                return result
            if replace is not None and spec is None:
                raise StackSprayError(
                    f"{replace.node} needs replacing, which makes its server again from the cluster's spec, "
                    f"and the spec {state.spec!r} is not there: put it back, then re-run heal"
                )
            settings = healer.settings()
            for s in reboots:
                state.heal[s.node].attempts.append(HealAttempt(s.action, now))
            cdir.save(state)
            group = {n.name: n.group for n in nodes}
            timeouts = [(settings.get(group[s.node]) or HealSpec()).reboot_timeout for s in reboots]
            with ThreadPoolExecutor(max_workers=max(1, len(reboots))) as pool:
                done = list(pool.map(healer.reboot, reboots, [servers[s.node] for s in reboots], timeouts))
            state = cdir.load()
            for d in done:
                mem = state.heal.get(d["node"])
                if mem is not None and mem.attempts:
                    mem.attempts[-1].outcome = d["outcome"]
                if d["outcome"] == "ok":
                    state.heal.pop(d["node"], None)
                result.remedies.append({k: v for k, v in d.items() if k != "at"})
            cdir.save(state)
            if replace is not None:
                _take_out(healer, replace, servers.get(replace.node), state)
        if replace is not None:
            result.remedies.append(_make_again(healer, replace, root, clock))
    return result


def _take_out(healer: _Healer, step: HealStep, server, state) -> None:
    """The first half of a replacement, under the cluster's lock: the Node removed the way
    Kubespray removes an unreachable one, the server deleted. Each part recorded as it is done, so
    an interrupted replacement is finished by the next heal."""
    mem = state.heal.setdefault(step.node, HealMemory(unhealthy_since=healer.clock()))
    if not mem.replacing:
        mem.replacing = True
        mem.attempts.append(HealAttempt("replace", healer.clock()))
        healer.cdir.save(state)
    if mem.server_deleted:
        healer.say(f"{step.node}: finishing its replacement")
        return
    healer.say(f"{step.node}: {step.reason}: replace — remove-node.yml (ungraceful), delete the server")
    spec = healer.spec
    assert spec is not None
    conn = healer.api.conn
    if step.node in (healer.cdir.load().kubernetes_nodes or []):
        kubespray.remove_workers(
            conn, spec, healer.cdir, healer.say, [step.node], [step.node], resolve(conn, spec)
        )
    if server is not None:
        act(lambda: healer.api.delete("server", server.id), f"delete server {step.node}")
        wait_gone(lambda: healer.api.find("server", server.id), f"server {step.node} deleted", timeout=600)
    state = healer.cdir.load()
    record = state.servers.get(step.node)
    if record is not None and record.fixed_ip:
        inventory.forget_host_keys(healer.cdir.path, [record.fixed_ip])
    state.heal[step.node].server_deleted = True
    healer.cdir.save(state)


def _make_again(healer: _Healer, step: HealStep, root: Path | None, clock) -> dict:
    """The second half: create-cluster's converge makes the server again and joins it."""
    started = time.monotonic()
    spec = healer.spec
    assert spec is not None
    healer.say(f"{step.node}: replace — create-cluster makes its server again on its port and joins it")
    try:
        create_cluster(spec, progress=healer.say, root=root, command="heal-replace", api=healer.api)
        ok = healer.wait_ready(step.node, max(g.heal.reboot_timeout for g in spec.node_groups))
        detail = "replaced: Ready" if ok else "replaced, but its Node is not Ready"
    except (StackSprayError, WaitFailed) as exc:
        ok, detail = False, f"replacement failed: {exc}"
    state = healer.cdir.load()
    mem = state.heal.get(step.node)
    if ok:
        state.heal.pop(step.node, None)
    elif mem is not None:
        mem.replacing = mem.server_deleted = False
        mem.failed_replacements += 1
        mem.backoff_until = clock() + backoff_after(mem.failed_replacements)
        if mem.attempts:
            mem.attempts[-1].outcome = "failed"
        detail += f"; backing off {backoff_after(mem.failed_replacements):.0f}s"
    healer.cdir.save(state)
    healer.say(f"{step.node}: {detail}")
    return {
        "node": step.node,
        "remedy": "replace",
        "outcome": "ok" if ok else "failed",
        "seconds": round(time.monotonic() - started, 1),
        "detail": detail,
    }
