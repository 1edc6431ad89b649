"""invoke autoscale.enable, .limits, .schedule, .disable, .status: where the autoscaler's loop
runs and with which settings.

The loop itself (autoscale.py) runs either on the cluster — the agent on its first control-plane
node (autoscale_agent.py, installed by agent_install.py), the default — or on this machine: a
systemd user service, else a crontab entry (schedule.py). The settings live in the cluster's
state.json (`autoscale`) and, for the agent, in its settings ConfigMap, written together.
"""

from __future__ import annotations

import calendar
import datetime as dt
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import agent_install, autoscale_agent, autoscale_windows, cost, names
from . import schedule as sched
from .autoscale import (
    MEMORY_FILE,
    SHELVED,
    AutoscaleError,
    cluster_dir_and_state,
    events,
    iso,
    load_book,
    plan_round,
)
from .cloudapi import connect_api
from .cluster_state import Autoscale, AutoscaleGroup, AutoscaleWindow, ClusterState, HealSettings
from .errors import StackSprayError
from .hibernate_plan import hibernated_refusal, refuse_if_hibernated
from .kube import Kube
from .progress import Progress
from .spec import CONTROL_PLANE, load_spec, parse_duration
from .state import ClusterDir


def _spec_defaults(state: ClusterState, group: str, flags_given: bool):
    """The spec's `autoscale` of the group. A spec that no longer loads (moved, or broken) is said
    so — unless --min and --max are given, which then decide — never silently replaced by
    defaults (min 0, max every worker)."""
    if not state.spec:
        return None
    try:
        g = load_spec(state.spec).group(group)
    except (OSError, StackSprayError) as exc:
        if flags_given:
            return None
        raise AutoscaleError(
            f"the cluster's spec {state.spec} does not load ({str(exc).splitlines()[0]}), so its "
            f"`autoscale` settings are unknown: give --min and --max, or fix the spec"
        ) from None
    return g.autoscale if g else None


@dataclass
class AutoscaleEnabled:
    cluster: str
    group: str
    settings: dict
    service: dict | None

    def to_dict(self) -> dict:
        return {"cluster": self.cluster, "settings": self.settings, "service": self.service}


@dataclass
class AutoscaleLimits:
    cluster: str
    group: str
    min: int
    max: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AutoscaleDisabled:
    cluster: str
    removed: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class HealSwitched:
    """heal.enable / heal.disable: whether the autoscaler's round checks and reboots broken nodes."""

    cluster: str
    heal: dict[str, dict]  # group -> its settings; empty: off
    loop: str | None  # where the round runs: cluster (the agent) | systemd | cron | None
    replaces: str  # who replaces a node that reboots did not bring back

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AutoscaleStatus:
    cluster: str
    status: dict

    def to_dict(self) -> dict:
        return self.status


def enable(
    cluster: str,
    *,
    group: str = "workers",
    min_: int | None = None,
    max_: int | None = None,
    idle: str | float | None = None,
    pending_for: str | float | None = None,
    scale_down_delay: str | float | None = None,
    skip_nodes_with_local_storage: bool = True,
    skip_nodes_with_system_pods: bool = True,
    service: bool = True,
    on: str | None = None,
    root: Path | None = None,
    progress: Progress | None = None,
) -> AutoscaleEnabled:
    """Autoscale one group of the cluster (settings kept in its state) and install the loop.
    `on="cluster"` (the default when the cluster's API answers): the agent on the first
    control-plane node (autoscale_agent.py), and no loop on this machine. `on="here"`: a systemd
    user service where a user manager runs, else a crontab entry running `--once` each minute —
    refused where neither would ever run. `service=False`: settings only."""
    say = progress or Progress()
    if on not in (None, "cluster", "here"):
        raise AutoscaleError(f"--on: expected cluster or here, got {on!r}")
    cdir, state = cluster_dir_and_state(cluster, root)
    refuse_if_hibernated(state, "autoscale settings")
    members = sorted(n for n, s in state.servers.items() if s.group == group)
    if group == CONTROL_PLANE:
        raise AutoscaleError("--group: the control plane is never shelved; autoscale a workers' group")
    if not members:
        known = sorted({s.group for s in state.servers.values() if s.group and s.group != CONTROL_PLANE})
        raise AutoscaleError(
            f"--group: cluster {cluster!r} has no group {group!r} (groups: {', '.join(known) or 'none'})"
        )
    # A flag left out keeps what an earlier enable set, else the spec's value, else the default.
    spec = (state.autoscale.groups.get(group) if state.autoscale else None) or _spec_defaults(
        state, group, flags_given=min_ is not None and max_ is not None
    )
    lo = min_ if min_ is not None else (spec.min if spec else 0)
    hi = max_ if max_ is not None else (spec.max if spec else len(members))
    if lo < 0:
        raise AutoscaleError(f"--min: must be 0 or more, got {lo}")
    if hi < 1 or hi < lo:
        raise AutoscaleError(f"--max: must be at least 1 and at least --min ({lo}), got {hi}")
    if hi > len(members):
        raise AutoscaleError(
            f"--max: group {group} has {len(members)} worker(s), got {hi}: autoscaling wakes shelved "
            "workers and adds none (raise the count with `invoke add-nodes` first)"
        )
    try:
        idle_s = parse_duration(idle, "--idle") if idle is not None else (spec.idle if spec else 1800.0)
        pending_s = (
            parse_duration(pending_for, "--pending-for")
            if pending_for is not None
            else (spec.pending_for if spec else 30.0)
        )
        delay_s = (
            parse_duration(scale_down_delay, "--scale-down-delay") if scale_down_delay is not None else None
        )
    except ValueError as exc:
        raise AutoscaleError(str(exc)) from None
    with cdir.lock("autoscale.enable"):
        state = cdir.load()
        auto = state.autoscale or Autoscale()
        auto.groups[group] = AutoscaleGroup(lo, hi, idle_s, pending_s)
        if delay_s is not None:
            auto.scale_down_delay = delay_s
        auto.skip_nodes_with_local_storage = skip_nodes_with_local_storage
        auto.skip_nodes_with_system_pods = skip_nodes_with_system_pods
        auto.enabled_at = auto.enabled_at or iso(time.time())
        installed = None
        if service:
            where = on or _default_place(state, say)
            if where == "cluster":
                installed = _install_agent(cluster, cdir, state, auto, say)
            else:
                installed = sched.install_service(
                    cluster,
                    names.AUTOSCALE_JOB,
                    ("autoscale.run", "--cluster", cluster),
                    ("autoscale.run", "--cluster", cluster, "--once"),
                )
                if state.autoscale and state.autoscale.service == "cluster":
                    say("removing the agent from the cluster: the loop runs here now")
                    agent_install.remove(cluster, cdir, state, say)
                auto.agent_build = auto.agent_node = None
            auto.service = installed["backend"]
        state.autoscale = auto
        cdir.save(state)
    return AutoscaleEnabled(cluster, group, asdict(auto), installed)


def _default_place(state: ClusterState, say: Progress) -> str:
    """The cluster when its API answers; else here, said so."""
    try:
        Kube(state.kubeconfig).nodes()
        return "cluster"
    except StackSprayError as exc:
        say(
            f"the cluster's API does not answer ({str(exc).splitlines()[0]}): the loop runs on this "
            "machine; run `autoscale.enable` again when the cluster is up to move it onto the cluster"
        )
        return "here"


def _install_agent(
    cluster: str, cdir: ClusterDir, state: ClusterState, auto: Autoscale, say: Progress
) -> dict:
    """The agent on the cluster; then no loop of this machine runs the rounds."""
    done = agent_install.install(cluster, cdir, state, auto, say)
    local = sched.remove_service(cluster, names.AUTOSCALE_JOB)
    if local:
        say(f"removed this machine's loop ({', '.join(local)}): the agent runs the rounds now")
    auto.agent_build, auto.agent_node = done.build, done.node
    return {
        "backend": "cluster",
        "id": names.AUTOSCALE_JOB,
        "where": f"agent on {done.node}, stackspray {done.version} build {done.build}",
        "node": done.node,
        "build": done.build,
        "version": done.version,
        "seconds": done.seconds,
    }


def set_limits(
    cluster: str,
    *,
    group: str = "workers",
    min_: int | None = None,
    max_: int | None = None,
    root: Path | None = None,
) -> AutoscaleLimits:
    """Change an autoscaled group's min and/or max (what `autoscale.schedule` runs at its times):
    a raised min wakes workers on the next round, a lowered max lets idle ones go."""
    cdir, state = cluster_dir_and_state(cluster, root)
    refuse_if_hibernated(state, "autoscale settings")
    with cdir.lock("autoscale.limits"):
        state = cdir.load()
        g = state.autoscale.groups.get(group) if state.autoscale else None
        if g is None:
            raise AutoscaleError(
                f"--group: {group!r} of cluster {cluster!r} is not autoscaled: `invoke autoscale.enable "
                f"--cluster {cluster} --group {group}` first"
            )
        members = sum(1 for s in state.servers.values() if s.group == group)
        lo = g.min if min_ is None else min_
        hi = g.max if max_ is None else max_
        if lo < 0 or hi < 1 or lo > hi or hi > members:
            raise AutoscaleError(
                f"--min/--max: need 0 <= min <= max <= {members} (the group's workers) and max >= 1, "
                f"got min {lo}, max {hi}"
            )
        g.min, g.max = lo, hi
        if state.autoscale.service == "cluster":
            # The agent reads its settings from the cluster: written there first, so a failure
            # leaves both as they were.
            autoscale_agent.write_settings(
                Kube(state.kubeconfig), cluster, state.autoscale, cost.shipped(state.su_rates)
            )
        cdir.save(state)
    return AutoscaleLimits(cluster, group, lo, hi)


def schedule_limits(
    cluster: str,
    *,
    at: str,
    group: str = "workers",
    min_: int | None = None,
    max_: int | None = None,
    days: str | None = None,
    root: Path | None = None,
) -> dict:
    """A timer (or crontab entry) that sets the group's min/max at a time of day — a window for a
    class at 10:00 — instead of fighting the loop with `invoke scale`."""
    _, state = cluster_dir_and_state(cluster, root)
    if not state.autoscale or group not in state.autoscale.groups:
        raise AutoscaleError(f"--group: {group!r} is not autoscaled: `invoke autoscale.enable` it first")
    if min_ is None and max_ is None:
        raise AutoscaleError("give --min N and/or --max N: what the window sets")
    when = sched.parse_when(at, days)
    if state.autoscale.service == "cluster":
        return _agent_window(cluster, root, group, at, days, when, min_, max_)
    args = ["autoscale.limits", "--cluster", cluster, "--group", group]
    args += ["--min", str(min_)] if min_ is not None else []
    args += ["--max", str(max_)] if max_ is not None else []
    return sched.install(sched.Job(cluster, f"autoscale-{group}-{when.label()}", tuple(args), when))


def set_heal(cluster: str, on: bool, *, root: Path | None = None) -> HealSwitched:
    """heal.enable / heal.disable: heal's check in every round of the autoscaler's loop, with each
    group's settings from the spec (node_groups.<g>.heal, defaults where the spec is not at
    hand). The round reboots; a replacement needs Kubespray, so the loop on this machine runs
    `invoke heal` for it, and the agent on the cluster reports it."""
    cdir, state = cluster_dir_and_state(cluster, root)
    refuse_if_hibernated(state, "heal settings")
    if on and not state.autoscale:
        raise AutoscaleError(
            f"heal runs in the autoscaler's round, and cluster {cluster!r} has no autoscaler: "
            f"`invoke autoscale.enable --cluster {cluster}` first (with --min equal to the group's "
            "count, it never shelves a worker)"
        )
    spec = None
    if state.spec and Path(state.spec).exists():
        try:
            spec = load_spec(state.spec)
        except StackSprayError:
            spec = None
    groups = sorted({s.group for s in state.servers.values() if s.group})
    with cdir.lock("heal.enable" if on else "heal.disable"):
        state = cdir.load()
        if state.autoscale is None:
            return HealSwitched(cluster, {}, None, "nobody: heal is off")
        settings = {}
        for g in groups:
            h = spec.group(g).heal if spec and spec.group(g) else None
            settings[g] = (
                HealSettings(h.unhealthy_for, str(h.max_unhealthy), h.reboot_timeout) if h else HealSettings()
            )
        state.autoscale.heal = settings if on else {}
        if state.autoscale.service == "cluster":
            autoscale_agent.write_settings(
                Kube(state.kubeconfig), cluster, state.autoscale, cost.shipped(state.su_rates)
            )
        cdir.save(state)
    service = state.autoscale.service
    replaces = (
        "nobody: heal is off"
        if not on
        else f"you: the agent reports it, run `invoke heal --cluster {cluster}`"
        if service == "cluster"
        else "the loop on this machine (invoke heal, after the round)"
        if service in ("systemd", "cron")
        else f"whoever runs `invoke autoscale.run --cluster {cluster}` (no loop is installed)"
    )
    return HealSwitched(cluster, {g: asdict(h) for g, h in state.autoscale.heal.items()}, service, replaces)


def _agent_window(
    cluster: str,
    root: Path | None,
    group: str,
    at: str,
    days: str | None,
    when: sched.When,
    min_: int | None,
    max_: int | None,
) -> dict:
    """A window the agent on the cluster applies at its time (kept in its settings ConfigMap, and
    in the state): nothing is installed on this machine."""
    cdir, state = cluster_dir_and_state(cluster, root)
    members = sum(1 for s in state.servers.values() if s.group == group)
    if (min_ is not None and not 0 <= min_ <= members) or (max_ is not None and not 1 <= max_ <= members):
        raise AutoscaleError(
            f"--min/--max: need 0 <= min and 1 <= max, both at most {members} (the group's workers)"
        )
    if min_ is not None and max_ is not None and min_ > max_:
        raise AutoscaleError(f"--min/--max: min {min_} is more than max {max_}")
    wid = f"{names.AUTOSCALE_JOB}-{group}-{when.label()}"
    window = AutoscaleWindow(
        wid, group, f"{when.hour:02d}:{when.minute:02d}", (days or "").strip().lower(),
        min_, max_, autoscale_windows.local_zone(), time.time(),
    )  # fmt: skip
    with cdir.lock("autoscale.schedule"):
        state = cdir.load()
        auto = state.autoscale
        assert auto is not None
        auto.windows = [w for w in auto.windows if w.id != wid] + [window]
        autoscale_agent.write_settings(Kube(state.kubeconfig), cluster, auto, cost.shipped(state.su_rates))
        cdir.save(state)
    return {
        "backend": "cluster",
        "id": wid,
        "when": f"{when.on_calendar()} {window.tz}",
        "where": f"the agent's settings (ConfigMap {autoscale_agent.NAMESPACE}/{autoscale_agent.SETTINGS}); "
        "nothing runs on this machine",
    }


def windows(cluster: str, root: Path | None = None) -> list[dict]:
    """The windows the agent on the cluster applies, as `--list` shows scheduled jobs."""
    _, state = cluster_dir_and_state(cluster, root)
    out = []
    for w in state.autoscale.windows if state.autoscale else []:
        limits = " ".join(f"--{k} {v}" for k, v in (("min", w.min), ("max", w.max)) if v is not None)
        out.append(
            {
                "id": w.id,
                "backend": "cluster",
                "when": f"{autoscale_windows.when_of(w).on_calendar()} {w.tz}",
                "command": f"autoscale.limits --cluster {cluster} --group {w.group} {limits} (by the agent)",
            }
        )
    return out


def remove_window(cluster: str, wid: str, root: Path | None = None) -> list[str]:
    """Remove windows of the agent (`all`: every one); the ids removed."""
    cdir, state = cluster_dir_and_state(cluster, root)
    if not state.autoscale or not state.autoscale.windows:
        return []
    with cdir.lock("autoscale.schedule"):
        state = cdir.load()
        auto = state.autoscale
        assert auto is not None
        gone = [w.id for w in auto.windows if wid in ("all", w.id)]
        if gone:
            auto.windows = [w for w in auto.windows if w.id not in gone]
            if auto.service == "cluster":
                autoscale_agent.write_settings(
                    Kube(state.kubeconfig), cluster, auto, cost.shipped(state.su_rates)
                )
            cdir.save(state)
    return gone


def disable(cluster: str, *, root: Path | None = None, progress: Progress | None = None) -> AutoscaleDisabled:
    """Remove the loop (the agent on the cluster, a service or crontab entry), its windows and
    the settings; workers stay as they are."""
    cdir = ClusterDir(cluster, root)
    removed = []
    state = cdir.load()
    if state and state.autoscale and state.autoscale.service == "cluster":
        refuse_if_hibernated(state, "autoscale.disable (the agent is removed from the control plane)")
        removed += agent_install.remove(cluster, cdir, state, progress or Progress())
    removed += sched.remove_service(cluster, names.AUTOSCALE_JOB)
    # Its windows (autoscale.schedule) would fail every time without the settings.
    windows = [j["id"] for j in sched.list_jobs(cluster) if j["id"].startswith(f"{names.AUTOSCALE_JOB}-")]
    for job in windows:
        sched.remove(cluster, job)
    removed += [f"window {w}" for w in windows]
    if cdir.load():
        with cdir.lock("autoscale.disable"):  # the loop changes both only under this lock too
            state = cdir.load()
            state.autoscale = None
            cdir.save(state)
            (cdir.path / MEMORY_FILE).unlink(missing_ok=True)
    return AutoscaleDisabled(cluster, removed)


# -- status ---------------------------------------------------------------------------------------


def _epoch_of(iso: str | None) -> float | None:
    try:
        return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) if iso else None
    except ValueError:
        return None


def loop_warning(
    cluster: str, enabled: bool, service: str | None, last_round: str | None, auto, now: float
) -> str | None:
    """What status says when the loop is silent: enabled, but no round completed within three of
    its intervals (10 s as a service, a minute from crontab) — a loop nothing runs is never shown
    as if it ran."""
    if not enabled:
        return None
    if service is None:
        return "no loop is installed: nothing runs the rounds (`autoscale.enable` installs one)"
    interval = 60.0 if service == "cron" else 10.0
    since = _epoch_of(last_round) or _epoch_of(getattr(auto, "enabled_at", None))
    if since is None or now - since <= 3 * interval:
        return None
    what = (
        f"the last round ended {now - since:.0f}s ago"
        if last_round
        else f"enabled {now - since:.0f}s ago, no round yet"
    )
    start = (
        "is the cron daemon running (`service cron status`)?"
        if service == "cron"
        else f"see `systemctl --user status {names.schedule_unit(cluster, names.AUTOSCALE_JOB)}`"
    )
    return f"the loop is silent: {what}, it runs every {interval:.0f}s — {start}"


@dataclass
class _Decided:
    """The agent's last round, read like a plan."""

    summary: dict

    @property
    def pending(self) -> list[dict]:
        return self.summary.get("pending") or []

    @property
    def decisions(self) -> list:
        return [_Decision(d) for d in self.summary.get("decisions") or []]

    @property
    def actions(self) -> list:
        return [d for d in self.decisions if d.action in ("shelve", "unshelve")]


class _Decision(dict):
    def __getattr__(self, name: str):
        return self.get(name)


def _agent_status(out: dict, state: ClusterState, last: int) -> dict | None:
    """Fill `out` from the agent's status ConfigMap (autoscale_agent.py); its last round."""
    try:
        agent = autoscale_agent.read_status(Kube(state.kubeconfig))
    except StackSprayError as exc:
        out["agent"] = None
        out["warning"] = f"the cluster's API does not answer, so the agent's state is unknown: {exc}"
        return None
    node = state.autoscale.agent_node or "the first control-plane node"
    look = f"on {node}: `journalctl -u {autoscale_agent.UNIT}`"
    if agent is None:
        out["agent"] = None
        out["warning"] = f"the agent has written no status yet ({look})"
        return None
    out["agent"] = {
        "node": agent.host,
        "version": agent.version,
        "build": agent.build,
        "credential_id": agent.credential_id,
        "updated": agent.updated,
        "error": agent.error,
    }
    out["events"] = agent.events[-last:]
    out["last_round"] = (agent.last_round or {}).get("at")
    age = time.time() - (_epoch_of(agent.updated) or 0)
    if age > 3 * autoscale_agent.INTERVAL:
        out["warning"] = f"the agent is silent: its status was last written {age:.0f}s ago ({look})"
    elif agent.error:
        out["warning"] = f"the agent's last round failed: {agent.error} ({look})"
    elif state.autoscale.agent_build and agent.build != state.autoscale.agent_build:
        out["warning"] = (
            f"the agent runs build {agent.build}, autoscale.enable installed {state.autoscale.agent_build}"
        )
    else:
        out["warning"] = None
    return agent.last_round


def status(cluster: str, *, root: Path | None = None, last: int = 10) -> AutoscaleStatus:
    """Settings, where the loop runs, per group ACTIVE/shelved/min/max, pending pods, the next
    decision, SU/hour now, SU saved today, the last events."""
    cdir, state = cluster_dir_and_state(cluster, root)
    on_cluster = bool(state.autoscale and state.autoscale.service == "cluster")
    out: dict = {
        "cluster": cluster,
        "enabled": bool(state.autoscale and state.autoscale.groups),
        "settings": asdict(state.autoscale) if state.autoscale else None,
        "service": "cluster" if on_cluster else sched.service_installed(cluster, names.AUTOSCALE_JOB),
        "events": events(cdir, last),
    }
    book = load_book(cdir)
    today = dt.date.today().isoformat()
    out["su_saved_today"] = (
        (book.get("saved") or {}).get("su", 0.0) if (book.get("saved") or {}).get("day") == today else 0.0
    )
    out["last_round"] = (book.get("last") or {}).get("at")
    asleep = hibernated_refusal(state, "the autoscaler")
    if asleep:  # nothing runs to be asked: say so rather than call a silent loop broken
        out["warning"] = f"paused: {asleep}"
        out.update(groups={}, pending=[], next=[], nodes={}, su_per_hour=0.0)
        return AutoscaleStatus(cluster, out)
    agent_round = None
    if on_cluster:
        agent_round = _agent_status(out, state, last)
    else:
        out["warning"] = loop_warning(
            cluster, out["enabled"], out["service"], out["last_round"], state.autoscale, time.time()
        )
    if not out["enabled"]:
        return AutoscaleStatus(cluster, out)
    heal_on = bool(state.autoscale and state.autoscale.heal)
    out["heal"] = {
        "enabled": heal_on,
        "last": ((agent_round or {}) if on_cluster else (book.get("last") or {})).get("heal")
        if heal_on
        else None,
    }
    api, kube = connect_api(state.cloud), Kube(state.kubeconfig)
    plan, nodes, _ = plan_round(cluster, cdir, state, api, kube, time.time())
    if agent_round is not None:
        # The agent's idle clocks and backoffs are on the cluster: its last round says what it
        # decided; this machine's observation gives the counts and the Service Units.
        plan = _Decided(agent_round)
    groups = {}
    # A window that fired holds its group's limits (the loop also ends it when it sees the limits
    # changed after it fired; this view assumes they were not).
    held = autoscale_windows.effective(state.autoscale, {}, time.time())
    for g, s in state.autoscale.groups.items():
        members = [n for n in nodes if n.group == g]
        groups[g] = {
            "active": sum(1 for n in members if n.status == "ACTIVE"),
            "shelved": sum(1 for n in members if n.status in SHELVED),
            "min": held[g][0] if g in held else s.min,
            "max": held[g][1] if g in held else s.max,
        }
        if g in held:
            groups[g]["window"] = held[g][2]
    out.update(
        groups=groups,
        pending=plan.pending,
        next=[dict(d) if isinstance(d, dict) else asdict(d) for d in plan.actions],
        nodes={d.node: {"action": d.action, "reason": d.reason} for d in plan.decisions if d.node},
        su_per_hour=round(sum(cost.STATE_FACTOR.get(n.status, 1.0) * n.su_active for n in nodes), 3),
        su_rates=cost.rates_for(state.su_rates).used([n.flavor for n in nodes]),
    )
    return AutoscaleStatus(cluster, out)
