"""`heal`: broken workers rebooted or replaced, never a shelved one; `heal.enable`/`heal.disable`
put heal's check in the autoscaler's round."""

from __future__ import annotations

from invoke import Collection, task

from .. import autoscale_setup
from ..heal import heal as heal_cluster
from .output import call, emit, progress
from .values import cluster_name

JSON = "machine-readable output"


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "dry_run": "print what is broken and what would be done, and stop",
        "json": JSON,
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


@task(positional=[], help={"cluster": "cluster name", "json": JSON})
def enable(c, cluster, json_=False):
    """Check every node in each round of the autoscaler's loop (its agent on the cluster, or the
    loop here) and reboot broken workers; a replacement runs where Kubespray is (see docs/healing.md)."""
    emit(call(json_, "heal.enable", lambda: autoscale_setup.set_heal(cluster_name(cluster), True)), json_)


@task(positional=[], help={"cluster": "cluster name", "json": JSON})
def disable(c, cluster, json_=False):
    """Take heal's check out of the autoscaler's round (`invoke heal` still works by hand)."""
    emit(call(json_, "heal.disable", lambda: autoscale_setup.set_heal(cluster_name(cluster), False)), json_)


collection = Collection("heal")
collection.add_task(heal, name="now", default=True)
collection.add_task(enable, name="enable")
collection.add_task(disable, name="disable")
