"""Installing, checking and removing the autoscaler's agent (autoscale_agent.py) from the
operator's machine: its Kubernetes objects through the cluster's admin kubeconfig, its wheels
and service through playbooks/autoscale-agent.yml on the first control-plane node.

An install is shown to work before it is called done: the service is active (systemd says so)
and the agent has written a status from this build, having finished a round, within
`READY_TIMEOUT`; otherwise the error names what the agent said and its last journal lines.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import agent_wheels, autoscale_agent, cost
from .cluster_state import Autoscale, ClusterState
from .kube import Kube, KubeError
from .kubespray import run_ours
from .progress import Progress
from .spec import CONTROL_PLANE
from .state import ClusterDir
from .timestamps import epoch

READY_TIMEOUT = 180.0
KUBECONFIG_FILE = "secrets/autoscaler-agent.kubeconfig"
PROBE_FILE = "runner/agent-probe.json"


@dataclass
class AgentInstalled:
    node: str
    build: str
    version: str
    objects: dict[str, str]  # kind/name -> created | replaced | kept
    seconds: float


def first_control_plane(state: ClusterState) -> tuple[str, str]:
    """(name, fixed IP) of the cluster's first control-plane node."""
    names = sorted(n for n, s in state.servers.items() if s.group == CONTROL_PLANE)
    if not names or not state.servers[names[0]].fixed_ip:
        raise autoscale_agent.AgentError(
            f"cluster {state.cluster!r} has no control-plane node with an address in its state: "
            "run `invoke create-cluster` to finish it first"
        )
    return names[0], state.servers[names[0]].fixed_ip


def _agent_kubeconfig(admin_kubeconfig: Path, server: str, token: str) -> str:
    """A kubeconfig for the agent's ServiceAccount: the cluster's CA, the API at the node's own
    address (in the API server certificate's names), the account's token."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "cluster", "cluster": {"server": server, "certificate-authority-data": ca}}
            ],
            "users": [{"name": autoscale_agent.ACCOUNT, "user": {"token": token}}],
            "contexts": [
                {"name": "agent", "context": {"cluster": "cluster", "user": autoscale_agent.ACCOUNT}}
            ],
            "current-context": "agent",
        }
    )


def _token(kube: Kube, timeout: float = 60.0) -> str:
    """The agent's token, once the token controller has written it into its Secret."""
    deadline = time.monotonic() + timeout
    path = f"/api/v1/namespaces/{autoscale_agent.NAMESPACE}/secrets/{autoscale_agent.TOKEN_SECRET}"
    while True:
        secret = kube.get_object(path) or {}
        token = (secret.get("data") or {}).get("token")
        if token:
            return base64.b64decode(token).decode()
        if time.monotonic() > deadline:
            raise autoscale_agent.AgentError(
                f"the token controller did not fill {autoscale_agent.NAMESPACE}/"
                f"{autoscale_agent.TOKEN_SECRET} within {timeout:.0f} s: is kube-controller-manager running?"
            )
        time.sleep(1.0)


def _playbook(cdir: ClusterDir, say: Progress, phase: str, **extra) -> None:
    run_ours("autoscale-agent.yml", cdir, say, extravars={"agent_phase": phase, **extra})


def journal(cdir: ClusterDir, say: Progress, cluster: str) -> str:
    """The service's state and its last journal lines, from the node."""
    probe = cdir.path / PROBE_FILE
    probe.unlink(missing_ok=True)
    try:
        _playbook(cdir, say, "logs", agent_probe_file=str(probe), agent_cluster=cluster)
        return probe.read_text().strip()
    except Exception as exc:  # noqa: BLE001 (what the logs could not say is said instead)
        return f"(the node's journal could not be read: {exc})"


def install(
    cluster: str,
    cdir: ClusterDir,
    state: ClusterState,
    auto: Autoscale,
    say: Progress,
    interval: float = autoscale_agent.INTERVAL,
    wheel_cache: Path | None = None,
) -> AgentInstalled:
    """Put the agent on the cluster (or upgrade it to this build) and see it run a round."""
    started = time.monotonic()
    kube = Kube(state.kubeconfig)
    node, address = first_control_plane(state)
    say(
        f"agent: Kubernetes objects (ServiceAccount {autoscale_agent.NAMESPACE}/"
        f"{autoscale_agent.ACCOUNT}, RBAC, ConfigMaps)"
    )
    done = {}
    for path, obj, replace in autoscale_agent.objects(cluster, auto, cost.shipped(state.su_rates)):
        done[f"{obj['kind']}/{obj['metadata']['name']}"] = kube.put_object(path, obj, replace=replace)
    if state.upgrade_behind:
        autoscale_agent.write_upgrade_behind(kube, state.upgrade_behind)
    token = _token(kube)
    kubeconfig = cdir.write_secret(
        Path(KUBECONFIG_FILE).name,
        _agent_kubeconfig(Path(state.kubeconfig), f"https://{address}:6443", token),
    )
    say(f"agent: reading {node}'s Python")
    probe = cdir.path / PROBE_FILE
    probe.unlink(missing_ok=True)
    _playbook(cdir, say, "probe", agent_probe_file=str(probe), agent_cluster=cluster)
    node_python = agent_wheels.NodePython.from_probe(json.loads(probe.read_text()))
    say(
        f"agent: fetching wheels for Python {node_python.version} ({node_python.machine}, "
        f"glibc {node_python.glibc})"
    )
    cache = wheel_cache or Path.home() / ".cache" / "stackspray" / "agent-wheels"
    wheels = agent_wheels.fetch(node_python, cache)
    say(f"agent: installing build {wheels.build} ({len(wheels.files)} wheels) on {node}")
    since = time.time()
    _playbook(
        cdir,
        say,
        "install",
        agent_cluster=cluster,
        agent_build=wheels.build,
        agent_wheels_dir=str(wheels.folder),
        agent_kubeconfig_file=str(kubeconfig),
        agent_cloud_config=autoscale_agent.CLOUD_CONFIG,
        agent_interval=interval,
    )
    say("agent: waiting for its first round")
    status = wait_for_round(kube, wheels.build, since, READY_TIMEOUT)
    if status is None or status.error:
        said = f"its last round failed: {status.error}" if status and status.error else "it wrote no status"
        raise autoscale_agent.AgentError(
            f"the agent on {node} is installed but did not complete a round within {READY_TIMEOUT:.0f} s "
            f"({said}). On the node: `journalctl -u {autoscale_agent.UNIT}`. Its last lines:\n"
            + journal(cdir, say, cluster)
        )
    return AgentInstalled(
        node, wheels.build, status.version or "", done, round(time.monotonic() - started, 1)
    )


def wait_for_round(
    kube: Kube, build: str, since: float, timeout: float
) -> autoscale_agent.AgentStatus | None:
    """The agent's status once this build has written one after `since` (epoch seconds) — a
    round finished, or failed — else the last one seen after `timeout`."""
    deadline, delay, last = time.monotonic() + timeout, 1.0, None
    while time.monotonic() < deadline:
        try:
            last = autoscale_agent.read_status(kube)
        except KubeError:
            last = None
        # A status of this build written since the install (a node's clock may be a little off).
        if last and last.build == build and (epoch(last.updated) or 0.0) >= since - 30:
            return last
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
    return last if last and last.build == build else None


def remove(cluster: str, cdir: ClusterDir, state: ClusterState, say: Progress) -> list[str]:
    """Stop and remove the agent from the node and its objects from Kubernetes; what was removed."""
    removed = []
    _playbook(cdir, say, "remove", agent_cluster=cluster)
    removed.append(f"service {autoscale_agent.UNIT}")
    kube = Kube(state.kubeconfig)
    for path in autoscale_agent.object_paths(cluster):
        if kube.delete_object(path):
            removed.append(path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1])
    (cdir.secrets / Path(KUBECONFIG_FILE).name).unlink(missing_ok=True)
    return removed
