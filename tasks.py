"""stackspray's commands. Thin: parse flags, call the library, print. `invoke --list` shows them."""

from __future__ import annotations

import json
import sys

from invoke import Collection, Exit, task


@task(help={"json": "print a machine-readable report"})
def sandbox_up(c, json_=False):
    """Install (first time) and start the sandbox cloud and its node hosts; idempotent."""
    from stackspray.sandbox import cloud
    from stackspray.sandbox.errors import SandboxError

    try:
        report = cloud.up(
            progress=lambda line: print(line, file=sys.stderr if json_ else sys.stdout, flush=True)
        )
    except SandboxError as exc:
        raise Exit(f"sandbox.up failed: {exc}", code=1) from exc
    if json_:
        print(json.dumps({"steps": report.steps, "total": report.total, "clouds_yaml": report.clouds_yaml}))
        return
    for step, secs in report.steps.items():
        print(f"  {step:<34} {secs:6.1f}s")
    print(f"sandbox is up in {report.total:.1f}s")
    print(f"  export OS_CLIENT_CONFIG_FILE={report.clouds_yaml} OS_CLOUD=sandbox")


@task(help={"json": "print a machine-readable report"})
def sandbox_down(c, json_=False):
    """Stop every process, node host, namespace, bridge and mount of the sandbox (state is kept)."""
    from stackspray.sandbox import cloud

    stopped = cloud.down()
    left = cloud.leftovers()
    if json_:
        print(json.dumps({"stopped": stopped, "leftovers": left}))
    else:
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    if left:
        raise Exit(f"sandbox.down left these behind: {left}", code=2)


@task(help={"json": "print a machine-readable report"})
def sandbox_status(c, json_=False):
    """Show each sandbox daemon (PID, ready) and each node host."""
    from stackspray.sandbox import cloud

    st = cloud.status()
    if json_:
        print(json.dumps(st))
    else:
        for name, d in st["daemons"].items():
            state = "ready" if d["ready"] else ("starting" if d["pid"] else "stopped")
            print(f"  {name:<18} {state:<9} {d['pid'] or ''}")
        for n in st["nodes"]:
            state = "running" if n["running"] else "stopped"
            boot = n.get("boot") or {}
            how = (
                f"SSH in {boot['ready_seconds']}s"
                + (f" after {boot['boots']} boots" if boot["boots"] > 1 else "")
                if boot.get("ready_seconds") is not None
                else "; ".join(boot.get("problems") or [])
            )
            print(
                f"  node {n['hostname']:<24} {n['fixed_ip']:<15} {' '.join(n['floating_ips'])} {state} {how}"
            )
        for name, k in st.get("kernel", {}).items():
            low = " (LOW: fewer node hosts boot)" if k["now"] < k["needed"] else ""
            print(f"  kernel {name} = {k['now']}" + (f" (was {k['was']})" if "was" in k else "") + low)
        print(f"clouds.yaml: {st['clouds_yaml']}")
    if not st["running"]:
        raise Exit("sandbox is not (fully) running: invoke sandbox.up", code=3)


def _progress(json_: bool):
    """Progress lines, flushed at once: a pipe, `tee`, cron or a service log sees each step as it
    happens, not when the command ends."""
    from stackspray.apply import Progress

    out = sys.stderr if json_ else sys.stdout
    return Progress(emit=lambda m: print(m, file=out, flush=True))


def _load(spec: str):
    from stackspray.spec import load_spec

    return load_spec(spec)


def _int(value, flag: str) -> int:
    """A whole-number flag, or a clear error naming it."""
    from stackspray.errors import StackSprayError

    try:
        return int(value)
    except (TypeError, ValueError):
        raise StackSprayError(f"--{flag}: expected a whole number, got {value!r}") from None


def _number(value, flag: str) -> float:
    from stackspray.errors import StackSprayError

    try:
        return float(value)
    except (TypeError, ValueError):
        raise StackSprayError(f"--{flag}: expected a number, got {value!r}") from None


def _call(json_: bool, command: str, call):
    """Run one library call: the one error path of every command. A failure exits non-zero with
    its message (exit code from the error; 2 for an unexpected one) and, with --json, prints one
    JSON error document on stdout first, so a machine always gets an answer."""
    from stackspray.errors import StackSprayError

    try:
        return call()
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


def _cluster(name: str) -> str:
    """--cluster, validated like a spec's `name` (it becomes a folder, unit and crontab name)."""
    from stackspray.spec import check_cluster_name

    return check_cluster_name(name, "--cluster")


def _print_actions(actions: list[dict]) -> None:
    marks = {"create": "+", "update": "~", "delete": "-", "noop": "=", "conflict": "!"}
    for a in actions:
        print(f"  {marks[a['kind']]} {a['kind']:<8} {a['resource']:<22} {a['name']:<32} {a['reason']}")
    counts = {k: sum(1 for a in actions if a["kind"] == k) for k in marks}
    print("plan: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))


@task(
    positional=[],
    help={"spec": "cluster spec: a YAML path or a name under clusters/", "json": "machine-readable output"},
)
def plan(c, spec, json_=False):
    """Show what create-cluster would create, change or leave (and why); creates nothing."""
    from stackspray.cluster import create_cluster

    result = _call(
        json_, "plan", lambda: create_cluster(_load(spec), dry_run=True, progress=_progress(json_))
    )
    if json_:
        print(json.dumps({k: result[k] for k in ("actions", "quota", "warnings")}))
    else:
        _print_actions(result["actions"])
        for w in result["warnings"]:
            print(f"warning: {w}")


@task(
    positional=[],
    help={
        "spec": "cluster spec: a YAML path or a name under clusters/",
        "dry_run": "print the plan and stop",
        "no_kubernetes": "provision the OpenStack side only (skip Kubespray)",
        "forks": "at most this many hosts at a time in Ansible (default: every host, up to 50)",
        "json": "machine-readable output",
    },
)
def create_cluster(c, spec, dry_run=False, no_kubernetes=False, forks=0, json_=False):
    """Create (or converge) the cluster's OpenStack resources from its spec. Safe to re-run."""
    from stackspray.cluster import create_cluster as create

    s = _call(json_, "create-cluster", lambda: _load(spec))
    result = _call(
        json_,
        "create-cluster",
        lambda: create(
            s,
            dry_run=dry_run,
            progress=_progress(json_),
            kubernetes=not no_kubernetes,
            forks=_forks(forks),
        ),
    )
    _print_converged(s.name, result, dry_run=dry_run, json_=json_)


def _print_converged(name: str, result: dict, *, dry_run: bool, json_: bool) -> None:
    if json_:
        print(json.dumps(result, default=str))
        return
    if dry_run:
        _print_actions(result["actions"])
        print("dry run: nothing was changed")
        return
    st = result["state"]
    fip = (st.get("floating_ip") or {}).get("address")
    print(f"cluster {name}: {len(st.get('servers', {}))} server(s), floating IP {fip}; log: {result['log']}")
    if result.get("kubeconfig"):
        print(f"kubeconfig (0600): export KUBECONFIG={result['kubeconfig']}")
    if result.get("share"):
        print(f"share: pods mount it with persistentVolumeClaim.claimName {_claim(result['share'])}")
    if result.get("ingress"):
        print(f"ingress: {result['ingress']['url']}")


def _claim(share: dict) -> str:
    ns, name = share["claim"].split("/", 1)
    return f"{name} (namespace {ns}, ReadWriteMany)"


_RESIZE_HELP = {
    "spec": "cluster spec: a YAML path or a name under clusters/ (its count is rewritten)",
    "group": "the node group (default: workers)",
    "count": "how many nodes (default 1)",
    "dry_run": "print the plan with the new count; change neither the file nor the cloud",
    "no_kubernetes": "provision the OpenStack side only (skip Kubespray)",
    "forks": "at most this many hosts at a time in Ansible (default: every host, up to 50)",
    "json": "machine-readable output",
}


def _forks(forks) -> int | None:
    value = _int(forks, "forks")
    return value or None  # 0: as wide as the inventory


def _resize(
    spec: str, group: str, count, remove: bool, dry_run: bool, no_kubernetes: bool, json_: bool, forks=0
) -> None:
    from stackspray.resize import resize_group

    result = _call(
        json_,
        "remove-nodes" if remove else "add-nodes",
        lambda: resize_group(
            spec,
            group,
            _int(count, "count"),
            remove=remove,
            dry_run=dry_run,
            progress=_progress(json_),
            kubernetes=not no_kubernetes,
            forks=_forks(forks),
        ),
    )
    r = result["resize"]
    if not json_:
        where = "would be" if dry_run else "is now"
        print(f"{r['spec']}: node_groups.{r['group']}.count {where} {r['to']} (was {r['from']})")
    _print_converged(r["cluster"], result, dry_run=dry_run, json_=json_)


@task(positional=[], help=_RESIZE_HELP)
def add_nodes(c, spec, group="workers", count=1, dry_run=False, no_kubernetes=False, forks=0, json_=False):
    """Add nodes to a group: raise its count in the spec file (comments kept), then converge like
    create-cluster (new workers join through Kubespray's scale.yml)."""
    _resize(spec, group, count, False, dry_run, no_kubernetes, json_, forks)


@task(positional=[], help=_RESIZE_HELP)
def remove_nodes(c, spec, group="workers", count=1, dry_run=False, no_kubernetes=False, forks=0, json_=False):
    """Remove a group's highest-numbered nodes: lower its count in the spec file, then converge
    (each leaves Kubernetes through Kubespray's remove-node.yml before its VM is deleted)."""
    _resize(spec, group, count, True, dry_run, no_kubernetes, json_, forks)


@task
def kubespray_install(c):
    """Fetch the pinned Kubespray release into the user cache and install its requirements."""
    from stackspray import kubespray

    got = _call(False, "kubespray.install", kubespray.install)
    print(f"Kubespray {got['tag']} (commit {got['commit']}) installed in {got['path']}")
    if not got["commit_pinned"]:
        print(f"warning: kubespray/PIN.yaml names no commit to check against; add `commit: {got['commit']}`")


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "cloud": "clouds.yaml entry (default: from the state file)",
        "json": "machine-readable output",
    },
)
def status(c, cluster, cloud=None, json_=False):
    """Show every node (role, flavor, status, IPs) and the cost in Service Units."""
    from stackspray.cluster import cluster_status

    st = _call(json_, "status", lambda: cluster_status(_cluster(cluster), cloud=cloud))
    if json_:
        print(json.dumps(st))
        return
    print(f"cluster {st['cluster']} on cloud {st['cloud']}")
    head = ("node", 28), ("role", 15), ("flavor", 11), ("status", 19), ("fixed IP", 15), ("floating IP", 16)
    print("  " + "".join(f"{t:<{w}}" for t, w in head) + f"{'SU/h':>6}")
    for n in st["nodes"]:
        print(
            f"  {n['name']:<28}{n['role']:<15}{n['flavor'] or '?':<11}{n['status']:<19}"
            f"{n['fixed_ip'] or '-':<15}{n['floating_ip'] or '-':<16}{n['su_per_hour']:>6g}"
        )
    print(
        f"  Service Units: {st['su_per_hour']:g}/hour now, {st['su_per_month']:,.0f}/month at this rate"
        + (f"; {st['su_saved_per_hour']:g}/hour saved by shelved nodes" if st["su_saved_per_hour"] else "")
    )
    if st.get("share"):
        print(f"  share: {st['share'].get('export_path')} (rule {st['share'].get('access_rule')})")
    if st.get("ingress"):
        print(f"  ingress: {st['ingress']['url']} (80/443 on {st['ingress']['address']})")


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "cloud": "clouds.yaml entry (default: from the state file)",
        "yes": "do not ask for confirmation",
        "dry_run": "print what would be deleted (or released) and stop",
        "json": "machine-readable output",
    },
)
def destroy_cluster(c, cluster, cloud=None, yes=False, dry_run=False, json_=False):
    """Delete everything the cluster owns (servers, floating IP, network, groups, share, keypair)."""
    from stackspray.cluster import destroy_cluster as destroy

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise Exit(f"{question}\nrefusing without a terminal: pass --yes", code=1)
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    result = _call(
        json_,
        "destroy-cluster",
        lambda: destroy(
            _cluster(cluster), cloud=cloud, progress=_progress(json_), confirm=confirm, dry_run=dry_run
        ),
    )
    if json_:
        print(json.dumps(result))
    elif dry_run:
        _print_actions(result["actions"])
        print("dry run: nothing was deleted")


@task(
    positional=[],
    optional=["shelve", "unshelve"],
    help={
        "cluster": "cluster name",
        "shelve": "shelve N workers (no N: every worker)",
        "unshelve": "unshelve N workers (no N: every shelved worker)",
        "workers": "the number of workers that should be ACTIVE; shelves or unshelves the difference",
        "nodes": "with --shelve/--unshelve: these workers (comma-separated names)",
        "dry_run": "show which nodes would change and the SU/hour before and after; change nothing",
        "drain_timeout": "seconds to keep retrying evictions a PodDisruptionBudget refuses (default 300)",
        "ready_timeout": "seconds to wait for an unshelved node to be Ready (default 600)",
        "force": "also evict pods no controller manages (they are lost)",
        "json": "machine-readable output",
    },
)
def scale(
    c,
    cluster,
    shelve=None,
    unshelve=None,
    workers=None,
    nodes=None,
    dry_run=False,
    drain_timeout=300,
    ready_timeout=600,
    force=False,
    json_=False,
):
    """Soft scaling: shelve idle workers (0 SU) and unshelve them, cordoning and draining first."""
    from stackspray.scale import make_request, scale_cluster

    result = _call(
        json_,
        "scale",
        lambda: scale_cluster(
            _cluster(cluster),
            make_request(
                shelve=shelve,
                unshelve=unshelve,
                workers=None if workers is None else _int(workers, "workers"),
                nodes=nodes,
            ),
            dry_run=dry_run,
            progress=_progress(json_),
            drain_timeout=_number(drain_timeout, "drain-timeout"),
            ready_timeout=_number(ready_timeout, "ready-timeout"),
            force=force,
        ),
    )
    if json_:
        print(json.dumps(result.to_dict()))
    else:
        marks = {"shelve": "v", "unshelve": "^", "uncordon": "^", "noop": "="}
        for s in result.steps:
            what = s.detail or s.reason
            print(f"  {marks[s.action]} {s.node:<28} {s.action:<9} {s.outcome:<8} {what}")
        verb = "would be" if dry_run else "is now"
        delta = result.su_per_hour_before - result.su_per_hour_after
        change = f"saving {delta:g}/hour" if delta >= 0 else f"{-delta:g}/hour more"
        print(
            f"Service Units: {result.su_per_hour_before:g}/hour before, {result.su_per_hour_after:g}/hour "
            f"{verb} ({change})"
        )
        if dry_run:
            print("dry run: nothing was changed")
    if not result.ok:
        bad = [s.node for s in result.steps if s.outcome in ("blocked", "failed")]
        raise Exit(
            f"scale: {len(bad)} node(s) not changed as asked: {', '.join(bad)} (log: {result.log})", code=1
        )


def _print_schedule(result, cluster: str, *, list_: bool, remove: bool, json_: bool) -> None:
    """What scale.schedule and credentials.schedule print for --list, --remove and an install."""
    if json_:
        print(json.dumps(result))
    elif list_:
        for j in result:
            print(f"  {j['id']:<20} {j['backend']:<8} {j['when']:<26} invoke {j['command']}")
        if not result:
            print(f"cluster {cluster}: no scheduled jobs")
    elif remove:
        print(f"removed: {', '.join(result) or 'nothing'}")
    else:
        print(f"scheduled {result['id']} ({result['when']}) with {result['backend']}: {result['where']}")


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "at": "local time HH:MM to run at",
        "workers": "the number of workers to keep ACTIVE from that time",
        "days": "mon-fri, sat,sun, ... (default: daily)",
        "list": "list the cluster's scheduled jobs",
        "remove": "remove a job by id (or every job of the cluster with --remove all)",
        "json": "machine-readable output",
    },
)
def scale_schedule(c, cluster, at=None, workers=None, days=None, list_=False, remove=None, json_=False):
    """Schedule soft scaling, e.g. --at 20:00 --workers 0 and --at 07:00 --workers 4 (systemd timer/cron)."""
    from stackspray import schedule as sched
    from stackspray.scale import schedule as schedule_scale

    def run():
        name = _cluster(cluster)
        if list_:
            return sched.list_jobs(name)
        if remove:
            return sched.remove(name, None if remove == "all" else remove)
        if at is None or workers is None:
            raise Exit("error: give --at HH:MM and --workers N (or --list, or --remove ID)", code=1)
        return schedule_scale(name, at=at, workers=_int(workers, "workers"), days=days)

    result = _call(json_, "scale.schedule", run)
    _print_schedule(result, cluster, list_=list_, remove=bool(remove), json_=json_)


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "force": "rotate even when the credential is not near expiry",
        "threshold_days": "rotate when fewer days than this are left (default 30)",
        "expiry_days": "the new credential's lifetime in days (default 90)",
        "rollout_timeout": "seconds to wait for the restarted workloads to be Ready (default 300)",
        "json": "machine-readable output",
    },
)
def credentials_refresh(
    c, cluster, force=False, threshold_days=30, expiry_days=90, rollout_timeout=300, json_=False
):
    """Rotate the cluster's OpenStack application credential with no outage (exit 0 ok/rotated,
    1 failed and rolled back, 2 failed and needs attention)."""
    from stackspray.rotation import refresh

    result = _call(
        json_,
        "credentials.refresh",
        lambda: refresh(
            _cluster(cluster),
            force=force,
            threshold_days=_number(threshold_days, "threshold-days"),
            expiry_days=_int(expiry_days, "expiry-days"),
            rollout_timeout=_number(rollout_timeout, "rollout-timeout"),
            progress=_progress(json_),
        ),
    )
    if json_:
        print(json.dumps(result.to_dict()))
    elif result.outcome == "ok":
        print(f"ok: {result.credential['name']} expires in {result.days_left:.0f} days")
    else:
        print(
            f"rotated: {result.previous['name']} -> {result.credential['name']} "
            f"(expires {result.credential['expires_at']})"
        )


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "at": "local time HH:MM to run at (default 03:17)",
        "days": "mon-fri, sun, ... (default: sun, i.e. weekly)",
        "list": "list the cluster's scheduled jobs",
        "remove": "remove the refresh schedule",
        "json": "machine-readable output",
    },
)
def credentials_schedule(c, cluster, at="03:17", days="sun", list_=False, remove=False, json_=False):
    """Run credentials.refresh on a schedule (systemd user timer, or crontab), weekly by default."""
    from stackspray import schedule as sched

    def run():
        name = _cluster(cluster)
        if list_:
            return [j for j in sched.list_jobs(name) if j["id"].startswith("credentials")]
        if remove:
            return sched.remove(name, "credentials-refresh")
        job = sched.Job(
            name,
            "credentials-refresh",
            ("credentials.refresh", "--cluster", name),
            sched.parse_when(at, days),
        )
        return sched.install(job)

    result = _call(json_, "credentials.schedule", run)
    _print_schedule(result, cluster, list_=list_, remove=bool(remove), json_=json_)


@task(
    positional=[],
    help={
        "spec": "path to the cluster spec (YAML) with a `share` section",
        "force": "apply again even if nothing changed (e.g. someone deleted the claim)",
        "json": "machine-readable output",
    },
)
def share(c, spec, force=False, json_=False):
    """Set up the cluster's Manila share in Kubernetes (CephFS CSI, static volume, RWX claim) and,
    with share.mount_on_nodes, in the nodes' /etc/fstab. create-cluster does this too."""
    from stackspray.share import apply_share

    s = _call(json_, "share", lambda: _load(spec))
    result = _call(json_, "share", lambda: apply_share(s, force=force, progress=_progress(json_)))
    if json_:
        print(json.dumps(result))
        return
    print(f"share of {s.name}: pods mount it with persistentVolumeClaim.claimName {_claim(result)}")
    if result["mount_on_nodes"]:
        print(f"on the nodes: {s.share.mount_path} (/etc/fstab)")


@task(positional=[], help={"cluster": "cluster name", "json": "machine-readable output"})
def verify(c, cluster, json_=False):
    """Check every node over SSH (testinfra): hostname, /etc/hosts, kubelet/containerd, API port,
    cloud config files, and with `ingress` ports 80/443 from here; print a pass/fail table (exit 1
    on any failure)."""
    from stackspray.verify import verify_cluster

    result = _call(json_, "verify", lambda: verify_cluster(_cluster(cluster)))
    if json_:
        print(
            json.dumps(
                {"cluster": cluster, "ok": result.ok, "results": result.results, "failures": result.failures}
            )
        )
    else:
        for node, checks in sorted(result.results.items()):
            print(node)
            for check, outcome in checks.items():
                print(f"  {outcome:<5} {check}")
        for where, msg in result.failures.items():
            print(f"FAIL {where}: {msg}")
        outcomes = [o for checks in result.results.values() for o in checks.values()]
        na = outcomes.count("N/A")
        print(
            f"{outcomes.count('PASS')}/{len(outcomes) - na} checks passed on {len(result.results)} node(s)"
            + (f"; {na} not applicable on stand-in nodes" if na else "")
        )
    if not result.ok:
        raise Exit(f"verify: {len(result.failures)} check(s) failed", code=1)


@task(
    positional=[],
    auto_shortflags=False,
    help={
        "cluster": "cluster name",
        "group": "the node group to autoscale (default: workers)",
        "min": "fewest ACTIVE workers (default: the spec's autoscale.min, else 0)",
        "max": "most ACTIVE workers (default: the spec's autoscale.max, else the group's count)",
        "idle": "how long a worker is unneeded before it is shelved, e.g. 30m (default 30m)",
        "pending_for": "how long a pod is pending before it wakes a worker, e.g. 30s (default 30s)",
        "scale_down_delay": "no shelving in a group this long after it woke a worker (default 10m)",
        "skip_nodes_with_local_storage": "pods with emptyDir/hostPath volumes keep their node (default on)",
        "skip_nodes_with_system_pods": "kube-system pods without a PodDisruptionBudget keep their node "
        "(default on)",
        "service": "install the loop (systemd user service, else crontab; default on)",
        "json": "machine-readable output",
    },
)
def autoscale_enable(
    c,
    cluster,
    group="workers",
    min=None,  # noqa: A002 (the flag is --min)
    max=None,  # noqa: A002
    idle=None,
    pending_for=None,
    scale_down_delay=None,
    skip_nodes_with_local_storage=True,
    skip_nodes_with_system_pods=True,
    service=True,
    json_=False,
):
    """Autoscale a workers' group by shelving: wake shelved workers for pending pods, shelve idle ones."""
    from stackspray import autoscale

    result = _call(
        json_,
        "autoscale.enable",
        lambda: autoscale.enable(
            _cluster(cluster),
            group=group,
            min_=None if min is None else _int(min, "min"),
            max_=None if max is None else _int(max, "max"),
            idle=idle,
            pending_for=pending_for,
            scale_down_delay=scale_down_delay,
            skip_nodes_with_local_storage=skip_nodes_with_local_storage,
            skip_nodes_with_system_pods=skip_nodes_with_system_pods,
            service=service,
        ),
    )
    if json_:
        print(json.dumps(result))
        return
    g = result["settings"]["groups"][group]
    print(
        f"cluster {cluster}: group {group} autoscaled between {g['min']} and {g['max']} ACTIVE worker(s); "
        f"idle {g['idle']:g}s, pending {g['pending_for']:g}s"
    )
    svc = result["service"]
    print(
        f"loop: {svc['backend']} ({svc['where']})"
        if svc
        else "loop: not installed (run `invoke autoscale.run`)"
    )


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "group": "the autoscaled group (default: workers)",
        "min": "the new fewest ACTIVE workers",
        "max": "the new most ACTIVE workers",
        "json": "machine-readable output",
    },
)
def autoscale_limits(c, cluster, group="workers", min=None, max=None, json_=False):  # noqa: A002
    """Change an autoscaled group's min/max (a raised min wakes workers on the next round)."""
    from stackspray import autoscale

    result = _call(
        json_,
        "autoscale.limits",
        lambda: autoscale.set_limits(
            _cluster(cluster),
            group=group,
            min_=None if min is None else _int(min, "min"),
            max_=None if max is None else _int(max, "max"),
        ),
    )
    if json_:
        print(json.dumps(result))
    else:
        print(
            f"cluster {cluster}: group {group} now between {result['min']} and {result['max']} "
            "ACTIVE worker(s)"
        )


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "at": "local time HH:MM the window starts",
        "group": "the autoscaled group (default: workers)",
        "min": "min ACTIVE workers from that time",
        "max": "max ACTIVE workers from that time",
        "days": "mon-fri, sat,sun, ... (default: daily)",
        "list": "list the cluster's scheduled jobs",
        "remove": "remove a job by id",
        "json": "machine-readable output",
    },
)
def autoscale_schedule(
    c,
    cluster,
    at=None,
    group="workers",
    min=None,
    max=None,
    days=None,
    list_=False,
    remove=None,
    json_=False,  # noqa: A002
):
    """Windows for the autoscaler, e.g. --at 09:45 --min 3 and --at 12:15 --min 0 (systemd timer/cron)."""
    from stackspray import autoscale
    from stackspray import schedule as sched

    def run():
        name = _cluster(cluster)
        if list_:
            return [j for j in sched.list_jobs(name) if j["id"].startswith("autoscale-")]
        if remove:
            return sched.remove(name, remove)
        if at is None:
            raise Exit(
                "error: give --at HH:MM with --min N and/or --max N (or --list, or --remove ID)", code=1
            )
        return autoscale.schedule_limits(
            name,
            at=at,
            group=group,
            min_=None if min is None else _int(min, "min"),
            max_=None if max is None else _int(max, "max"),
            days=days,
        )

    result = _call(json_, "autoscale.schedule", run)
    _print_schedule(result, cluster, list_=list_, remove=bool(remove), json_=json_)


@task(positional=[], help={"cluster": "cluster name", "json": "machine-readable output"})
def autoscale_disable(c, cluster, json_=False):
    """Stop autoscaling: remove the loop and its settings (workers stay as they are)."""
    from stackspray import autoscale

    result = _call(json_, "autoscale.disable", lambda: autoscale.disable(_cluster(cluster)))
    if json_:
        print(json.dumps(result))
    else:
        print(
            f"cluster {cluster}: autoscaling off; removed: "
            + (", ".join(result["removed"]) or "no loop was installed")
        )


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "once": "one round, then exit (what the crontab entry runs)",
        "dry_run": "observe and print the next decisions; change nothing",
        "interval": "seconds between rounds (default 10, the cluster-autoscaler's scan interval)",
        "json": "machine-readable output",
    },
)
def autoscale_run(c, cluster, once=False, dry_run=False, interval=10, json_=False):
    """The autoscaler's loop (the service runs it): each round wakes or shelves workers as the pods need."""
    from stackspray import autoscale

    rounds = _call(
        json_,
        "autoscale.run",
        lambda: autoscale.run(
            _cluster(cluster),
            once=once,
            dry_run=dry_run,
            interval=_number(interval, "interval"),
            progress=_progress(json_),
        ),
    )
    if json_:
        print(json.dumps(rounds[-1] if rounds else {}))
        return
    for r in rounds:
        for d in r["decisions"]:
            mark = {"unshelve": "^", "shelve": "v"}.get(d["action"], "=")
            outcome = (r.get("outcomes", {}).get(d["node"]) or {}).get("outcome", "")
            print(f"  {mark} {d['node']:<28} {d['action']:<9} {outcome:<8} {d['reason']}")
        for p in r["pending"]:
            print(f"  pending {p['pod']}: {p['reason']}")
        if r["dry_run"]:
            print("dry run: nothing was changed")
    failed = [
        n
        for r in rounds
        for n, o in (r.get("outcomes") or {}).items()
        if o["outcome"] in ("failed", "blocked")
    ]
    if failed:
        raise Exit(f"autoscale: not done as planned: {', '.join(failed)}", code=1)


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "last": "how many events to show (default 10)",
        "json": "machine-readable output",
    },
)
def autoscale_status(c, cluster, last=10, json_=False):
    """Per group ACTIVE/shelved/min/max, pending pods, the next decision, SU/hour, SU saved today,
    recent events."""
    from stackspray import autoscale

    st = _call(
        json_, "autoscale.status", lambda: autoscale.status(_cluster(cluster), last=_int(last, "last"))
    )
    if json_:
        print(json.dumps(st))
        return
    if not st["enabled"]:
        print(f"cluster {cluster}: autoscaling is off (invoke autoscale.enable --cluster {cluster})")
    else:
        print(
            f"cluster {cluster}: loop {st['service'] or 'not installed'}; "
            f"last round {st['last_round'] or 'never'}"
        )
        for g, v in st["groups"].items():
            print(
                f"  group {g}: {v['active']} ACTIVE, {v['shelved']} shelved (min {v['min']}, max {v['max']})"
            )
        for node, d in sorted(st["nodes"].items()):
            print(f"  {node:<28} {d['action']:<9} {d['reason']}")
        for p in st["pending"]:
            print(f"  pending {p['pod']}: {p['reason']}")
        nxt = ", ".join(f"{d['action']} {d['node']}" for d in st["next"]) or "nothing to do"
        print(f"  next: {nxt}")
        print(f"  Service Units: {st['su_per_hour']:g}/hour now; {st['su_saved_today']:g} saved today")
    for e in st["events"]:
        what = " ".join(str(e[k]) for k in ("action", "node", "pod", "outcome") if e.get(k))
        print(f"  {e['at']} {what}: {e.get('reason', '')}")


sandbox = Collection("sandbox")
sandbox.add_task(sandbox_up, name="up")
sandbox.add_task(sandbox_down, name="down")
sandbox.add_task(sandbox_status, name="status")

ns = Collection()
ns.add_collection(sandbox)
ns.add_collection(Collection("kubespray", install=kubespray_install))
ns.add_task(plan)
ns.add_task(create_cluster, name="create-cluster")
ns.add_task(add_nodes, name="add-nodes")
ns.add_task(remove_nodes, name="remove-nodes")
ns.add_task(status)
ns.add_task(verify)
ns.add_task(share)
ns.add_task(destroy_cluster, name="destroy-cluster")
scale_ns = Collection("scale")
scale_ns.add_task(scale, name="scale", default=True)
scale_ns.add_task(scale_schedule, name="schedule")
ns.add_collection(scale_ns)
ns.add_collection(Collection("credentials", refresh=credentials_refresh, schedule=credentials_schedule))
ns.add_collection(
    Collection(
        "autoscale",
        enable=autoscale_enable,
        disable=autoscale_disable,
        run=autoscale_run,
        status=autoscale_status,
        limits=autoscale_limits,
        schedule=autoscale_schedule,
    )
)
