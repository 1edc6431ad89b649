"""The official schemas of Kubernetes 1.35 for the API stand-in (OpenAPI answers, validation).

They come from the PyPI package kubernetes-validate, which ships every Kubernetes release's
object definitions as generated from kubernetes/kubernetes' api/openapi-spec: downloaded once
(the wheel's sha256 pinned, nothing unverified is used, none of its Python code is installed)
and the one file the stand-in needs, `v1.35.0-local/_definitions.json`, kept in the sandbox's
folder. `python -m stackspray_sandbox.kube_schemas` makes sure it is there and prints its path
(the Kubespray stand-in calls it before it copies the file to the node)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from stackspray.tools import pinned_wheel

from .paths import sandbox_home

WHEEL = "kubernetes-validate==1.37.0"
WHEEL_SHA256 = "85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9"
MEMBER = "kubernetes_validate/kubernetes-json-schema/v1.35.0-local/_definitions.json"


def definitions_file(home: Path | None = None) -> Path:
    return (home or sandbox_home()) / "kube-schemas" / "v1.35.0" / "_definitions.json"


def ensure(home: Path | None = None) -> Path:
    """The definitions file, downloaded and checked on first use."""
    target = definitions_file(home)
    if target.exists():
        return target
    download = target.parent / "download"
    wheel = pinned_wheel(WHEEL, WHEEL_SHA256, download)
    with zipfile.ZipFile(wheel) as z:
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(z.read(MEMBER))
        tmp.replace(target)
    shutil.rmtree(download)
    return target


if __name__ == "__main__":
    print(ensure())
