"""`hibernate`, `wake` and their schedules: the whole cluster at 0 SU between uses."""

from __future__ import annotations

from invoke import Collection, task

from .. import hibernate as hib
from .. import schedule as sched
from ..schedule import ScheduleResult
from .output import call, emit, progress
from .scale import schedule_listing
from .values import cluster_name

JSON = "machine-readable output"


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "dry_run": "print what would be done, and stop",
        "json": JSON,
    },
)
def hibernate(c, cluster, dry_run=False, json_=False):
    """Shelve the whole cluster, control plane included (0 SU/hour): the autoscaler's agent stopped,
    an etcd snapshot first when backups are set up, the workers shelved, etcd stopped, then the
    control plane shelved. Re-run it to finish an interrupted hibernate."""
    emit(
        call(
            json_,
            "hibernate",
            lambda: hib.hibernate(cluster_name(cluster), dry_run=dry_run, progress=progress(json_)),
        ),
        json_,
    )


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "workers": "make this many workers ACTIVE (0: none, the autoscaler wakes what pods need)",
        "as_before": "wake the workers that were ACTIVE before hibernation (the default)",
        "dry_run": "print what would be done, and stop",
        "json": JSON,
    },
)
def wake(c, cluster, workers=None, as_before=False, dry_run=False, json_=False):
    """Bring a hibernated cluster back: the control plane (SSH, etcd healthy, /readyz), its
    certificates and credential checked (renewed or rotated when due), then the workers, then the
    autoscaler's agent. Each phase timed. Re-run it to finish an interrupted wake."""

    def run():
        if as_before and workers is not None:
            raise hib.HibernateError("give --workers N or --as-before, not both")
        return hib.wake(
            cluster_name(cluster),
            workers=None if workers is None else int(workers),
            dry_run=dry_run,
            progress=progress(json_),
        )

    emit(call(json_, "wake", run), json_)


def _schedule(command: str, cluster, at, days, list_, remove, json_, workers=None) -> None:
    def run() -> ScheduleResult:
        name = cluster_name(cluster)
        if list_:
            return schedule_listing(name, f"{command}-")
        if remove:
            gone = [
                r
                for j in sched.list_jobs(name)
                if j["id"].startswith(f"{command}-")
                for r in sched.remove(name, j["id"])
            ]
            return ScheduleResult(name, "remove", removed=gone)
        if not at:
            raise hib.HibernateError(f"{command}.schedule: --at HH:MM is needed (or --list / --remove)")
        installed = hib.schedule(
            command, name, at=at, days=days, workers=None if workers is None else int(workers)
        )
        return ScheduleResult(name, "install", installed=installed)

    emit(call(json_, f"{command}.schedule", run), json_)


SCHEDULE_HELP = {
    "cluster": "cluster name",
    "at": "local time HH:MM",
    "days": "mon-fri, fri, sat,sun, ... (default: daily)",
    "list": "list this cluster's schedules of this command",
    "remove": "remove them",
    "json": JSON,
}


@task(name="schedule", positional=[], help=SCHEDULE_HELP)
def hibernate_schedule(c, cluster, at=None, days=None, list_=False, remove=False, json_=False):
    """Hibernate the cluster on a schedule, e.g. --at 19:00 --days fri (systemd user timer or
    crontab on this machine; refused where neither runs)."""
    _schedule("hibernate", cluster, at, days, list_, remove, json_)


@task(
    name="schedule",
    positional=[],
    help={**SCHEDULE_HELP, "workers": "wake this many workers (default: as before)"},
)
def wake_schedule(c, cluster, at=None, days=None, workers=None, list_=False, remove=False, json_=False):
    """Wake the cluster on a schedule, e.g. --at 07:00 --days mon; it runs on this machine, never
    on the cluster it wakes."""
    _schedule("wake", cluster, at, days, list_, remove, json_, workers)


hibernate_collection = Collection("hibernate")
hibernate_collection.add_task(hibernate, name="now", default=True)
hibernate_collection.add_task(hibernate_schedule, name="schedule")
wake_collection = Collection("wake")
wake_collection.add_task(wake, name="now", default=True)
wake_collection.add_task(wake_schedule, name="schedule")
