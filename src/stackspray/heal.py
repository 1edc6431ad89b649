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

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import inventory, kubespray
from .cloudapi import CloudAPI, connect_api
from .cloudops import WaitFailed, act, wait_gone
from .cluster_state import HealAttempt, HealMemory
from .converge import create_cluster
from .errors import StackSprayError
from .heal_check import REBOOT, Rebooter, check, reboot_all, remember
from .heal_plan import REMEDIES, HealStep, backoff_after
from .hibernate_plan import refuse_if_hibernated
from .kube import Kube
from .progress import Progress
from .spec import ClusterSpec, load_spec
from .state import ClusterDir
from .target import resolve

MAX_ROUNDS = 6


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
            state = cdir.load()
            healer = Rebooter(
                name, cdir, say, clock, api or connect_api(state.cloud), kube or Kube(state.kubeconfig)
            )
            now = clock()
            settings = {g.name: g.heal for g in spec.node_groups} if spec else {}
            steps, servers, groups = check(healer.api, healer.kube, name, state, settings, now)
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
            remember(state.heal, steps, now)
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
            result.remedies += reboot_all(healer, cdir, reboots, servers, groups, settings, now)
            if replace is not None:
                assert spec is not None
                _take_out(healer, spec, replace, servers.get(replace.node), cdir.load())
        if replace is not None:
            assert spec is not None
            result.remedies.append(_make_again(healer, spec, replace, root, clock))
    return result


def _take_out(healer: Rebooter, spec: ClusterSpec, step: HealStep, server, state) -> None:
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


def _make_again(healer: Rebooter, spec: ClusterSpec, step: HealStep, root: Path | None, clock) -> dict:
    """The second half: create-cluster's converge makes the server again and joins it."""
    started = time.monotonic()
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
