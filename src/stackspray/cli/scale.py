"""Soft scaling: `scale` (shelve and unshelve workers) and `scale.schedule`."""

from __future__ import annotations

from invoke import Collection, Exit, task

from .. import schedule as sched
from ..scale import make_request, scale_cluster
from ..scale import schedule as schedule_scale
from ..schedule import ScheduleResult
from ..upgrade import catch_up
from .output import call, emit, progress
from .values import cluster_name, number, whole

JSON = "machine-readable output"


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
        "json": JSON,
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
    """Soft scaling: shelve idle workers (0 SU) and unshelve them, cordoning and draining first; a
    worker an upgrade left behind while shelved is upgraded before its uncordon."""
    say = progress(json_)
    name = cluster_name(cluster)
    result = call(
        json_,
        "scale",
        lambda: scale_cluster(
            name,
            make_request(
                shelve=shelve,
                unshelve=unshelve,
                workers=None if workers is None else whole(workers, "workers"),
                nodes=nodes,
            ),
            dry_run=dry_run,
            progress=say,
            drain_timeout=number(drain_timeout, "drain-timeout"),
            ready_timeout=number(ready_timeout, "ready-timeout"),
            force=force,
            catch_up=lambda node: catch_up(name, node, say=say),
        ),
    )
    emit(result, json_)


def schedule_listing(cluster: str, prefix: str | None = None) -> ScheduleResult:
    jobs = [j for j in sched.list_jobs(cluster) if prefix is None or j["id"].startswith(prefix)]
    return ScheduleResult(cluster, "list", jobs=jobs)


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "at": "local time HH:MM to run at",
        "workers": "the number of workers to keep ACTIVE from that time",
        "days": "mon-fri, sat,sun, ... (default: daily)",
        "list": "list the cluster's scheduled jobs",
        "remove": "remove a job by id (or every job of the cluster with --remove all)",
        "json": JSON,
    },
)
def schedule(c, cluster, at=None, workers=None, days=None, list_=False, remove=None, json_=False):
    """Schedule soft scaling, e.g. --at 20:00 --workers 0 and --at 07:00 --workers 4 (systemd timer/cron)."""

    def run() -> ScheduleResult:
        name = cluster_name(cluster)
        if list_:
            return schedule_listing(name)
        if remove:
            return ScheduleResult(
                name, "remove", removed=sched.remove(name, None if remove == "all" else remove)
            )
        if at is None or workers is None:
            raise Exit("error: give --at HH:MM and --workers N (or --list, or --remove ID)", code=1)
        installed = schedule_scale(name, at=at, workers=whole(workers, "workers"), days=days)
        return ScheduleResult(name, "install", installed=installed)

    emit(call(json_, "scale.schedule", run), json_)


collection = Collection("scale")
collection.add_task(scale, name="scale", default=True)
collection.add_task(schedule, name="schedule")
