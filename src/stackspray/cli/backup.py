"""etcd backups: `backup`, `backup.list`, `restore`."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from .. import etcd_backup
from .. import schedule as sched
from ..backups import DEFAULT_KEEP
from ..schedule import ScheduleResult
from .output import call, emit, progress
from .scale import schedule_listing
from .values import cluster_name

JSON = "machine-readable output"


@task(
    positional=[],
    help={"cluster": "cluster name", "keep": f"backups to keep (default {DEFAULT_KEEP})", "json": JSON},
)
def take(c, cluster, keep=DEFAULT_KEEP, json_=False):
    """Take an etcd snapshot on the cluster, check it, encrypt it and store it off the node; keep
    the newest --keep backups."""
    emit(
        call(
            json_,
            "backup",
            lambda: etcd_backup.backup(cluster_name(cluster), keep=int(keep), progress=progress(json_)),
        ),
        json_,
    )


@task(name="list", positional=[], help={"cluster": "cluster name", "json": JSON})
def list_(c, cluster, json_=False):
    """The cluster's backups, oldest first: ID, time, size, etcd revision."""
    emit(call(json_, "backup.list", lambda: etcd_backup.list_backups(cluster_name(cluster))), json_)


@task(
    positional=[],
    help={"cluster": "cluster name", "snapshot": "backup ID (see backup.list)", "to": "file to write (0600)"},
)
def export(c, cluster, snapshot, to, json_=False):
    """Write a backup's etcd snapshot, verified and decrypted, to a file (0600): for Kubespray's
    recover-control-plane.yml (etcd_snapshot) on a three-member etcd, or etcdctl by hand."""
    emit(
        call(json_, "backup.export", lambda: etcd_backup.export(cluster_name(cluster), snapshot, Path(to))),
        json_,
    )


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "snapshot": "backup ID (see backup.list)",
        "yes": "restore even when workloads run (they are replaced by the backup's state)",
        "json": JSON,
    },
)
def restore(c, cluster, snapshot, yes=False, json_=False):
    """Restore the cluster's etcd from a backup: verified and decrypted first, API servers stopped,
    etcd restored and started, its keys and the API server's readiness checked."""
    emit(
        call(
            json_,
            "restore",
            lambda: etcd_backup.restore(cluster_name(cluster), snapshot, yes=yes, progress=progress(json_)),
        ),
        json_,
    )


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "at": "local time HH:MM to run at (default 02:43)",
        "days": "mon-fri, sun, ... (default: daily)",
        "keep": f"backups to keep (default {DEFAULT_KEEP})",
        "list": "list the cluster's scheduled jobs",
        "remove": "remove the backup schedule",
        "json": JSON,
    },
)
def schedule(c, cluster, at="02:43", days=None, keep=DEFAULT_KEEP, list_=False, remove=False, json_=False):
    """Take backups on a schedule (systemd user timer, or crontab; refused where neither runs), daily
    by default, keeping the newest --keep."""

    def run() -> ScheduleResult:
        name = cluster_name(cluster)
        if list_:
            return schedule_listing(name, "backup")
        if remove:
            return ScheduleResult(name, "remove", removed=sched.remove(name, "backup"))
        job = sched.Job(
            name,
            "backup",
            ("backup", "--cluster", name, "--keep", str(int(keep))),
            sched.parse_when(at, days),
        )
        return ScheduleResult(name, "install", installed=sched.install(job))

    emit(call(json_, "backup.schedule", run), json_)


collection = Collection("backup")
collection.add_task(take, name="take", default=True)
collection.add_task(list_, name="list")
collection.add_task(schedule, name="schedule")
collection.add_task(export, name="export")
