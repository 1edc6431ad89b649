"""`invoke verify`: run the testinfra suite (verify_suite/) against every node of a cluster and
report a pass/fail table. Checks that do not apply to a node (e.g. files only the first
control-plane node has) are left out of the table rather than counted."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from testinfra.host import Host
from testinfra.utils.ansible_runner import AnsibleRunner

from . import ingress, inventory
from .errors import StackSprayError
from .paths import VERIFY_SUITE
from .share import VARS_FILE
from .state import ClusterDir

SUITE = VERIFY_SUITE
log = logging.getLogger(__name__)


@dataclass
class VerifyResult:
    cluster: str
    results: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> check -> PASS/FAIL
    failures: dict[str, str] = field(default_factory=dict)  # "node check" -> message

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failures


class _Collector:
    def __init__(self) -> None:
        self.reports: list = []
        self.meta: dict[str, tuple[str, dict]] = {}

    def pytest_collection_modifyitems(self, items) -> None:
        for it in items:
            params = dict(it.callspec.params) if hasattr(it, "callspec") else {}
            self.meta[it.nodeid] = (it.originalname, params)

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.reports.append(report)


def _forget_testinfra_hosts() -> None:
    """testinfra keeps the hosts (and the parsed inventory) of earlier runs in this process; the
    cluster may have gained or lost nodes since, so each verify reads its inventory afresh."""
    for cache in (AnsibleRunner._runners, Host._host_cache, Host._hosts_cache):
        cache.clear()


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


def verify_cluster(name: str, *, root: Path | None = None) -> VerifyResult:
    """Run the suite against every inventory host; return the table (raises if no inventory)."""
    cdir = ClusterDir(name, root)
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
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _forget_testinfra_hosts()
    collector = _Collector()
    suite_output = io.StringIO()  # pytest's own dots and warnings: not for the user's stdout (--json)
    try:
        with contextlib.redirect_stdout(suite_output):
            pytest.main(
                [
                    str(SUITE),
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--hosts=ansible://all",
                    f"--ansible-inventory={hosts_file}",
                    "--no-header",
                ],
                plugins=[collector],
            )
    finally:
        log.debug("verify suite output:\n%s", suite_output.getvalue())
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    result = VerifyResult(name)
    for r in collector.reports:
        func, params = collector.meta.get(r.nodeid, ("", {}))
        h = params.pop("_testinfra_host", None)
        node = h.backend.get_hostname() if h is not None else ""
        if not func or not node or r.outcome == "skipped":
            continue
        check = func.removeprefix("test_").replace("_", " ")
        if params:
            check += " (" + ", ".join(str(v) for v in params.values()) + ")"
        outcome = "PASS" if r.outcome == "passed" else "FAIL"
        stand_in = dict(r.user_properties).get("stand_in")
        if stand_in and outcome == "PASS":
            # A node the Kubespray stand-in built has no kubelet/containerd to check: say so.
            why = stand_in if isinstance(stand_in, str) else "no Kubernetes on the sandbox"
            check += f" [stand-in node: {why}]"
            outcome = "N/A"
        result.results.setdefault(node, {})[check] = outcome
        if r.outcome != "passed":
            crash = getattr(r.longrepr, "reprcrash", None)
            msg = crash.message if crash else str(r.longrepr)
            result.failures[f"{node}: {check}"] = msg.splitlines()[0][:300]
    if not result.results:
        raise StackSprayError(f"verify ran no check against cluster {name!r} (no reachable hosts?)")
    _check_ingress_ports(cdir, result)
    return result


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
