"""Which Kubespray a cluster is built with, and the Kubespray step of create-cluster.

The pinned release (kubespray/PIN.yaml) is fetched by `invoke kubespray.install` into a per-user
cache. On the stackspray sandbox cloud (its image carries `stackspray_sandbox=true`) the stand-in
playbooks in tests/kubespray_standin/ are run instead, and the progress says so plainly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from . import inventory, playbook
from .cloudops import read
from .credentials import ensure_cluster_credential
from .errors import StackSprayError
from .spec import ClusterSpec
from .state import ClusterDir

REPO_ROOT = Path(__file__).resolve().parents[2]
PIN_FILE = REPO_ROOT / "kubespray" / "PIN.yaml"
STAND_IN = REPO_ROOT / "tests" / "kubespray_standin"
PLAYBOOKS = REPO_ROOT / "playbooks"


class KubesprayMissing(StackSprayError):
    pass


def pin() -> dict:
    return yaml.safe_load(PIN_FILE.read_text())


def cache_dir() -> Path:
    base = Path(
        os.environ.get("STACKSPRAY_KUBESPRAY_CACHE", Path.home() / ".cache" / "stackspray" / "kubespray")
    )
    return base / pin()["tag"]


def install() -> Path:
    """Clone the pinned tag (verifying it is that tag) and install its requirements into this venv."""
    p = pin()
    target = cache_dir()
    if not (target / "cluster.yml").exists():
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            ["git", "clone", "--depth", "1", "--branch", p["tag"], p["repository"], str(tmp)],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise KubesprayMissing(
                f"cannot fetch Kubespray {p['tag']} from {p['repository']}: {out.stderr.strip()}"
            )
        tag = subprocess.run(
            ["git", "-C", str(tmp), "describe", "--tags", "--exact-match"], capture_output=True, text=True
        ).stdout.strip()
        if tag != p["tag"]:
            raise KubesprayMissing(f"fetched Kubespray is at {tag or 'no tag'}, not {p['tag']}")
        tmp.rename(target)
    req = target / "requirements.txt"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(req)], check=True)
    return target


def is_sandbox(conn, spec: ClusterSpec) -> bool:
    image = read(lambda: conn.image.find_image(spec.image), "find image")
    return bool(image and str((image.properties or {}).get("stackspray_sandbox", "")).lower() == "true")


def project(conn, spec: ClusterSpec, say) -> Path:
    if is_sandbox(conn, spec):
        say("sandbox cloud: running the Kubespray STAND-IN (no Kubernetes is installed on the sandbox)")
        return STAND_IN
    target = cache_dir()
    if not (target / "cluster.yml").exists():
        raise KubesprayMissing(f"Kubespray {pin()['tag']} is not installed: run `invoke kubespray.install`")
    return target


def build(conn, spec: ClusterSpec, cdir: ClusterDir, say) -> Path:
    """Credential, inventory, prepare-nodes.yml, cluster.yml, kubeconfig. Returns the kubeconfig path."""
    state = cdir.load()
    credential = ensure_cluster_credential(conn, spec.name, cdir, say)
    auth = conn.config.get_auth_args()
    net_mtu = 1450
    if state.get("network", {}).get("id"):
        net_mtu = read(lambda: conn.network.get_network(state["network"]["id"]), "read network").mtu or 1450
    files = inventory.render(
        spec,
        state,
        auth_url=auth["auth_url"],
        region=conn.config.region_name or "RegionOne",
        credential=credential,
        cluster_dir=cdir.path,
        network_mtu=net_mtu,
    )
    inventory.write(cdir.path, files)
    (cdir.path / "artifacts").mkdir(exist_ok=True)
    hosts = cdir.path / inventory.HOSTS_FILE
    kubespray_dir = project(conn, spec, say)
    known_hosts = {
        "ANSIBLE_SSH_ARGS": f"-o ControlMaster=auto -o ControlPersist=60s "
        f"-o UserKnownHostsFile={cdir.path / 'known_hosts'} "
        "-o StrictHostKeyChecking=accept-new"
    }
    common = dict(inventory=hosts, cluster_dir=cdir.path, say=say, envvars=known_hosts)
    playbook.run("prepare-nodes.yml", project_dir=PLAYBOOKS, **common)
    playbook.run("cluster.yml", project_dir=kubespray_dir, **common)
    admin = cdir.path / "artifacts" / "admin.conf"
    if not admin.exists():
        raise StackSprayError(f"cluster.yml finished but wrote no kubeconfig at {admin}")
    kubeconfig = cdir.path / "kubeconfig"
    inventory.write(cdir.path, [inventory.InventoryFile("kubeconfig", admin.read_text(), 0o600)])
    state = cdir.load()
    state["kubeconfig"] = str(kubeconfig)
    cdir.save(state)
    return kubeconfig
