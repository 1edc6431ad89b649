"""`invoke hibernate` and `invoke wake`: the whole cluster, control plane included, shelved at 0 SU
between uses and brought back in order.

Each command observes the cluster's servers, plans with the pure functions of hibernate_plan.py,
prints the plan (`--dry-run` stops there) and carries it out in phases, each timed. What it has
done is kept in the cluster's state (`hibernation`) from its first step, so a command killed at
any step is finished by running it again, and every other command that needs the cluster running
(scale, autoscale rounds, heal, backup, add-nodes, create-cluster) refuses while the record is
kept, saying why; credentials.refresh defers the rotation to the wake.

Phases take the cluster's lock one at a time (not across the whole command): `wake` itself
calls certs.renew and credentials.refresh, which take it too. The record is what keeps other
commands out in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import certs, certs_renew, cost, etcd_backup, lease
from . import schedule as sched
from .backups import KEY_FILE as BACKUP_KEY
from .backups import BackupStore
from .cloudapi import CloudAPI, connect_api
from .cloudops import PARALLEL, flavors_by_name
from .cluster_state import ClusterState, Hibernation
from .errors import StackSprayError
from .hibernate_plan import (
    SHELVED,
    HibernateError,
    NodeView,
    Step,
    choose_workers,
    plan_hibernate,
    plan_wake,
)
from .kube import Kube, KubeError
from .kubespray import run_ours
from .names import META_GROUP, natural_key
from .observe import flavor_name, owned_servers
from .progress import Progress
from .rotation import refresh
from .scale import Request, ServerWatch, observe_nodes, scale_cluster, server_action, wait_status
from .spec import CONTROL_PLANE
from .state import ClusterDir
from .upgrade import catch_up

API_TIMEOUT = 600.0  # seconds for the woken API server to answer /readyz
READY_TIMEOUT = 600.0  # seconds for a woken worker's Node to be Ready


@dataclass
class HibernateResult:
    """What hibernate or wake planned and did, phase by phase."""

    cluster: str
    command: str  # hibernate | wake
    dry_run: bool
    steps: list[dict] = field(default_factory=list)
    phases: list[dict] = field(default_factory=list)  # phase, seconds, detail
    su_per_hour_before: float = 0.0
    su_per_hour_after: float = 0.0
    still_uses: list[str] = field(default_factory=list)  # quota a hibernated cluster still holds
    warnings: list[str] = field(default_factory=list)
    log: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _observe(api: CloudAPI, name: str, rates: cost.Rates) -> tuple[list[NodeView], dict, float, float]:
    """The nodes, the servers by name, SU/hour now and SU/hour if every server were ACTIVE."""
    servers = {s.name: s for s in owned_servers(api, name)}
    flavors = flavors_by_name(api) if servers else {}
    views, now, full = [], 0.0, 0.0
    for sname, s in servers.items():
        fl = flavor_name(s)
        vcpus = flavors[fl].vcpus if fl in flavors else 0
        now += cost.su_per_hour(fl, vcpus, s.status, rates)
        full += cost.su_if_active(fl, vcpus, rates)
        views.append(
            NodeView(
                name=sname,
                status=s.status,
                control_plane=(s.metadata or {}).get(META_GROUP) == CONTROL_PLANE,
                fault=((getattr(s, "fault", None) or {}).get("message") or ""),
            )
        )
    return views, servers, now, full


def still_uses(state: ClusterState) -> list[str]:
    """What a hibernated cluster still holds of the allocation: shelved servers keep their ports
    and addresses; volumes, the floating IP and the share keep their quota."""
    out = [
        f"{len(state.servers)} shelved server(s): 0 SU/hour; they keep their ports and addresses and, "
        "unless the cloud counts usage from placement, their place in the instance and core quotas"
    ]
    if state.floating_ip:
        out.append(f"floating IP {state.floating_ip.address} (kept: the cluster's address does not change)")
    if state.share and state.share.id:
        out.append("the Manila share (its size counts against the share quota)")
    out.append("the network, subnet, router and security groups (no SU; they count against their quotas)")
    return out


def _backups_set_up(cdir: ClusterDir) -> bool:
    return (cdir.secrets / BACKUP_KEY).exists() or bool(BackupStore(cdir.path).list())


def _kube(state: ClusterState) -> Kube | None:
    return Kube(state.kubeconfig) if state.kubeconfig else None


class _Phases:
    """Each phase of a command timed, said as it starts and ends, recorded in the result."""

    def __init__(self, result: HibernateResult, say: Progress) -> None:
        self.result, self.say = result, say

    def run(self, phase: str, fn: Callable[[], str]) -> None:
        started = time.monotonic()
        self.say(f"{phase}: starting")
        try:
            detail = fn()
        except Exception as exc:
            seconds = round(time.monotonic() - started, 1)
            self.result.phases.append({"phase": phase, "seconds": seconds, "detail": f"FAILED: {exc}"})
            self.say(f"{phase}: FAILED after {seconds:.1f}s: {exc}")
            raise
        seconds = round(time.monotonic() - started, 1)
        self.result.phases.append({"phase": phase, "seconds": seconds, "detail": detail})
        self.say(f"{phase}: {detail} ({seconds:.1f}s)")


def _shelve_all(api: CloudAPI, name: str, servers: dict, nodes: list[str], say: Progress) -> str:
    """Shelve the named servers at once and wait until every one is SHELVED_OFFLOADED."""
    watch = ServerWatch(api, name)

    def one(node: str) -> None:
        s = servers[node]
        server_action(api, s.id, "shelve", SHELVED, f"server {node}", observed=s)
        wait_status(watch, s.id, ("SHELVED_OFFLOADED",), f"server {node}")
        say(f"{node}: SHELVED_OFFLOADED")

    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL, len(nodes)))) as pool:
        list(pool.map(one, nodes))
    return f"{len(nodes)} server(s) SHELVED_OFFLOADED: {', '.join(nodes)}" if nodes else "nothing to shelve"


def _print_plan(steps: list[Step], say: Progress) -> None:
    for s in steps:
        if s.action != "noop":
            say(f"plan: {s.action}{' ' + s.node if s.node else ''} ({s.reason})")


def hibernate(
    name: str,
    *,
    dry_run: bool = False,
    root: Path | None = None,
    progress: Progress | None = None,
    api: CloudAPI | None = None,
) -> HibernateResult:
    """Shelve the whole cluster: the agent stopped, a snapshot when backups are set up, the
    workers shelved (cordoned first), etcd stopped, then the control plane shelved."""
    say = progress or Progress()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    if not state:
        raise HibernateError(f"no cluster {name!r} in {cdir.path}: nothing to hibernate")
    if state.upgrade is not None and state.hibernation is None:
        raise HibernateError(
            f"an upgrade to Kubernetes {state.upgrade.to} is unfinished: finish it with "
            f"`invoke upgrade --cluster {name} --to {state.upgrade.to}` first, then hibernate"
        )
    rates = cost.rates_for(state.su_rates)
    api = api or connect_api(state.cloud)
    nodes, servers, before, _ = _observe(api, name, rates)
    record = state.hibernation
    agent = record.agent if record else bool(state.autoscale and state.autoscale.service == "cluster")
    steps = plan_hibernate(
        nodes,
        record,
        backups=bool(state.kubeconfig) and _backups_set_up(cdir),
        agent=agent,
        rotation_pending=state.rotation is not None,
    )
    result = HibernateResult(
        name, "hibernate", dry_run, [s.to_dict() for s in steps], su_per_hour_before=before
    )
    _print_plan(steps, say)
    if dry_run:
        result.still_uses = still_uses(state)
        return result
    with cdir.run_log("hibernate") as log:
        result.log = str(log)
        phases = _Phases(result, say)
        actions = {s.action for s in steps}
        workers = [s.node for s in steps if s.action == "shelve" and not _is_cp(nodes, s.node)]
        control = [s.node for s in steps if s.action == "shelve" and _is_cp(nodes, s.node)]

        def begin() -> str:
            with cdir.lock("hibernate"):
                st = cdir.load()
                if st.hibernation is None:
                    st.hibernation = Hibernation(
                        phase="hibernating",
                        since=_now(),
                        active_workers=sorted(
                            (n.name for n in nodes if not n.control_plane and n.status == "ACTIVE"),
                            key=natural_key,
                        ),
                        agent=agent,
                    )
                    cdir.save(st)
                if "stop-agent" in actions:
                    run_ours("hibernate.yml", cdir, say, extravars={"hib_phase": "stop-agent"})
                    return "recorded; the autoscaler's agent stopped and disabled"
                return (
                    "recorded (workers ACTIVE: "
                    + (", ".join(cdir.load().hibernation.active_workers) or "none")
                    + ")"
                )

        phases.run("begin", begin)
        if "snapshot" in actions:

            def snapshot() -> str:
                taken = etcd_backup.backup(name, root=root, progress=say, hibernating=True)
                st = cdir.load()
                st.hibernation.snapshot = taken.backup["id"]
                cdir.save(st)
                return f"etcd backup {taken.backup['id']} in {taken.location}"

            phases.run("snapshot", snapshot)

        def sleep_workers() -> str:
            with cdir.lock("hibernate"):
                st = cdir.load()
                kube = _kube(st)
                if kube is None or not workers:
                    return _shelve_all(api, name, servers, workers, say)
                try:
                    with lease.holding(kube, "hibernate", say):
                        for w in workers:
                            try:
                                kube.cordon(w)
                            except KubeError as exc:  # a Node Kubernetes does not know: nothing to cordon
                                say(f"{w}: not cordoned ({exc})")
                        return _shelve_all(api, name, servers, workers, say)
                except KubeError as exc:
                    # The API does not answer (an interrupted hibernate stopped etcd already): the
                    # workers are shelved without their cordon, which the NotReady taint stands in for.
                    say(f"the Kubernetes API does not answer ({exc}): shelving without cordons")
                    return _shelve_all(api, name, servers, workers, say)

        phases.run("workers", sleep_workers)

        def sleep_control_plane() -> str:
            with cdir.lock("hibernate"):
                if "stop-etcd" in actions:
                    up = [n.name for n in nodes if n.control_plane and n.status not in SHELVED]
                    run_ours("hibernate.yml", cdir, say, extravars={"hib_phase": "stop-etcd", "hib_up": up})
                done = _shelve_all(api, name, servers, control, say)
                st = cdir.load()
                st.hibernation.phase = "hibernated"
                st.hibernation.hibernated_at = _now()
                cdir.save(st)
                return ("etcd stopped; " if "stop-etcd" in actions else "") + done

        phases.run("control plane", sleep_control_plane)
        _, _, after, _ = _observe(api, name, rates)
        result.su_per_hour_after = after
        result.still_uses = still_uses(cdir.load())
        return result


def _is_cp(nodes: list[NodeView], name: str) -> bool:
    return any(n.name == name and n.control_plane for n in nodes)


def _wait_api(kube: Kube, timeout: float) -> None:
    deadline, delay = time.monotonic() + timeout, 0.5
    last = ""
    while True:
        try:
            if kube.readyz():
                return
            last = "/readyz is not ok yet"
        except KubeError as exc:
            last = str(exc)
        if time.monotonic() + delay > deadline:
            raise HibernateError(
                f"the API server did not become ready within {timeout:.0f} s of its node answering ({last}); "
                "look at the control-plane node (journalctl -u etcd, the kube-apiserver's logs) and "
                "re-run wake"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def wake(
    name: str,
    *,
    workers: int | None = None,
    dry_run: bool = False,
    root: Path | None = None,
    progress: Progress | None = None,
    api: CloudAPI | None = None,
    api_timeout: float = API_TIMEOUT,
) -> HibernateResult:
    """Bring a hibernated cluster back: control plane, API, certificates, credential, then the
    workers (`workers` None: those ACTIVE before; a number: that many), the agent last."""
    say = progress or Progress()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    if not state:
        raise HibernateError(f"no cluster {name!r} in {cdir.path}: nothing to wake")
    rates = cost.rates_for(state.su_rates)
    api = api or connect_api(state.cloud)
    nodes, servers, before, _ = _observe(api, name, rates)
    record = state.hibernation
    if record is not None and record.phase == "hibernating":
        raise HibernateError(
            f"cluster {name!r} is still going to sleep (an interrupted hibernate, started {record.since}): "
            f"finish it with `invoke hibernate --cluster {name}`, then wake it"
        )
    agent = bool(record and record.agent)
    steps = plan_wake(nodes, record, want=workers, agent=agent)
    result = HibernateResult(name, "wake", dry_run, [s.to_dict() for s in steps], su_per_hour_before=before)
    _print_plan(steps, say)
    if dry_run or all(s.action == "noop" for s in steps):
        result.su_per_hour_after = before
        return result
    with cdir.run_log("wake") as log:
        result.log = str(log)
        phases = _Phases(result, say)
        control = [s.node for s in steps if s.action == "unshelve" and _is_cp(nodes, s.node)]
        chosen = choose_workers([n for n in nodes if not n.control_plane], record, workers)

        def control_plane() -> str:
            with cdir.lock("wake"):
                st = cdir.load()
                if st.hibernation is None:
                    st.hibernation = Hibernation(phase="waking", since=_now())
                st.hibernation.phase = "waking"
                cdir.save(st)
                watch = ServerWatch(api, name)

                def one(node: str) -> None:
                    s = servers[node]
                    try:
                        server_action(api, s.id, "unshelve", ("ACTIVE",), f"server {node}", observed=s)
                        wait_status(watch, s.id, ("ACTIVE",), f"server {node}")
                    except StackSprayError as exc:
                        raise HibernateError(
                            f"{exc}. The control plane did not come back, so no worker was touched. "
                            "'No valid host' means the cloud has no room for its flavor now: try again "
                            "later (re-run wake) or ask the cloud's help desk; see "
                            f"`openstack server show {node}`"
                        ) from None
                    say(f"{node}: ACTIVE")

                with ThreadPoolExecutor(max_workers=max(1, len(control))) as pool:
                    list(pool.map(one, control))
                return f"{len(control)} control-plane server(s) ACTIVE" if control else "already ACTIVE"

        phases.run("control plane", control_plane)

        def api_ready() -> str:
            try:
                run_ours("hibernate.yml", cdir, say, extravars={"hib_phase": "check"})
            except StackSprayError as exc:
                raise HibernateError(
                    f"the control plane is ACTIVE but not healthy: {exc}. Look at its console "
                    "(openstack console log show), hard-reboot it if it never answers SSH "
                    "(openstack server reboot --hard), then re-run wake; no worker was touched"
                ) from None
            st = cdir.load()
            if st.kubeconfig:
                _wait_api(Kube(st.kubeconfig), api_timeout)
                return "SSH answers, etcd healthy, /readyz ok"
            return "SSH answers, etcd healthy (no Kubernetes: --no-kubernetes cluster)"

        phases.run("api", api_ready)
        if state.kubeconfig:
            phases.run("certificates", lambda: _certificates(name, root, say))
            phases.run("credential", lambda: _credential(name, root, say, result))

        def wake_workers() -> str:
            if not chosen:
                return "none asked: every worker stays shelved"
            st = cdir.load()
            if not st.kubeconfig:
                views, srv, _, _ = observe_nodes(api, None, name, rates=rates)
                todo = [v.name for v in views if v.name in chosen and v.status in SHELVED]
                watch = ServerWatch(api, name)
                for n in todo:
                    server_action(api, srv[n].id, "unshelve", ("ACTIVE",), f"server {n}", observed=srv[n])
                for n in todo:
                    wait_status(watch, srv[n].id, ("ACTIVE",), f"server {n}")
                return f"{len(todo)} worker(s) ACTIVE"
            scaled = scale_cluster(
                name,
                Request(unshelve="all", nodes=tuple(chosen)),
                progress=say,
                root=root,
                api=api,
                ready_timeout=READY_TIMEOUT,
                waking=True,
                catch_up=lambda node: catch_up(name, node, root=root, say=say),
            )
            bad = [f"{s.node}: {s.detail}" for s in scaled.steps if s.outcome in ("failed", "blocked")]
            if bad:
                raise HibernateError("workers not woken: " + "; ".join(bad) + " — re-run wake to finish")
            return f"{len(chosen)} worker(s) ACTIVE, Ready and uncordoned: {', '.join(chosen)}"

        phases.run("workers", wake_workers)

        def finish() -> str:
            with cdir.lock("wake"):
                if agent:
                    run_ours("hibernate.yml", cdir, say, extravars={"hib_phase": "start-agent"})
                st = cdir.load()
                st.hibernation = None
                cdir.save(st)
                return ("the autoscaler's agent started; " if agent else "") + "the cluster is awake"

        phases.run("finish", finish)
        _, _, after, _ = _observe(api, name, rates)
        result.su_per_hour_after = after
        return result


def _certificates(name: str, root: Path | None, say: Progress) -> str:
    state = ClusterDir(name, root).load()
    serving = next((e for e in certs.check(state.kubeconfig, name) if e.what == certs.SERVING), None)
    if serving is not None and serving.level in ("expired", "warning"):
        say(f"{serving.what}: {serving.detail}: renewing")
        certs_renew.renew(name, root=root, progress=say)
        return f"renewed ({serving.detail} before)"
    return serving.detail if serving else "no serving certificate read"


def _credential(name: str, root: Path | None, say: Progress, result: HibernateResult) -> str:
    state = ClusterDir(name, root).load()
    if state.credential is None:
        return "the cluster has no application credential of its own"
    done = refresh(name, root=root, progress=say)
    result.warnings += done.warnings
    if done.outcome == "rotated":
        return f"rotated: {done.previous['name']} -> {done.credential['name']}"
    return f"{done.credential['name']}: {done.days_left:.0f} days left"


# -- schedules ---------------------------------------------------------------------------------


def schedule(
    command: str, cluster: str, *, at: str, days: str | None, workers: int | None = None, root=None
) -> dict:
    """Install a timer (or crontab entry) running `hibernate` or `wake` for the cluster at `at`."""
    if not ClusterDir(cluster, root).exists():
        raise HibernateError(f"no cluster {cluster!r} here: create it with `invoke create-cluster` first")
    when = sched.parse_when(at, days)
    args: tuple[str, ...] = (command, "--cluster", cluster)
    if command == "wake" and workers is not None:
        if workers < 0:
            raise HibernateError(f"--workers: the number of ACTIVE workers must be 0 or more, got {workers}")
        args += ("--workers", str(workers))
    return sched.install(sched.Job(cluster, f"{command}-{when.label()}", args, when))
