"""The one way every command answers: progress lines while it works, then its result — as text,
or with --json as one JSON document — and one error path that turns any failure into a message,
an exit code and (with --json) a JSON error document, so a machine always gets an answer.

Each result type has one text form here (`text`); `failure` says whether a result that was
returned (not raised) still means the command did not do what was asked (exit non-zero).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import singledispatch
from typing import Any, TypeVar

from invoke import Exit

from ..autoscale import AutoscaleRounds
from ..autoscale_setup import (
    AutoscaleDisabled,
    AutoscaleEnabled,
    AutoscaleLimits,
    AutoscaleStatus,
    HealSwitched,
)
from ..certs_renew import RenewResult
from ..cluster import ConvergeResult, DestroyResult, PlanResult, StatusResult
from ..errors import StackSprayError
from ..etcd_backup import BackupList, BackupResult, ExportResult, RestoreResult
from ..heal import HealResult
from ..hibernate import HibernateResult
from ..kubespray import InstallResult
from ..progress import Progress
from ..rotation import RefreshResult
from ..scale import ScaleResult
from ..schedule import ScheduleResult
from ..share import ShareResult
from ..tools import ToolsResult
from ..upgrade import UpgradeResult
from ..verify import VerifyResult

T = TypeVar("T")


def progress(json_: bool) -> Progress:
    """Progress lines, flushed at once: a pipe, `tee`, cron or a service log sees each step as it
    happens, not when the command ends (on stderr with --json, so stdout holds only the JSON)."""
    out = sys.stderr if json_ else sys.stdout
    return Progress(emit=lambda m: print(m, file=out, flush=True))


def call(json_: bool, command: str, fn: Callable[[], T]) -> T:
    """Run one library call: the one error path of every command. A failure exits non-zero with
    its message (exit code from the error; 2 for an unexpected one) and, with --json, prints one
    JSON error document on stdout first."""
    try:
        return fn()
    except Exit:
        raise
    except Exception as exc:
        if isinstance(exc, StackSprayError):
            code, message = exc.exit_code, f"error: {exc}"
        else:
            code = 2
            message = f"unexpected error: {exc!r} (its traceback is in the cluster's run log, if it has one)"
        if json_:
            doc = {
                "command": command,
                "ok": False,
                "error": {"type": type(exc).__name__, "message": str(exc)},
            }
            doc["exit_code"] = code
            print(json.dumps(doc))
        raise Exit(message, code=code) from exc


def emit(result: Any, json_: bool) -> None:
    """Print a result (text or JSON), then exit non-zero if it says the command failed."""
    if json_:
        print(json.dumps(result.to_dict(), default=str))
    else:
        for line in text(result):
            print(line)
    failed = failure(result)
    if failed is not None:
        message, code = failed
        raise Exit(message, code=code)


# -- text, per result type -----------------------------------------------------------------------

MARKS = {"create": "+", "update": "~", "delete": "-", "noop": "=", "conflict": "!"}


def action_lines(actions: list[dict]) -> list[str]:
    lines = [
        f"  {MARKS[a['kind']]} {a['kind']:<8} {a['resource']:<22} {a['name']:<32} {a['reason']}"
        for a in actions
    ]
    counts = {k: sum(1 for a in actions if a["kind"] == k) for k in MARKS}
    lines.append("plan: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    return lines


def _claim(share: dict) -> str:
    ns, name = share["claim"].split("/", 1)
    return f"{name} (namespace {ns}, ReadWriteMany)"


@singledispatch
def text(result: Any) -> list[str]:
    raise TypeError(f"no text form for {type(result).__name__}")


@text.register
def _(result: PlanResult) -> list[str]:
    return action_lines(result.actions) + [f"warning: {w}" for w in result.warnings]


@text.register
def _(result: ConvergeResult) -> list[str]:
    lines = []
    if result.resize:
        r = result.resize
        where = "would be" if result.dry_run else "is now"
        lines.append(f"{r['spec']}: node_groups.{r['group']}.count {where} {r['to']} (was {r['from']})")
    if result.dry_run:
        return lines + action_lines(result.actions) + ["dry run: nothing was changed"]
    st = result.state
    fip = (st.get("floating_ip") or {}).get("address")
    lines.append(
        f"cluster {result.cluster}: {len(st.get('servers', {}))} server(s), floating IP {fip}; "
        f"log: {result.log}"
    )
    if result.kubeconfig:
        lines.append(f"kubeconfig (0600): export KUBECONFIG={result.kubeconfig}")
    if result.share:
        lines.append(f"share: pods mount it with persistentVolumeClaim.claimName {_claim(result.share)}")
    if result.ingress:
        lines.append(f"ingress: {result.ingress['url']}")
    return lines


@text.register
def _(st: StatusResult) -> list[str]:
    lines = [f"cluster {st.cluster} on cloud {st.cloud}"]
    if st.hibernation:
        h = st.hibernation
        if h["phase"] == "hibernated":
            lines.append(
                f"  HIBERNATED since {h.get('hibernated_at') or h['since']}: every server shelved; "
                f"`invoke wake --cluster {st.cluster}` brings it back"
            )
        else:
            lines.append(
                f"  {h['phase'].upper()} (started {h['since']}, not finished): re-run "
                f"`invoke {'wake' if h['phase'] == 'waking' else 'hibernate'} --cluster {st.cluster}`"
            )
    head = ("node", 28), ("role", 15), ("flavor", 11), ("status", 19), ("fixed IP", 15), ("floating IP", 16)
    lines.append("  " + "".join(f"{t:<{w}}" for t, w in head) + f"{'SU/h':>6}")
    for n in st.nodes:
        lines.append(
            f"  {n['name']:<28}{n['role']:<15}{n['flavor'] or '?':<11}{n['status']:<19}"
            f"{n['fixed_ip'] or '-':<15}{n['floating_ip'] or '-':<16}{n['su_per_hour']:>6g}"
        )
    lines.append(
        f"  Service Units: {st.su_per_hour:g}/hour now, {st.su_per_month:,.0f}/month at this rate"
        + (f"; {st.su_saved_per_hour:g}/hour saved by shelved nodes" if st.su_saved_per_hour else "")
    )
    for fam, r in st.su_rates.items():
        lines.append(f"    {fam}: {r['su_per_vcpu_hour']:g} SU per vCPU-hour ({r['source']})")
    k = st.kubernetes
    if k and k["note"]:
        lines.append(f"  Kubernetes versions: UNKNOWN: {k['note']}")
    elif k:
        others = {n: v for n, v in k["kubelets"].items() if v != k["server"]}
        lines.append(
            f"  Kubernetes {k['server']}: "
            + (
                "every kubelet the same"
                if not others
                else "kubelets " + ", ".join(f"{n} {v}" for n, v in sorted(others.items()))
            )
        )
    if k and k["behind"]:
        lines.append(
            f"  left behind by an upgrade while shelved: {', '.join(k['behind'])} (upgraded when unshelved)"
        )
    for node, g in sorted(((k or {}).get("gpus") or {}).items()):
        has = g["has"] if g["has"] is not None else "?"
        short = g["has"] is not None and g["offers"] < g["has"]
        lines.append(
            f"  GPUs on {node}: {g['offers']} of {has} offered to pods"
            + (" — NOT ALL: is the NVIDIA device plugin running there? (`invoke verify`)" if short else "")
        )
    marks = {"ok": "", "none": "", "unknown": "UNKNOWN: ", "warning": "WARNING: ", "expired": "EXPIRED: "}
    for c in st.certificates:
        lines.append(f"  {c['what']}: {marks.get(c['level'], '')}{c['detail']}")
    if st.backups.get("count"):
        lines.append(
            f"  etcd backups: {st.backups['count']}, newest {st.backups['last']}, in {st.backups['location']}"
        )
    elif st.backups:
        lines.append(f"  etcd backups: none (invoke backup --cluster {st.cluster}; docs/backups.md)")
    v = st.volumes
    if v.get("note"):
        lines.append(f"  volumes: {v['note']}")
    elif v.get("count"):
        others = v["count"] - v["in_use"] - v["available"]
        lines.append(
            f"  volumes Kubernetes made: {v['count']} ({v['gb']} GB of the project's volume quota): "
            f"{v['in_use']} in use, {v['available']} available" + (f", {others} other" if others else "")
        )
        if v["shared_mark"]:
            lines.append(
                f"    marked {v['mark']}, Kubespray's default cluster_name, which other clusters built "
                "with it share: some of these may be theirs"
            )
    elif v:
        lines.append("  volumes Kubernetes made: none")
    lbs = st.load_balancers
    if lbs.get("note"):
        lines.append(f"  load balancers: {lbs['note']}")
    elif lbs.get("count"):
        lines.append(f"  load balancers Kubernetes made: {lbs['count']}")
        for i in lbs["items"]:
            address = i["floating_ip"] or f"{i['vip_address']} (no floating IP)"
            lines.append(f"    {i['service'] or i['name']}: {address} ({i['status']})")
        if lbs["shared_mark"]:
            lines.append(
                f"    named for {lbs['mark']}, Kubespray's default cluster_name, which other clusters built "
                "with it share: some of these may be theirs"
            )
    elif lbs:
        lines.append("  load balancers Kubernetes made: none")
    if st.share:
        lines.append(f"  share: {st.share.get('export_path')} (rule {st.share.get('access_rule')})")
    if st.ingress:
        lines.append(f"  ingress: {st.ingress['url']} (80/443 on {st.ingress['address']})")
    return lines


@text.register
def _(result: RenewResult) -> list[str]:
    lines = [f"certificates of cluster {result.cluster} renewed"]
    for when, expiries in (("before", result.before), ("after", result.after)):
        lines += [f"  {when}: {e['what']}: {e['detail']}" for e in expiries]
    lines.append(f"kubeconfig (0600): export KUBECONFIG={result.kubeconfig}")
    return lines


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@text.register
def _(result: BackupResult) -> list[str]:
    b = result.backup
    lines = [
        f"backup {b['id']} of cluster {result.cluster}: etcd revision {b['revision']} on {b['node']}, "
        f"snapshot {_size(b['snapshot_size'])}, stored encrypted ({_size(b['size'])}) in {result.location} "
        f"in {result.seconds:.1f}s"
    ]
    if result.pruned:
        lines.append(f"  retention: deleted {', '.join(result.pruned)}")
    lines.append(
        f"  {result.kept} backups kept; restore with: invoke restore --cluster {result.cluster} "
        f"--snapshot {b['id']}"
    )
    return lines


@text.register
def _(result: BackupList) -> list[str]:
    if not result.backups:
        return [
            f"cluster {result.cluster} has no backups in {result.location}: invoke backup --cluster "
            f"{result.cluster}"
        ]
    lines = [f"backups of cluster {result.cluster} in {result.location} (oldest first):"]
    lines += [
        f"  {b['id']}  {b['created']}  {_size(b['size']):>10}  revision {b['revision']}  from {b['node']}"
        for b in result.backups
    ]
    return lines


@text.register
def _(result: ExportResult) -> list[str]:
    return [
        f"backup {result.backup} of cluster {result.cluster}: etcd snapshot written to {result.path} "
        f"({_size(result.size)}, 0600; it holds every Secret of the cluster: delete it after use)"
    ]


@text.register
def _(result: RestoreResult) -> list[str]:
    return [
        f"cluster {result.cluster} restored from backup {result.backup} in {result.seconds:.1f}s: "
        f"{sum(result.counts.values())} etcd keys"
        + (" as recorded at the backup" if result.expected is not None else " (no key count was recorded)")
        + (", API server ready" if result.ready else ", API server NOT ready")
    ]


@text.register
def _(result: HealResult) -> list[str]:
    lines = [f"heal {result.cluster}" + (" (dry run: nothing was done)" if result.dry_run else "") + ":"]
    lines += [f"  {s['node']:<28} {s['action']:<12} {s['reason']}" for s in result.steps]
    for r in result.remedies:
        lines.append(
            f"  done: {r['node']} {r['remedy']}: {r['outcome']} in {r['seconds']:.0f}s ({r['detail']})"
        )
    if not result.dry_run and result.remedies:
        left = [f"{s['node']} ({s['action']})" for s in result.left]
        lines.append("  now: " + (", ".join(left) if left else "every node is healthy"))
    return lines


@text.register
def _(result: HibernateResult) -> list[str]:
    head = (
        f"{result.command} {result.cluster}"
        + (" (dry run: nothing was done)" if result.dry_run else "")
        + ":"
    )
    lines = [head]
    for s in result.steps:
        where = f" {s['node']}" if s["node"] else ""
        lines.append(f"  {s['action']:<13}{where:<29} {s['reason']}")
    for p in result.phases:
        lines.append(f"  {p['phase']:<14} {p['seconds']:>7.1f}s  {p['detail']}")
    if result.phases:
        lines.append(f"  total          {sum(p['seconds'] for p in result.phases):>7.1f}s")
    lines.append(
        f"Service Units: {result.su_per_hour_before:g}/hour before, {result.su_per_hour_after:g}/hour "
        + ("would be" if result.dry_run else "now")
    )
    if result.still_uses:
        lines.append("still held while hibernated:")
        lines += [f"  - {u}" for u in result.still_uses]
    lines += [f"WARNING: {w}" for w in result.warnings]
    return lines


@text.register
def _(result: UpgradeResult) -> list[str]:
    head = f"upgrade {result.cluster}: {result.server_before} → {result.to}"
    lines = [head + (" (dry run: nothing was changed)" if result.dry_run else "")]
    for s in result.steps:
        batch = f"batch {s['batch']}" if s["batch"] else ""
        lines.append(f"  {s['action']:<9}{s['node'] or '':<29}{batch:<9} {s['reason']}")
    if result.batch_size:
        lines.append(f"  workers in batches of {result.batch_size} (Kubespray's serial, 20 % by default)")
    if result.snapshot:
        lines.append(f"  etcd backup before the first node: {result.snapshot}")
    if result.kubelets:
        lines.append(
            f"  API server {result.server_after}; kubelets: "
            + ", ".join(f"{n} {v}" for n, v in sorted(result.kubelets.items()))
        )
    if result.behind:
        lines.append(
            "  left behind (shelved): "
            + ", ".join(result.behind)
            + " — upgraded when unshelved (invoke scale --unshelve), before their uncordon"
        )
    if result.seconds:
        lines.append(f"  done in {result.seconds:.0f}s; log: {result.log}")
    return lines


@text.register
def _(result: DestroyResult) -> list[str]:
    if result.dry_run:
        return action_lines(result.actions) + ["dry run: nothing was deleted"]
    return []


@text.register
def _(result: ScaleResult) -> list[str]:
    marks = {"shelve": "v", "unshelve": "^", "uncordon": "^", "noop": "="}
    lines = []
    for s in result.steps:
        what = s.detail or s.reason
        lines.append(f"  {marks[s.action]} {s.node:<28} {s.action:<9} {s.outcome:<8} {what}")
    verb = "would be" if result.dry_run else "is now"
    delta = result.su_per_hour_before - result.su_per_hour_after
    change = f"saving {delta:g}/hour" if delta >= 0 else f"{-delta:g}/hour more"
    lines.append(
        f"Service Units: {result.su_per_hour_before:g}/hour before, {result.su_per_hour_after:g}/hour "
        f"{verb} ({change})"
    )
    for fam, r in result.su_rates.items():
        lines.append(f"  {fam}: {r['su_per_vcpu_hour']:g} SU per vCPU-hour ({r['source']})")
    if result.dry_run:
        lines.append("dry run: nothing was changed")
    return lines


@text.register
def _(result: RefreshResult) -> list[str]:
    if result.outcome == "ok":
        return [f"ok: {result.credential['name']} expires in {result.days_left:.0f} days"]
    if result.outcome == "deferred":
        return [
            f"deferred: the cluster is hibernated; {result.credential['name']} "
            f"({result.days_left:.0f} days left) is checked and rotated if due by `wake`"
        ]
    return [
        f"rotated: {result.previous['name']} -> {result.credential['name']} "
        f"(expires {result.credential['expires_at']})"
    ]


@text.register
def _(result: ScheduleResult) -> list[str]:
    if result.action == "list":
        lines = [
            f"  {j['id']:<20} {j['backend']:<8} {j['when']:<26} stackspray {j['command']}"
            for j in result.jobs
        ]
        return lines or [f"cluster {result.cluster}: no scheduled jobs"]
    if result.action == "remove":
        return [f"removed: {', '.join(result.removed) or 'nothing'}"]
    j = result.installed
    return [f"scheduled {j['id']} ({j['when']}) with {j['backend']}: {j['where']}"]


@text.register
def _(result: ShareResult) -> list[str]:
    lines = [
        f"share of {result.cluster}: pods mount it with persistentVolumeClaim.claimName "
        f"{_claim(result.to_dict())}"
    ]
    if result.mount_on_nodes:
        lines.append(f"on the nodes: {result.mount_path} (/etc/fstab)")
    return lines


@text.register
def _(result: VerifyResult) -> list[str]:
    lines = []
    for node, checks in sorted(result.results.items()):
        lines.append(node)
        lines += [f"  {outcome:<5} {check}" for check, outcome in checks.items()]
    lines += [f"FAIL {where}: {msg}" for where, msg in result.failures.items()]
    lines += [f"WARNING {where}: {msg}" for where, msg in result.warnings.items()]
    outcomes = [o for checks in result.results.values() for o in checks.values()]
    na = outcomes.count("N/A")
    lines.append(
        f"{outcomes.count('PASS')}/{len(outcomes) - na} checks passed on {len(result.nodes)} node(s)"
        + (f"; {na} not applicable on stand-in nodes" if na else "")
        + (f"; {outcomes.count('WARN')} warning(s)" if outcomes.count("WARN") else "")
    )
    return lines


@text.register
def _(result: ToolsResult) -> list[str]:
    verb = "installed" if result.installed else "already installed"
    return [f"kubectl {result.version} and helm {verb}: {result.kubectl}, {result.helm}"]


@text.register
def _(result: InstallResult) -> list[str]:
    lines = [f"Kubespray {result.tag} (commit {result.commit}) installed in {result.path}"]
    if not result.commit_pinned:
        lines.append(
            f"warning: the Kubespray pin names no commit to check against; add `commit: {result.commit}`"
        )
    return lines


@text.register
def _(result: AutoscaleEnabled) -> list[str]:
    g = result.settings["groups"][result.group]
    svc = result.service
    return [
        f"cluster {result.cluster}: group {result.group} autoscaled between {g['min']} and {g['max']} "
        f"ACTIVE worker(s); idle {g['idle']:g}s, pending {g['pending_for']:g}s",
        f"loop: {svc['backend']} ({svc['where']})"
        if svc
        else "loop: not installed (run `invoke autoscale.run`)",
    ]


@text.register
def _(result: AutoscaleLimits) -> list[str]:
    return [
        f"cluster {result.cluster}: group {result.group} now between {result.min} and {result.max} "
        "ACTIVE worker(s)"
    ]


@text.register
def _(result: HealSwitched) -> list[str]:
    if not result.heal:
        return [
            f"cluster {result.cluster}: heal is not part of the autoscaler's round "
            "(`invoke heal` still works)"
        ]
    where = {
        "cluster": "the agent on the cluster",
        "systemd": "the loop here (systemd)",
        "cron": "the loop here (cron)",
    }
    lines = [
        f"cluster {result.cluster}: each round of {where.get(result.loop or '', 'the autoscaler loop')} "
        "checks every node and reboots broken workers (never a shelved one)"
    ]
    for g, h in sorted(result.heal.items()):
        lines.append(
            f"  {g}: unhealthy_for {h['unhealthy_for']:g}s, max_unhealthy {h['max_unhealthy']}, "
            f"reboot_timeout {h['reboot_timeout']:g}s"
        )
    lines.append(f"  replacements: {result.replaces}")
    return lines


@text.register
def _(result: AutoscaleDisabled) -> list[str]:
    return [
        f"cluster {result.cluster}: autoscaling off; removed: "
        + (", ".join(result.removed) or "no loop was installed")
    ]


@text.register
def _(result: AutoscaleRounds) -> list[str]:
    lines = []
    for r in result.rounds:
        for d in r["decisions"]:
            mark = {"unshelve": "^", "shelve": "v"}.get(d["action"], "=")
            outcome = (r.get("outcomes", {}).get(d["node"]) or {}).get("outcome", "")
            lines.append(f"  {mark} {d['node']:<28} {d['action']:<9} {outcome:<8} {d['reason']}")
        lines += [f"  pending {p['pod']}: {p['reason']}" for p in r["pending"]]
        if r["dry_run"]:
            lines.append("dry run: nothing was changed")
    return lines


@text.register
def _(st: AutoscaleStatus) -> list[str]:
    s, cluster = st.status, st.cluster
    lines = []
    if not s["enabled"]:
        lines.append(f"cluster {cluster}: autoscaling is off (invoke autoscale.enable --cluster {cluster})")
    else:
        lines.append(
            f"cluster {cluster}: loop {s['service'] or 'not installed'}; "
            f"last round {s['last_round'] or 'never'}"
        )
        if s.get("agent"):
            a = s["agent"]
            lines.append(
                f"  agent: stackspray {a['version']} build {a['build']} on {a['node']}; credential "
                f"{a['credential_id']}; status written {a['updated']}"
            )
        for g, v in s["groups"].items():
            lines.append(
                f"  group {g}: {v['active']} ACTIVE, {v['shelved']} shelved (min {v['min']}, max {v['max']}"
                + (f"; {v['window']}" if v.get("window") else "")
                + ")"
            )
        for node, d in sorted(s["nodes"].items()):
            lines.append(f"  {node:<28} {d['action']:<9} {d['reason']}")
        lines += [f"  pending {p['pod']}: {p['reason']}" for p in s["pending"]]
        nxt = ", ".join(f"{d['action']} {d['node']}" for d in s["next"]) or "nothing to do"
        lines.append(f"  next: {nxt}")
        heal = s.get("heal") or {}
        if heal.get("enabled"):
            last = heal.get("last") or {}
            broken = [f"{x['node']} {x['action']}" for x in last.get("steps") or []]
            lines.append(
                "  heal: on — "
                + (f"last round: {', '.join(broken)}" if broken else "every node healthy at the last round")
                + (
                    f"; replacement due: `invoke heal --cluster {cluster}`"
                    if last.get("replace") and s["service"] == "cluster"
                    else ""
                )
            )
        lines.append(f"  Service Units: {s['su_per_hour']:g}/hour now; {s['su_saved_today']:g} saved today")
        for fam, r in (s.get("su_rates") or {}).items():
            lines.append(f"    {fam}: {r['su_per_vcpu_hour']:g} SU per vCPU-hour ({r['source']})")
    if s.get("warning"):
        lines.append(f"  WARNING: {s['warning']}")
    for e in s["events"]:
        what = " ".join(str(e[k]) for k in ("action", "node", "pod", "decision", "outcome") if e.get(k))
        lines.append(f"  {e['at']} {what}: {e.get('reason', '')}")
    return lines


# -- failure, per result type --------------------------------------------------------------------


@singledispatch
def failure(result: Any) -> tuple[str, int] | None:
    return None


@failure.register
def _(result: ScaleResult) -> tuple[str, int] | None:
    if result.ok:
        return None
    bad = [s.node for s in result.steps if s.outcome in ("blocked", "failed")]
    return f"scale: {len(bad)} node(s) not changed as asked: {', '.join(bad)} (log: {result.log})", 1


@failure.register
def _(result: HealResult) -> tuple[str, int] | None:
    if result.dry_run or not result.unresolved:
        return None
    bad = ", ".join(f"{s['node']} ({s['action']}: {s['reason']})" for s in result.unresolved)
    return f"heal: not healed: {bad} (log: {result.log})", 1


@failure.register
def _(result: VerifyResult) -> tuple[str, int] | None:
    return None if result.ok else (f"verify: {len(result.failures)} check(s) failed", 1)


@failure.register
def _(result: AutoscaleRounds) -> tuple[str, int] | None:
    failed = [
        n
        for r in result.rounds
        for n, o in (r.get("outcomes") or {}).items()
        if o["outcome"] in ("failed", "blocked")
    ]
    return (f"autoscale: not done as planned: {', '.join(failed)}", 1) if failed else None
