"""`invoke verify`: run the testinfra suite (verify_suite/) against every node of a cluster and
report a pass/fail table. Checks that do not apply to a node (e.g. files only the first
control-plane node has) are left out of the table rather than counted."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import certs, gpu, ingress, inventory
from .errors import StackSprayError
from .hibernate_plan import refuse_if_hibernated
from .kube import Kube, kubelet_version, node_is_ready
from .paths import VERIFY_SUITE
from .share import VARS_FILE
from .state import ClusterDir
from .upgrade_plan import KUBELET_SKEW, show, version, within_skew

SUITE = VERIFY_SUITE
CERTIFICATES = "certificates"
VERSIONS = "kubernetes versions"
GPUS = "GPUs"
log = logging.getLogger(__name__)


@dataclass
class VerifyResult:
    cluster: str
    results: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> check -> PASS/FAIL
    failures: dict[str, str] = field(default_factory=dict)  # "node check" -> message
    warnings: dict[str, str] = field(default_factory=dict)  # "node check" -> message (not failures)

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failures

    @property
    def nodes(self) -> list[str]:
        """The cluster's nodes among the results (not the ingress, certificates and versions checks)."""
        return [
            n
            for n in self.results
            if n not in (CERTIFICATES, VERSIONS, GPUS) and not n.startswith("ingress ")
        ]

    def to_dict(self) -> dict:
        return {
            "cluster": self.cluster,
            "ok": self.ok,
            "results": self.results,
            "failures": self.failures,
            "warnings": self.warnings,
        }


def _share_env(cluster_dir: Path) -> dict[str, str]:
    """What the share checks need, from the share's inventory file (empty: no node mounts)."""
    path = cluster_dir / VARS_FILE
    if not path.exists():
        return {"STACKSPRAY_VERIFY_SHARE": ""}
    v = yaml.safe_load(path.read_text()) or {}
    if not v.get("share_mount_on_nodes"):
        return {"STACKSPRAY_VERIFY_SHARE": ""}
    return {
        "STACKSPRAY_VERIFY_SHARE": "1",
        "STACKSPRAY_VERIFY_SHARE_PATH": v["share_mount_path"],
        "STACKSPRAY_VERIFY_SHARE_SRC": v["share_export_path"],
        "STACKSPRAY_VERIFY_SHARE_KEY_FILE": v["share_secret_file"],
        "STACKSPRAY_VERIFY_SHARE_STATE": v["share_node_mount_state"],
    }


def _kubespray_var(cluster_dir: Path, key: str):
    """A variable of the Kubespray variables file stackspray wrote (None without it)."""
    path = cluster_dir / inventory.VARS_FILE
    return (yaml.safe_load(path.read_text()) or {}).get(key) if path.exists() else None


def verify_cluster(name: str, *, root: Path | None = None) -> VerifyResult:
    """Run the suite against every inventory host; return the table (raises if no inventory)."""
    cdir = ClusterDir(name, root)
    refuse_if_hibernated(cdir.load(), "verify")
    hosts_file = cdir.path / inventory.HOSTS_FILE
    if not hosts_file.exists():
        raise StackSprayError(
            f"cluster {name!r} has no inventory at {hosts_file}: run `invoke create-cluster` first"
        )
    inv = yaml.safe_load(hosts_file.read_text())["all"]
    groups = inv.get("children", {})
    nodes = sorted((inv.get("hosts") or {}).keys())
    cps = list((groups.get("kube_control_plane", {}).get("hosts") or {}).keys())
    env = {
        "STACKSPRAY_VERIFY_NODES": ",".join(nodes),
        "STACKSPRAY_VERIFY_CONTROL_PLANE": ",".join(cps),
        "STACKSPRAY_VERIFY_FIRST_CP": cps[0] if cps else "",
        # testinfra calls ansible-inventory: the one installed beside this Python.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # testinfra's ansible backend builds its own ssh command: the cluster's known_hosts file.
        "ANSIBLE_SSH_EXTRA_ARGS": inventory.known_hosts_opts(cdir.path),
    }
    env.update(_share_env(cdir.path))
    env["STACKSPRAY_VERIFY_CERT_RENEW"] = "1" if _kubespray_var(cdir.path, "auto_renew_certificates") else ""
    with tempfile.TemporaryDirectory(prefix="verify-", dir=cdir.path) as work:
        report = Path(work) / "report.jsonl"
        report.touch(mode=0o600)
        env["STACKSPRAY_VERIFY_REPORT"] = str(report)
        # The suite runs in a process of its own, with its own environment: this process's
        # environment is never changed (other threads may be using it).
        suite = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(SUITE),
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "stackspray.verify_suite.report",
                "--hosts=ansible://all",
                f"--ansible-inventory={hosts_file}",
                "--no-header",
                f"--rootdir={work}",
            ],
            env={**os.environ, **env},
            cwd=work,
            capture_output=True,
            text=True,
        )
        log.debug("verify suite output:\n%s%s", suite.stdout, suite.stderr)
        lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    result = VerifyResult(name)
    for r in lines:
        func, node = r["func"], r["node"]
        if not func or not node or r["outcome"] == "skipped":
            continue
        check = func.removeprefix("test_").replace("_", " ")
        if r["params"]:
            check += " (" + ", ".join(r["params"]) + ")"
        outcome = "PASS" if r["outcome"] == "passed" else "FAIL"
        stand_in = r["stand_in"]
        if stand_in and outcome == "PASS":
            # A node the Kubespray stand-in built has no kubelet/containerd to check: say so.
            why = stand_in if isinstance(stand_in, str) else "no Kubernetes on the sandbox"
            check += f" [stand-in node: {why}]"
            outcome = "N/A"
        if outcome == "PASS" and r.get("warning"):
            outcome = "WARN"  # passed, with something to do soon (e.g. a certificate's last month)
            result.warnings[f"{node}: {check}"] = r["warning"]
        result.results.setdefault(node, {})[check] = outcome
        if r["outcome"] != "passed":
            result.failures[f"{node}: {check}"] = r["message"]
    if not result.results and suite.returncode not in (0, 1):
        tail = (suite.stdout + suite.stderr).strip().splitlines()[-5:]
        raise StackSprayError(
            f"verify could not run its checks (pytest exited {suite.returncode}): {' / '.join(tail)}"
        )
    if not result.results:
        raise StackSprayError(f"verify ran no check against cluster {name!r} (no reachable hosts?)")
    _check_ingress_ports(cdir, result)
    _check_certificates(cdir, name, result)
    view = _read_kube(cdir.load().kubeconfig)
    if view is not None:
        _check_versions(cdir, view, result)
        _check_gpus(cdir, view, result)
    return result


@dataclass
class _KubeView:
    """What the Kubernetes checks read, read once: the Nodes, the API server's version, the pods
    (only when a node has GPUs) — or why it could not be read."""

    nodes: list[dict]
    server: str = ""
    pods: list[dict] | None = None
    error: str = ""


def _read_kube(kubeconfig: str | None) -> _KubeView | None:
    if not kubeconfig:
        return None
    try:
        kube = Kube(kubeconfig)
        nodes = kube.list_json("nodes")
        view = _KubeView(nodes=nodes, server=kube.server_version())
        if any(gpu.node_gpus(n) for n in nodes):
            view.pods = kube.list_json("pods")
        return view
    except Exception as exc:  # noqa: BLE001 (whatever stops the read is said, never hidden)
        return _KubeView(nodes=[], error=str(exc))


def _check_gpus(cdir: ClusterDir, view: _KubeView, result: VerifyResult) -> None:
    """Every Ready node of a GPU group offers pods as many GPUs as its flavor has (the device
    plugin registered them with its kubelet). A node that is not Ready (shelved) cannot say, and
    is not counted; where nothing was installed (gpu.install false) it warns."""
    state = cdir.load()
    if view.error:
        if state.gpu_device_plugin:
            result.results.setdefault(GPUS, {})["GPUs readable"] = "FAIL"
            result.failures[f"{GPUS}: GPUs readable"] = view.error
        return
    plugin_nodes = {
        (p.get("spec") or {}).get("nodeName") for p in view.pods or [] if gpu.is_device_plugin_pod(p)
    }
    for n in view.nodes:
        name = n["metadata"]["name"]
        g = gpu.node_gpus(n)
        if g is None or g["has"] is None or not node_is_ready(n):
            continue
        check = f"{name} offers its {g['has']} GPU(s) to pods"
        if g["offers"] >= g["has"]:
            result.results.setdefault(GPUS, {})[check] = "PASS"
        elif name not in plugin_nodes:
            installed = bool(state.gpu_device_plugin)
            result.results.setdefault(GPUS, {})[check] = "FAIL" if installed else "WARN"
            text = (
                f"{name} offers {g['offers']} of its {g['has']} GPU(s): no NVIDIA device plugin pod runs "
                f"on it (`kubectl -n {gpu.DEVICE_PLUGIN_NAMESPACE} get daemonset {gpu.DEVICE_PLUGIN_NAME}`)"
                + (
                    "; re-run create-cluster to apply it again"
                    if installed
                    else "; with `gpu: {install: false}` nothing is installed and GPU pods stay Pending — "
                    "set it true and re-run create-cluster"
                )
            )
            (result.failures if installed else result.warnings)[f"{GPUS}: {check}"] = text
        else:
            result.results.setdefault(GPUS, {})[check] = "FAIL"
            result.failures[f"{GPUS}: {check}"] = (
                f"{name} offers {g['offers']} of its {g['has']} GPU(s) although the device plugin runs "
                f"there: read its log (`kubectl -n {gpu.DEVICE_PLUGIN_NAMESPACE} logs -l "
                "name=nvidia-device-plugin-ds`) and check the driver on the node (`nvidia-smi`)"
            )


def _check_versions(cdir: ClusterDir, view: _KubeView, result: VerifyResult) -> None:
    """Every Node's kubelet within the version skew the API server allows (at most three minor
    releases older, never newer): a node further behind fails; one left behind by an upgrade
    (shelved at the time) within the skew warns."""
    state = cdir.load()
    node = VERSIONS
    if view.error:
        result.results.setdefault(node, {})["versions readable"] = "FAIL"
        result.failures[f"{node}: versions readable"] = view.error
        return
    server = version(view.server)
    for n in view.nodes:
        name = n["metadata"]["name"]
        kubelet = version(kubelet_version(n) or "0.0.0")
        check = f"{name} kubelet v{show(kubelet)} within the skew of API server v{show(server)}"
        if not within_skew(show(kubelet), show(server)):
            result.results.setdefault(node, {})[check] = "FAIL"
            result.failures[f"{node}: {check}"] = (
                f"{name} runs kubelet v{show(kubelet)}: more than {KUBELET_SKEW} minor releases behind "
                f"(or newer than) the API server: unshelve it with `invoke scale --unshelve --nodes {name}` "
                "(it is upgraded before its uncordon), or run `invoke upgrade`"
            )
        elif kubelet != server:
            result.results.setdefault(node, {})[check] = "WARN"
            result.warnings[f"{node}: {check}"] = (
                f"{name} runs kubelet v{show(kubelet)}, the API server v{show(server)}"
                + (" (left behind by an upgrade while shelved)" if name in state.upgrade_behind else "")
            )
        else:
            result.results.setdefault(node, {})[check] = "PASS"


def _check_certificates(cdir: ClusterDir, name: str, result: VerifyResult) -> None:
    """The API server's serving certificate and the kubeconfig's client certificate: expired (or
    unreadable) fails, under certs.WARN_DAYS days left warns."""
    node = CERTIFICATES
    for e in certs.check(cdir.load().kubeconfig, name):
        if e.level == "none":
            continue
        check = f"{e.what} valid for {certs.WARN_DAYS} days or more"
        key = f"{node}: {check}"
        if e.level == "ok":
            result.results.setdefault(node, {})[check] = "PASS"
        elif e.level == "warning":
            result.results.setdefault(node, {})[check] = "WARN"
            result.warnings[key] = e.detail
        else:
            result.results.setdefault(node, {})[check] = "FAIL"
            result.failures[key] = e.detail


def probe(address: str, port: int, timeout: float = 5.0) -> str:
    """ "open" (something answers), "refused" (the node answered with a reset: the cloud let the
    packet through, nothing listens) or "dropped" (no answer: a security group or firewall)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "dropped"


def _check_ingress_ports(cdir: ClusterDir, result: VerifyResult) -> None:
    """80 and 443 reach the ingress from this machine (`ingress:` clusters only)."""
    state = cdir.load()
    path = cdir.path / ingress.VARS_FILE
    if state.ingress is None or not state.ingress.address or not path.exists():
        return
    sandbox = not (yaml.safe_load(path.read_text()) or {}).get("ingress_install_chart", True)
    where = state.ingress.address
    node = f"ingress {where}"
    for port in (80, 443):
        check = f"port {port} reaches the ingress controller"
        seen = probe(where, port)
        if seen == "open":
            result.results.setdefault(node, {})[check] = "PASS"
        elif seen == "refused" and sandbox:
            # The cloud let it through (the node reset the connection); no controller runs here.
            result.results.setdefault(node, {})[
                check + " [stand-in node: open, no controller on the sandbox]"
            ] = "N/A"
        else:
            result.results.setdefault(node, {})[check] = "FAIL"
            result.failures[f"{node}: {check}"] = (
                f"nothing listens on {where}:{port}: is the controller running? "
                f"(kubectl -n {ingress.NAMESPACE} get pods)"
                if seen == "refused"
                else f"{where}:{port} does not answer within 5 s: a security group or firewall drops it — "
                "is this machine inside ingress.allowed_cidrs.http?"
            )
