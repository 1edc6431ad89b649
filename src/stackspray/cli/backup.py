"""etcd backups: `backup`, `backup.list`, `restore`."""

from __future__ import annotations

from invoke import Collection, task

from .. import etcd_backup
from ..backups import DEFAULT_KEEP
from .output import call, emit, progress
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


collection = Collection("backup")
collection.add_task(take, name="take", default=True)
collection.add_task(list_, name="list")
