"""`tools.install`: kubectl and helm beside the stackspray command."""

from __future__ import annotations

from invoke import Collection, task

from .. import tools
from .output import call, emit


@task(help={"json": "machine-readable output"})
def install(c, json_=False):
    """Put kubectl (the version the clusters run) and helm beside stackspray (the venv's bin/)."""
    emit(call(json_, "tools.install", tools.install), json_)


collection = Collection("tools", install=install)
