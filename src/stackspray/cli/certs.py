"""The cluster's certificates: `certs.renew`."""

from __future__ import annotations

from invoke import Collection, task

from ..certs_renew import renew as renew_certificates
from .output import call, emit, progress
from .values import cluster_name


@task(positional=[], help={"cluster": "cluster name", "json": "machine-readable output"})
def renew(c, cluster, json_=False):
    """Renew the control plane's certificates now (kubeadm certs renew all, one control-plane node
    at a time) and issue the kubeconfig again; show the dates before and after."""
    emit(
        call(
            json_, "certs.renew", lambda: renew_certificates(cluster_name(cluster), progress=progress(json_))
        ),
        json_,
    )


collection = Collection("certs", renew=renew)
