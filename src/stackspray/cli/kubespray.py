"""`kubespray.install`: the pinned Kubespray release, fetched and checked."""

from __future__ import annotations

from invoke import Collection, task

from .. import kubespray
from .output import call, emit


@task
def install(c):
    """Fetch the pinned Kubespray release into the user cache and install its requirements."""
    emit(call(False, "kubespray.install", kubespray.install), False)


collection = Collection("kubespray", install=install)
