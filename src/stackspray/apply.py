"""Carrying out a plan against the cloud, walking the registry of resource kinds.

create-cluster (`Applier.run`): first the removals the plan holds (servers beyond a group's
count or in ERROR, their ports, a share in error, DNS records the spec no longer names), phase by
phase in `DESTROY_ORDER`; then every kind's creates and updates as a graph — a kind starts as
soon as the kinds it depends on (`DEPENDS_ON`) are done, so the network, security groups, keypair,
server groups and share go at once, the floating IP goes on its port while the servers boot.
Every create goes through `cloudops.ensure`, so an interrupted run is finished by running again.

destroy-cluster (`destroy`): the same kinds' `delete`, phase by phase in `DESTROY_ORDER`, each
phase's calls at once.
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from .cloudapi import CloudAPI
from .cloudops import PARALLEL
from .cluster_state import Server
from .names import META_GROUP
from .progress import Progress
from .resources import BY_KIND, DESTROY_ORDER, KINDS
from .resources.base import Action, ApplyContext, Observed, results
from .resources.server import flavor_name
from .spec import ClusterSpec
from .state import ClusterDir

log = logging.getLogger(__name__)

__all__ = ["Applier", "Progress", "destroy", "server_record"]


class Applier:
    """One create-cluster's apply: the plan's actions carried out kind by kind."""

    def __init__(
        self, api: CloudAPI, spec: ClusterSpec, cdir: ClusterDir, progress: Progress, obs: Observed
    ) -> None:
        self.ctx = ApplyContext(api, spec, cdir, progress, obs)

    @property
    def listed_servers(self) -> list | None:
        """The cluster's servers as the last boot wait listed them (None: none was booted)."""
        return self.ctx.listed_servers

    def run(self, actions: list[Action]) -> None:
        try:
            removals = [a for a in actions if a.kind == "delete"]
            if removals:
                delete_phases(self.ctx.api, removals, self.ctx.say, self.ctx.pool, each=True)
            by: dict[str, list[Action]] = {k.KIND: [] for k in KINDS}
            for a in actions:
                if a.kind != "delete" and a.resource in by:
                    by[a.resource].append(a)
            for kind in KINDS:
                if hasattr(kind, "prefetch"):
                    kind.prefetch(self.ctx, by[kind.KIND])
            run_graph({k.KIND: (lambda k=k: k.apply(self.ctx, by[k.KIND])) for k in KINDS})
        finally:
            self.ctx.close()


def run_graph(jobs: dict[str, object]) -> None:
    """Run each kind's job once the kinds it depends on are done (independent ones at once).
    After a failure nothing new starts; the running ones finish, then the first failure is
    raised (several: all named)."""
    deps = {kind: set(BY_KIND[kind].DEPENDS_ON) & set(jobs) for kind in jobs}
    done: set[str] = set()
    running: dict[Future, str] = {}
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=len(jobs) or 1) as pool:
        while True:
            if not errors:
                for kind in jobs:
                    if kind not in done and kind not in running.values() and deps[kind] <= done:
                        running[pool.submit(jobs[kind])] = kind
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                kind = running.pop(f)
                try:
                    f.result()
                    done.add(kind)
                except Exception as exc:  # noqa: BLE001 (raised below, once every job has ended)
                    errors.append(exc)
    if errors:
        results([_failed(e) for e in errors])


def _failed(exc: BaseException) -> Future:
    f: Future = Future()
    f.set_exception(exc)
    return f


def delete_phases(
    api: CloudAPI,
    actions: list[Action],
    say: Progress,
    pool: ThreadPoolExecutor | None = None,
    each: bool = False,
) -> dict[str, int]:
    """Each action's kind deletes it (or, for an adopted floating IP, releases it), phase by
    phase in `DESTROY_ORDER`, each phase's calls at once; every call is idempotent (a re-run
    after a kill finishes the job). `each`: one progress line per resource with its reason
    (create-cluster's removals), else one per phase. Returns how many of each kind were deleted."""
    by: dict[str, list[Action]] = {}
    for a in actions:
        if a.kind != "noop":
            by.setdefault(a.resource, []).append(a)
    own_pool = pool is None
    pool = pool or ThreadPoolExecutor(max_workers=PARALLEL)
    done: dict[str, int] = {}
    try:
        for kind in DESTROY_ORDER:
            phase = by.get(kind, [])
            if not phase:
                continue
            results([pool.submit(BY_KIND[kind].delete, api, a) for a in phase])
            done[kind] = len(phase)
            if each:
                for a in phase:
                    say(f"deleted {kind} {a.name} ({a.reason})")
            else:
                verb = "released" if kind == "floating-ip" and phase[0].kind == "update" else "deleted"
                say(f"{verb} {len(phase)} {kind}(s): {', '.join(a.name for a in phase)}")
    finally:
        if own_pool:
            pool.shutdown(wait=True)
    return done


def destroy(api: CloudAPI, actions: list[Action], say: Progress) -> dict[str, int]:
    """Carry out `plan.plan_destroy`'s actions (see `delete_phases`)."""
    return delete_phases(api, actions, say)


def server_record(s, floating_by_fixed: dict[str, str] | None = None) -> Server:
    """What the state file keeps of a server (floating IPs from Neutron when given)."""
    fixed, floating = None, None
    for addrs in (s.addresses or {}).values():
        for ad in addrs:
            if ad.get("OS-EXT-IPS:type") == "floating":
                floating = ad["addr"]
            elif ad.get("version") == 4 and fixed is None:
                fixed = ad["addr"]
    floating = (floating_by_fixed or {}).get(fixed, floating)
    return Server(
        id=s.id,
        status=s.status,
        flavor=flavor_name(s),
        fixed_ip=fixed,
        floating_ip=floating,
        group=(s.metadata or {}).get(META_GROUP),
    )
