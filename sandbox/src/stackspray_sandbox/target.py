"""The sandbox as a stackspray target (the `stackspray.targets` entry point): a cloud whose
image carries `stackspray_sandbox=true` runs the Kubespray stand-in (no Kubernetes can run on
its node hosts), has no CephFS client on its nodes and no way to a chart repository or NVIDIA's package
repository."""

from __future__ import annotations

from pathlib import Path

from stackspray.cloudops import read
from stackspray.target import Target

KUBESPRAY_STANDIN = Path(__file__).parent / "standins" / "kubespray"
KUBE_API_STANDIN = Path(__file__).parent / "standins" / "kube_api"
SANDBOX = Target(
    name="sandbox",
    kubespray=KUBESPRAY_STANDIN,
    cephfs_mounts=False,
    charts=False,
    vendor_packages=False,
    note="sandbox cloud: the Kubespray STAND-IN plays Kubespray here (no Kubernetes is installed on "
    "the sandbox); the share goes into the nodes' /etc/fstab but is not mounted (no CephFS client "
    "here); no Helm charts are installed (no chart repository here); GPU nodes get no NVIDIA "
    "container toolkit (no NVIDIA package repository, no GPU here)",
)


def provide(conn, spec) -> Target | None:
    """The sandbox target when the spec's image is the sandbox's."""
    if conn is None:
        return None
    image = read(lambda: conn.image.find_image(spec.image), "find image")
    if image and str((image.properties or {}).get("stackspray_sandbox", "")).lower() == "true":
        return SANDBOX
    return None
