"""`upgrade`: a newer Kubernetes release, node by node, shelved workers handled."""

from __future__ import annotations

from invoke import task

from ..upgrade import upgrade as upgrade_cluster
from .output import call, emit, progress
from .values import cluster_name


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "to": "the Kubernetes version to move to, e.g. 1.35.4 (one minor release at a time)",
        "dry_run": "print the order, the batches and the workers left behind, and stop",
        "wake_shelved": "unshelve shelved workers for the upgrade and shelve them again after",
        "json": "machine-readable output",
    },
)
def upgrade(c, cluster, to, dry_run=False, wake_shelved=False, json_=False):
    """Upgrade Kubernetes the way Kubespray does it gracefully (upgrade-cluster.yml): an etcd
    backup first, the control plane one node at a time, then the workers in batches, each
    cordoned, drained (PodDisruptionBudgets respected), upgraded and uncordoned. Shelved workers
    stay behind and are upgraded when they are unshelved. Re-run it to finish an interrupted one."""
    emit(
        call(
            json_,
            "upgrade",
            lambda: upgrade_cluster(
                cluster_name(cluster),
                str(to),
                dry_run=dry_run,
                wake_shelved=wake_shelved,
                progress=progress(json_),
            ),
        ),
        json_,
    )
