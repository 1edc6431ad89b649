"""`heal`: broken workers rebooted or replaced, never a shelved one."""

from __future__ import annotations

from invoke import task

from ..heal import heal as heal_cluster
from .output import call, emit, progress
from .values import cluster_name


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "dry_run": "print what is broken and what would be done, and stop",
        "json": "machine-readable output",
    },
)
def heal(c, cluster, dry_run=False, json_=False):
    """Find broken workers (server ERROR or SHUTOFF, or Node NotReady longer than the group's
    unhealthy_for) and soft-reboot, hard-reboot, then replace them; never a shelved worker, never
    the control plane (reported instead)."""
    emit(
        call(
            json_,
            "heal",
            lambda: heal_cluster(cluster_name(cluster), dry_run=dry_run, progress=progress(json_)),
        ),
        json_,
    )
