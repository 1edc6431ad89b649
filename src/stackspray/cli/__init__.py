"""stackspray's command line: every command as a thin task (flags, one library call, one
renderer in `output`), in collections composed by `namespace()`.

The same commands run as `invoke <command>` from a checkout (tasks.py imports `namespace`) and
as the installed console script `stackspray <command>` (`main`, invoke's Program). Other
packages add collections through the `stackspray.commands` entry point group (the sandbox adds
`sandbox.up`, `sandbox.down`, `sandbox.status`).
"""

from __future__ import annotations

import functools
import sys
from importlib.metadata import entry_points, version

from invoke import Collection, Program

from .. import kube, kubeconfig_refresh
from . import (
    autoscale,
    backup,
    certs,
    cluster,
    credentials,
    heal,
    hibernate,
    kubespray,
    scale,
    tools,
    upgrade,
)

__all__ = ["main", "namespace"]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def namespace() -> Collection:
    """Every command, with the collections of installed plugins. Commands issue a cluster's
    kubeconfig again when they load it within 30 days of its client certificate's end."""
    kube.ON_LOAD = functools.partial(kubeconfig_refresh.on_load, say=_say)
    ns = Collection()
    for name, t in cluster.TASKS.items():
        ns.add_task(t, name=name)
    ns.add_task(backup.restore, name="restore")
    ns.add_task(upgrade.upgrade, name="upgrade")
    for c in (
        scale.collection,
        credentials.collection,
        certs.collection,
        backup.collection,
        heal.collection,
        hibernate.hibernate_collection,
        hibernate.wake_collection,
        autoscale.collection,
        kubespray.collection,
        tools.collection,
    ):
        ns.add_collection(c)
    for ep in sorted(entry_points(group="stackspray.commands"), key=lambda e: e.name):
        ns.add_collection(ep.load(), name=ep.name)
    return ns


def main() -> None:
    """The `stackspray` console script."""
    Program(
        namespace=namespace(), name="stackspray", binary="stackspray", version=version("stackspray")
    ).run()
