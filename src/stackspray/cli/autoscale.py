"""The autoscaler: autoscale.enable, .limits, .schedule, .disable, .run, .status."""

from __future__ import annotations

from invoke import Collection, Exit, task

from .. import autoscale, autoscale_setup
from .. import schedule as sched
from ..heal import heal as heal_cluster
from ..schedule import ScheduleResult
from ..upgrade import catch_up
from .output import call, emit, progress
from .scale import schedule_listing
from .values import cluster_name, number, whole

JSON = "machine-readable output"


def _opt(value, flag: str) -> int | None:
    return None if value is None else whole(value, flag)


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
        "service": "install the loop (default on; --no-service: settings only, run the loop yourself)",
        "on": "where the loop runs: cluster (an agent on the first control-plane node; the default "
        "when the cluster answers) or here (a systemd user service, else crontab, on this machine)",
        "json": JSON,
    },
)
def enable(
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
    on=None,
    json_=False,
):
    """Autoscale a workers' group by shelving: wake shelved workers for pending pods, shelve idle ones."""
    result = call(
        json_,
        "autoscale.enable",
        lambda: autoscale_setup.enable(
            cluster_name(cluster),
            group=group,
            min_=_opt(min, "min"),
            max_=_opt(max, "max"),
            idle=idle,
            pending_for=pending_for,
            scale_down_delay=scale_down_delay,
            skip_nodes_with_local_storage=skip_nodes_with_local_storage,
            skip_nodes_with_system_pods=skip_nodes_with_system_pods,
            service=service,
            on=on,
            progress=progress(json_),
        ),
    )
    emit(result, json_)


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "group": "the autoscaled group (default: workers)",
        "min": "the new fewest ACTIVE workers",
        "max": "the new most ACTIVE workers",
        "json": JSON,
    },
)
def limits(c, cluster, group="workers", min=None, max=None, json_=False):  # noqa: A002
    """Change an autoscaled group's min/max (a raised min wakes workers on the next round)."""
    result = call(
        json_,
        "autoscale.limits",
        lambda: autoscale_setup.set_limits(
            cluster_name(cluster), group=group, min_=_opt(min, "min"), max_=_opt(max, "max")
        ),
    )
    emit(result, json_)


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
        "json": JSON,
    },
)
def schedule(
    c,
    cluster,
    at=None,
    group="workers",
    min=None,  # noqa: A002
    max=None,  # noqa: A002
    days=None,
    list_=False,
    remove=None,
    json_=False,
):
    """Windows for the autoscaler, e.g. --at 09:45 --min 3 and --at 12:15 --min 0: kept in the agent's
    settings when the loop runs on the cluster (it applies them), else a systemd timer/cron job here."""

    def run() -> ScheduleResult:
        name = cluster_name(cluster)
        if list_:
            listed = schedule_listing(name, "autoscale-")
            listed.jobs += autoscale_setup.windows(name)
            return listed
        if remove:
            gone = autoscale_setup.remove_window(name, remove)
            if remove == "all" or not gone:
                gone += sched.remove(name, remove)
            return ScheduleResult(name, "remove", removed=gone)
        if at is None:
            raise Exit(
                "error: give --at HH:MM with --min N and/or --max N (or --list, or --remove ID)", code=1
            )
        installed = autoscale_setup.schedule_limits(
            name, at=at, group=group, min_=_opt(min, "min"), max_=_opt(max, "max"), days=days
        )
        return ScheduleResult(name, "install", installed=installed)

    emit(call(json_, "autoscale.schedule", run), json_)


@task(positional=[], help={"cluster": "cluster name", "json": JSON})
def disable(c, cluster, json_=False):
    """Stop autoscaling: remove the loop and its settings (workers stay as they are)."""
    emit(
        call(
            json_,
            "autoscale.disable",
            lambda: autoscale_setup.disable(cluster_name(cluster), progress=progress(json_)),
        ),
        json_,
    )


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "once": "one round, then exit (what the crontab entry runs)",
        "dry_run": "observe and print the next decisions; change nothing",
        "interval": "seconds between rounds (default 10, the cluster-autoscaler's scan interval)",
        "json": JSON,
    },
)
def run(c, cluster, once=False, dry_run=False, interval=10, json_=False):
    """The autoscaler's loop (the service runs it): each round wakes or shelves workers as the pods
    need, and with heal.enable reboots broken nodes (and runs `heal` for a replacement)."""

    def rounds() -> autoscale.AutoscaleRounds:
        name = cluster_name(cluster)
        say = progress(json_)
        done = autoscale.run(
            name,
            once=once,
            dry_run=dry_run,
            interval=number(interval, "interval"),
            progress=say,
            replace=lambda: heal_cluster(name, progress=say).to_dict(),
            catch_up=lambda node: catch_up(name, node, say=say),
        )
        return autoscale.AutoscaleRounds(name, done)

    emit(call(json_, "autoscale.run", rounds), json_)


@task(
    positional=[],
    help={"cluster": "cluster name", "last": "how many events to show (default 10)", "json": JSON},
)
def status(c, cluster, last=10, json_=False):
    """Per group ACTIVE/shelved/min/max, pending pods, the next decision, SU/hour, SU saved today,
    recent events."""
    emit(
        call(
            json_,
            "autoscale.status",
            lambda: autoscale_setup.status(cluster_name(cluster), last=whole(last, "last")),
        ),
        json_,
    )


collection = Collection(
    "autoscale", enable=enable, disable=disable, run=run, status=status, limits=limits, schedule=schedule
)
