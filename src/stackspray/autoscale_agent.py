"""The autoscaler's agent: the autoscaling loop on the cluster itself, not on a laptop that sleeps.

`autoscale.enable` (`--on cluster`, the default) installs it on the cluster's first control-plane
node, which is never shelved: the same stackspray release in a venv of its own
(agent_wheels.py, playbooks/autoscale-agent.yml), run by a systemd system service
(`stackspray-autoscaler.service`, Restart=on-failure). Each round it does what
`autoscale.run --once` does on the operator's machine (autoscale.py): observe, plan and act
under the cluster's node Lease (lease.py), so `invoke scale` from a laptop waits for it and it
for `invoke scale`.

Least privilege:
- Kubernetes through its own ServiceAccount `kube-system/stackspray-autoscaler`, never
  admin.conf, with exactly the RBAC the loop uses (`rules()`): Nodes get/list/watch/patch
  (cordon, uncordon, readiness), Pods list/watch, the Eviction subresource, PodDisruptionBudgets
  list/watch, its two ConfigMaps and the node Lease by name. Its token is the `token` of the
  Secret `stackspray-autoscaler-token` (type kubernetes.io/service-account-token).
- OpenStack through the cluster's application credential, read each round from the cloud
  config file Kubespray keeps on the node (`/etc/kubernetes/cinder_cloud_config`), so a
  credential rotation reaches it with nothing else to do. With `credential.access_rules` the
  credential's rules include exactly its compute calls (access_rules.AGENT_COMPUTE).

Its settings are the ConfigMap `kube-system/stackspray-autoscaler` (`settings.json`, read
every round: `autoscale.limits` on the operator's machine writes it through the API); it writes
its status back to `kube-system/stackspray-autoscaler-status` as the cluster-autoscaler writes
`cluster-autoscaler-status` (cluster-autoscaler/clusterstate/utils/status.go: a ConfigMap whose
`status` key is a human-readable report, stamped with a last-updated annotation): `status`, the
last round (`last-round.json`), the recent events (`events.jsonl`), its version and build and the
credential it used. `autoscale.status` reads that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import autoscale, lease
from .cloudapi import CloudAPI, OpenStackAPI
from .cluster_state import Autoscale, ClusterState, autoscale_from_dict
from .connection import connect_cloud_config
from .errors import StackSprayError
from .kube import Kube
from .state import ClusterDir

log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
ACCOUNT = "stackspray-autoscaler"
TOKEN_SECRET = "stackspray-autoscaler-token"
SETTINGS = "stackspray-autoscaler"
UPGRADE_BEHIND = "upgrade-behind.json"  # in the settings ConfigMap: workers left behind by an upgrade
STATUS = "stackspray-autoscaler-status"
LAST_UPDATED = "stackspray.io/last-updated"
UNIT = "stackspray-autoscaler.service"
CLOUD_CONFIG = "/etc/kubernetes/cinder_cloud_config"
HOME = "/var/lib/stackspray"
INTERVAL = 10.0
LABELS = {"app.kubernetes.io/managed-by": "stackspray", "app.kubernetes.io/name": "stackspray-autoscaler"}
CM_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
EVENTS_KEPT = 30


class AgentError(StackSprayError):
    """The agent could not be installed, reached or removed as asked."""


def rules() -> list[dict]:
    """The ClusterRole's rules: what the loop calls cluster-wide, and nothing else."""
    return [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["list", "watch"]},
    ]


def own_rules() -> list[dict]:
    """The Role's rules in kube-system: its own ConfigMaps and the node Lease, by name."""
    return [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": [SETTINGS]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["get", "update", "patch"],
            "resourceNames": [STATUS],
        },
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "update"],
            "resourceNames": [lease.NAME],
        },
    ]


def _meta(name: str, cluster: str, namespaced: bool = True, **extra) -> dict:
    meta = {"name": name, "labels": {**LABELS, "stackspray.io/cluster": cluster}, **extra}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


def settings_data(cluster: str, auto: Autoscale, su_rates: dict | None = None) -> dict[str, str]:
    """The settings ConfigMap's data: the cluster, the autoscale settings and the SU rates the
    operator's machine uses beyond the built-in table (its rates file, the spec's su_rates)."""
    doc = dataclasses.asdict(auto)
    doc.pop("service", None)
    return {
        "cluster": cluster,
        "settings.json": json.dumps(doc, sort_keys=True),
        "su-rates.json": json.dumps(su_rates or {}, sort_keys=True),
    }


def objects(cluster: str, auto: Autoscale, su_rates: dict | None = None) -> list[tuple[str, dict, bool]]:
    """(collection path, object, replace when it exists) for everything the agent needs in
    Kubernetes. The token Secret, the status ConfigMap and the Lease are created once and never
    replaced (a replaced token Secret would get a new token; the status is the agent's)."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    subject = [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}]
    return [
        (
            f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(ACCOUNT, cluster)},
            True,
        ),
        (
            f"/api/v1/namespaces/{NAMESPACE}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": _meta(
                    TOKEN_SECRET, cluster, annotations={"kubernetes.io/service-account.name": ACCOUNT}
                ),
            },
            False,
        ),
        (
            f"{rbac}/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": _meta(ACCOUNT, cluster, namespaced=False),
                "rules": rules(),
            },
            True,
        ),
        (
            f"{rbac}/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": _meta(ACCOUNT, cluster, namespaced=False),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ACCOUNT},
                "subjects": subject,
            },
            True,
        ),
        (
            f"{rbac}/namespaces/{NAMESPACE}/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": _meta(ACCOUNT, cluster),
                "rules": own_rules(),
            },
            True,
        ),
        (
            f"{rbac}/namespaces/{NAMESPACE}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _meta(ACCOUNT, cluster),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ACCOUNT},
                "subjects": subject,
            },
            True,
        ),
        (
            CM_PATH,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(SETTINGS, cluster),
                "data": settings_data(cluster, auto, su_rates),
            },
            True,
        ),
        (
            CM_PATH,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(STATUS, cluster), "data": {}},
            False,
        ),
        (
            f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases",
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": lease.NAME, "namespace": NAMESPACE, "labels": LABELS},
                "spec": {"leaseDurationSeconds": lease.DURATION},
            },
            False,
        ),
    ]


def object_paths(cluster: str) -> list[str]:
    """Where each of the agent's objects is (to delete them), the Lease excepted: it stays, so
    that `invoke scale` keeps coordinating with any other actor."""
    return [
        f"{path}/{obj['metadata']['name']}"
        for path, obj, _ in objects(cluster, Autoscale())
        if obj["kind"] != "Lease"
    ]


def read_settings(kube: Kube) -> tuple[str, Autoscale, dict, list[str]]:
    """(cluster, settings, SU rates, workers an upgrade left behind) from the settings ConfigMap;
    AgentError when there is none."""
    cm = kube.get_object(f"{CM_PATH}/{SETTINGS}")
    if cm is None:
        raise AgentError(
            f"no ConfigMap {NAMESPACE}/{SETTINGS}: autoscaling was disabled; the agent does nothing"
        )
    data = cm.get("data") or {}
    return (
        data.get("cluster", ""),
        autoscale_from_dict(json.loads(data.get("settings.json") or "{}")),
        json.loads(data.get("su-rates.json") or "{}"),
        json.loads(data.get(UPGRADE_BEHIND) or "[]"),
    )


def write_upgrade_behind(kube: Kube, behind: list[str]) -> None:
    """Tell the agent which workers an upgrade left behind while shelved: it wakes them but
    leaves them cordoned (it has no Kubespray to upgrade them with)."""
    kube.patch_object(f"{CM_PATH}/{SETTINGS}", {"data": {UPGRADE_BEHIND: json.dumps(sorted(behind))}})


def write_settings(kube: Kube, cluster: str, auto: Autoscale, su_rates: dict | None = None) -> None:
    kube.patch_object(f"{CM_PATH}/{SETTINGS}", {"data": settings_data(cluster, auto, su_rates)})


@dataclass
class AgentStatus:
    """What the agent last wrote about itself."""

    updated: str | None
    version: str | None
    build: str | None
    host: str | None
    credential_id: str | None
    last_round: dict | None
    error: str | None
    events: list[dict]

    @classmethod
    def from_config_map(cls, cm: dict | None) -> AgentStatus | None:
        if not cm or not cm.get("data"):
            return None
        data = cm["data"]
        meta = json.loads(data.get("agent.json") or "{}")
        events = [json.loads(ln) for ln in (data.get("events.jsonl") or "").splitlines() if ln.strip()]
        return cls(
            updated=((cm.get("metadata") or {}).get("annotations") or {}).get(LAST_UPDATED),
            version=meta.get("version"),
            build=meta.get("build"),
            host=meta.get("host"),
            credential_id=meta.get("credential_id"),
            last_round=json.loads(data["last-round.json"]) if data.get("last-round.json") else None,
            error=meta.get("error"),
            events=events,
        )


def read_status(kube: Kube) -> AgentStatus | None:
    return AgentStatus.from_config_map(kube.get_object(f"{CM_PATH}/{STATUS}"))


def _status_text(now: str, meta: dict, summary: dict | None) -> str:
    """The human-readable report, as cluster-autoscaler-status has one."""
    lines = [
        f"Time:              {now}",
        f"Agent:             stackspray {meta.get('version')} (build {meta.get('build')})",
        f"Node:              {meta.get('host')}",
        f"Credential:        {meta.get('credential_id') or 'unknown'}",
    ]
    if meta.get("error"):
        lines.append(f"Last round:        FAILED: {meta['error']}")
    elif summary is not None:
        actions = [
            f"{d.get('action')} {d.get('node')}" for d in summary.get("decisions", []) if d.get("node")
        ]
        acted = [
            f"{n}: {o.get('action')} {o.get('outcome')}" for n, o in (summary.get("outcomes") or {}).items()
        ]
        lines.append(
            f"Last round:        {summary.get('at')} ({len(summary.get('pending') or [])} pending pods)"
        )
        lines.append(f"Decisions:         {', '.join(actions) or 'none'}")
        lines.append(f"Done:              {', '.join(acted) or 'nothing'}")
    return "\n".join(lines) + "\n"


def write_status(kube: Kube, meta: dict, summary: dict | None, events: list[dict]) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = {
        "status": _status_text(now, meta, summary),
        "agent.json": json.dumps(meta, sort_keys=True),
        "events.jsonl": "".join(json.dumps(e, sort_keys=True) + "\n" for e in events[-EVENTS_KEPT:]),
    }
    if summary is not None:
        data["last-round.json"] = json.dumps(summary, sort_keys=True)
    kube.patch_object(f"{CM_PATH}/{STATUS}", {"metadata": {"annotations": {LAST_UPDATED: now}}, "data": data})


def version() -> str:
    try:
        return metadata.version("stackspray")
    except metadata.PackageNotFoundError:
        return "unknown"


# -- on the node -----------------------------------------------------------------------------------


def run(
    cluster: str,
    kubeconfig: Path,
    cloud_config: str = CLOUD_CONFIG,
    home: Path = Path(HOME),
    interval: float = INTERVAL,
    build: str = "",
    rounds: int | None = None,
    api_for: Callable[[str], tuple[CloudAPI, str]] | None = None,
) -> None:
    """The agent's loop: a round every `interval` seconds, its status written after each.
    `api_for(cloud_config)`: (the cloud, the credential id) for a round; by default a
    connection with the credential the file holds now."""
    root = home / "inventories"
    cdir = ClusterDir(cluster, root)
    cdir.path.mkdir(parents=True, exist_ok=True)
    kube = Kube(kubeconfig)
    meta = {"version": version(), "build": build, "host": socket.gethostname(), "interval": interval}
    done = 0
    say = _say
    with cdir.lock("autoscale agent", file=".autoscale.lock"):
        while True:
            started = time.monotonic()
            summary, meta["error"] = None, None
            try:
                named, auto, su_rates, behind = read_settings(kube)
                if named and named != cluster:
                    raise AgentError(f"the settings are cluster {named!r}'s, this agent is {cluster!r}'s")
                api, meta["credential_id"] = (api_for or _cloud)(cloud_config)
                old = cdir.load()
                state = ClusterState(
                    cluster=cluster,
                    kubeconfig=str(kubeconfig),
                    autoscale=auto,
                    scale_runs=old.scale_runs if old else [],
                    heal=old.heal if old else {},
                    su_rates=su_rates,
                    upgrade_behind=behind,
                )
                cdir.save(state)
                with (
                    cdir.lock("autoscale round"),
                    lease.holding(kube, "agent", say, wait=autoscale.LOCK_WAIT),
                ):
                    summary = autoscale.round_leased(cluster, cdir, state, api, kube, say, root, 120.0, 600.0)
            except Exception as exc:  # noqa: BLE001 (a failed round is reported, the next one tried)
                meta["error"] = str(exc)[:500]
                log.exception("autoscaler agent round failed")
                autoscale.event(cdir, action="round", outcome="failed", reason=meta["error"])
            try:
                write_status(kube, meta, summary, autoscale.events(cdir, EVENTS_KEPT))
            except Exception as exc:  # noqa: BLE001 (the next round tries again)
                log.warning("could not write the status ConfigMap: %s", exc)
            done += 1
            if rounds is not None and done >= rounds:
                return
            time.sleep(max(1.0, interval - (time.monotonic() - started)))


def _cloud(cloud_config: str) -> tuple[CloudAPI, str]:
    conn, credential_id = connect_cloud_config(cloud_config)
    return OpenStackAPI(conn), credential_id


def _say(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m stackspray.autoscale_agent", description=__doc__.splitlines()[0]
    )
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the loop (what the systemd service runs)")
    r.add_argument("--cluster", required=True)
    r.add_argument("--kubeconfig", required=True, type=Path)
    r.add_argument("--cloud-config", default=CLOUD_CONFIG)
    r.add_argument("--home", default=Path(HOME), type=Path)
    r.add_argument("--interval", default=INTERVAL, type=float)
    r.add_argument("--build", default="")
    r.add_argument("--rounds", default=None, type=int)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(args.cluster, args.kubeconfig, args.cloud_config, args.home, args.interval, args.build, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
