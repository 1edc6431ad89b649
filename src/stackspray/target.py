"""What the cloud a cluster is built on can do, decided once per command: which Kubespray runs
there, whether its nodes can mount CephFS, whether Helm charts can be pulled onto them.

A plain OpenStack cloud (Jetstream2) gets the installed, pinned Kubespray, CephFS mounts and
charts. Packages that know other targets register a provider under the `stackspray.targets`
entry point group: a function `(conn, spec) -> Target | None` that claims a cloud it recognizes
(stackspray's own test cloud registers one that runs its Kubespray stand-in). stackspray's
modules ask the `Target`, never which cloud it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from .spec import ClusterSpec


@dataclass(frozen=True)
class Target:
    name: str = "openstack"
    # The Kubespray to run (None: the pinned release `kubespray.install` puts in the user cache).
    kubespray: Path | None = None
    # Whether the nodes have a CephFS client (the share is mounted, not only put in /etc/fstab).
    cephfs_mounts: bool = True
    # Whether the nodes can pull Helm charts (the ingress controller's).
    charts: bool = True
    # Whether the nodes can install vendors' packages from their repositories (NVIDIA's container
    # toolkit on GPU nodes).
    vendor_packages: bool = True
    # Said once when a command starts on this target (what is different here, plainly).
    note: str | None = None


PLAIN = Target()


def resolve(conn, spec: ClusterSpec) -> Target:
    """The target `spec`'s cloud is: the first registered provider that claims it, else a plain
    OpenStack cloud."""
    for ep in sorted(entry_points(group="stackspray.targets"), key=lambda e: e.name):
        found = ep.load()(conn, spec)
        if found is not None:
            return found
    return PLAIN
