"""The cluster commands: plan, create-cluster, add-nodes, remove-nodes, status, verify, share,
destroy-cluster. Each parses its flags, makes one library call and hands the result to
`output.emit`."""

from __future__ import annotations

import sys

from invoke import Exit, task

from .. import cluster as clusters
from ..resize import resize_group
from ..share import apply_share
from ..spec import load_spec
from ..verify import verify_cluster
from .output import call, emit, progress
from .values import cluster_name, forks_flag, whole

SPEC = "cluster spec: a YAML path or a name under clusters/"
JSON = "machine-readable output"


@task(positional=[], help={"spec": SPEC, "json": JSON})
def plan(c, spec, json_=False):
    """Show what create-cluster would create, change or leave (and why); creates nothing."""
    emit(call(json_, "plan", lambda: clusters.plan_cluster(load_spec(spec), progress=progress(json_))), json_)


@task(
    positional=[],
    help={
        "spec": SPEC,
        "dry_run": "print the plan and stop",
        "no_kubernetes": "provision the OpenStack side only (skip Kubespray)",
        "forks": "at most this many hosts at a time in Ansible (default: every host, up to 50)",
        "json": JSON,
    },
)
def create_cluster(c, spec, dry_run=False, no_kubernetes=False, forks=0, json_=False):
    """Create (or converge) the cluster's OpenStack resources from its spec. Safe to re-run."""
    s = call(json_, "create-cluster", lambda: load_spec(spec))
    result = call(
        json_,
        "create-cluster",
        lambda: clusters.create_cluster(
            s,
            dry_run=dry_run,
            progress=progress(json_),
            kubernetes=not no_kubernetes,
            forks=forks_flag(forks),
        ),
    )
    emit(result, json_)


RESIZE_HELP = {
    "spec": "cluster spec: a YAML path or a name under clusters/ (its count is rewritten)",
    "group": "the node group (default: workers)",
    "count": "how many nodes (default 1)",
    "dry_run": "print the plan with the new count; change neither the file nor the cloud",
    "no_kubernetes": "provision the OpenStack side only (skip Kubespray)",
    "forks": "at most this many hosts at a time in Ansible (default: every host, up to 50)",
    "json": JSON,
}


def _resize(spec, group, count, remove: bool, dry_run: bool, no_kubernetes: bool, json_: bool, forks) -> None:
    result = call(
        json_,
        "remove-nodes" if remove else "add-nodes",
        lambda: resize_group(
            spec,
            group,
            whole(count, "count"),
            remove=remove,
            dry_run=dry_run,
            progress=progress(json_),
            kubernetes=not no_kubernetes,
            forks=forks_flag(forks),
        ),
    )
    emit(result, json_)


@task(positional=[], help=RESIZE_HELP)
def add_nodes(c, spec, group="workers", count=1, dry_run=False, no_kubernetes=False, forks=0, json_=False):
    """Add nodes to a group: raise its count in the spec file (comments kept), then converge like
    create-cluster (new workers join through Kubespray's scale.yml)."""
    _resize(spec, group, count, False, dry_run, no_kubernetes, json_, forks)


@task(positional=[], help=RESIZE_HELP)
def remove_nodes(c, spec, group="workers", count=1, dry_run=False, no_kubernetes=False, forks=0, json_=False):
    """Remove a group's highest-numbered nodes: lower its count in the spec file, then converge
    (each leaves Kubernetes through Kubespray's remove-node.yml before its VM is deleted)."""
    _resize(spec, group, count, True, dry_run, no_kubernetes, json_, forks)


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "cloud": "clouds.yaml entry (default: from the state file)",
        "json": JSON,
    },
)
def status(c, cluster, cloud=None, json_=False):
    """Show every node (role, flavor, status, IPs) and the cost in Service Units."""
    emit(call(json_, "status", lambda: clusters.cluster_status(cluster_name(cluster), cloud=cloud)), json_)


@task(
    positional=[],
    help={
        "cluster": "cluster name",
        "cloud": "clouds.yaml entry (default: from the state file)",
        "yes": "do not ask for confirmation",
        "dry_run": "print what would be deleted (or released) and stop",
        "delete_backups": "delete the cluster's etcd backups and their key too (kept by default)",
        "delete_volumes": "delete the Cinder volumes Kubernetes made for the cluster's claims too "
        "(kept, detached, by default: they hold the claims' data)",
        "json": JSON,
    },
)
def destroy_cluster(
    c, cluster, cloud=None, yes=False, dry_run=False, delete_backups=False, delete_volumes=False, json_=False
):
    """Delete everything the cluster owns (servers, floating IP, network, groups, share, keypair);
    the volumes Kubernetes made for its claims are listed and kept unless --delete-volumes."""

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise Exit(f"{question}\nrefusing without a terminal: pass --yes", code=1)
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    result = call(
        json_,
        "destroy-cluster",
        lambda: clusters.destroy_cluster(
            cluster_name(cluster),
            cloud=cloud,
            progress=progress(json_),
            confirm=confirm,
            dry_run=dry_run,
            delete_backups=delete_backups,
            delete_volumes=delete_volumes,
        ),
    )
    emit(result, json_)


@task(
    positional=[],
    help={
        "spec": "path to the cluster spec (YAML) with a `share` section",
        "force": "apply again even if nothing changed (e.g. someone deleted the claim)",
        "json": JSON,
    },
)
def share(c, spec, force=False, json_=False):
    """Set up the cluster's Manila share in Kubernetes (CephFS CSI, static volume, RWX claim) and,
    with share.mount_on_nodes, in the nodes' /etc/fstab. create-cluster does this too."""
    s = call(json_, "share", lambda: load_spec(spec))
    emit(call(json_, "share", lambda: apply_share(s, force=force, progress=progress(json_))), json_)


@task(positional=[], help={"cluster": "cluster name", "json": JSON})
def verify(c, cluster, json_=False):
    """Check every node over SSH (testinfra): hostname, /etc/hosts, kubelet/containerd, API port,
    cloud config files, and with `ingress` ports 80/443 from here; print a pass/fail table (exit 1
    on any failure)."""
    emit(call(json_, "verify", lambda: verify_cluster(cluster_name(cluster))), json_)


TASKS = {
    "plan": plan,
    "create-cluster": create_cluster,
    "add-nodes": add_nodes,
    "remove-nodes": remove_nodes,
    "status": status,
    "verify": verify,
    "share": share,
    "destroy-cluster": destroy_cluster,
}
