"""The cluster's state file, typed: what `inventories/<name>/state.json` holds, field by field.

Written by create-cluster (the resources it observed), Kubespray (the kubeconfig), the share
step, credentials.refresh (the credential and any rotation in progress) and scale (its recent
runs); read by every later command. The schema is this module: `ClusterState.from_dict` reads a
file of any schema version this release knows (migrating older ones), `to_dict` writes the
current one. A file from a newer stackspray, or one that is not a state file at all, is refused
with `StateError`, naming the file and what to do — never a traceback.

Schema versions:
- 1: the files stackspray wrote before the schema was written down (no `schema_version` key).
- 2: `schema_version` added; the same fields, each with its type below. Unknown keys a newer
  release added are kept in `extra` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from . import names
from .errors import StackSprayError

SCHEMA_VERSION = 2


class StateError(StackSprayError):
    """The state file cannot be read as a cluster state."""


@dataclass
class Keypair:
    name: str
    uploaded: bool = False  # stackspray uploaded it (then it goes with destroy-cluster)


@dataclass
class Network:
    id: str | None = None
    subnet: str | None = None
    router: str | None = None
    cidr: str | None = None
    existing: str | None = None  # the spec's network.existing


@dataclass
class Server:
    id: str
    status: str = ""
    flavor: str | None = None
    fixed_ip: str | None = None
    floating_ip: str | None = None
    group: str | None = None


@dataclass
class FloatingIp:
    id: str
    address: str
    adopted: bool = False


@dataclass
class KubernetesRanges:
    pod_cidr: str | None = None
    service_cidr: str | None = None


@dataclass
class Credential:
    """The cluster's application credential (its secret is only ever in the 0600 files)."""

    id: str | None
    name: str
    expires_at: str | None = None
    access_rules: bool = False  # made with Keystone access rules (access_rules.py)


@dataclass
class CredentialRef:
    id: str
    name: str


@dataclass
class Rotation:
    """A credential rotation in progress (credentials.refresh): what to finish or undo."""

    old: CredentialRef
    new: Credential
    step: str = "create"


@dataclass
class CredentialRotation:
    at: str
    old_id: str
    new_id: str
    expires_at: str | None = None


@dataclass
class Share:
    id: str | None = None
    status: str | None = None
    access_rule: str | None = None
    export_path: str | None = None
    access_key_file: str | None = None
    applied: str | None = None  # fingerprint of what manila-share.yml applied
    claim: str | None = None  # namespace/name of the claim
    owner_applied: str | None = None  # "uid:gid" set on the share's root (share.owner)


@dataclass
class HealAttempt:
    """One remedy heal tried on a node."""

    remedy: str  # soft-reboot | hard-reboot | replace
    at: float  # epoch seconds
    outcome: str = "pending"  # pending | ok | failed


@dataclass
class HealMemory:
    """What heal remembers of one unhealthy node between runs (heal_plan.py)."""

    unhealthy_since: float | None = None
    attempts: list[HealAttempt] = field(default_factory=list)
    failed_replacements: int = 0
    backoff_until: float | None = None
    replacing: bool = False  # a replacement started: its Node removed, its server deleted, made again
    server_deleted: bool = False  # … and the broken server is gone


@dataclass
class ScaleRun:
    at: str
    changed: dict[str, str] = field(default_factory=dict)
    su_per_hour_after: float = 0.0
    source: str = "manual"  # manual (invoke scale, a schedule) | autoscale


@dataclass
class AutoscaleGroup:
    min: int = 0
    max: int = 0
    idle: float = 1800.0  # seconds a worker is unneeded before it is shelved
    pending_for: float = 30.0  # seconds a pod is pending before it wakes a worker


@dataclass
class HealSettings:
    """A group's heal settings as the autoscaler's round uses them (the spec's
    node_groups.<g>.heal, copied by heal.enable; the agent on the cluster has no spec)."""

    unhealthy_for: float = 300.0
    max_unhealthy: str = "40%"
    reboot_timeout: float = 300.0


@dataclass
class AutoscaleWindow:
    """autoscale.schedule for a loop on the cluster: at `at` (HH:MM in time zone `tz`, on `days` as
    --days takes them, e.g. mon-fri; empty for daily) the group's min and/or max become these
    (autoscale_windows.py)."""

    id: str
    group: str
    at: str
    days: str = ""
    min: int | None = None
    max: int | None = None
    tz: str = "UTC"
    created_at: float = 0.0


@dataclass
class Autoscale:
    """autoscale.enable's settings (autoscale.py); the loop's memory is in autoscale.json."""

    groups: dict[str, AutoscaleGroup] = field(default_factory=dict)
    scale_down_delay: float = 600.0
    skip_nodes_with_local_storage: bool = True
    skip_nodes_with_system_pods: bool = True
    enabled_at: str | None = None
    service: str | None = None  # where the loop runs: cluster (the agent) | systemd | cron | None
    agent_build: str | None = None  # the agent's build on the cluster (service "cluster")
    agent_node: str | None = None
    # heal.enable: the round also checks every group's nodes and reboots broken ones (heal_check.py);
    # empty: heal is not part of the round.
    heal: dict[str, HealSettings] = field(default_factory=dict)
    # autoscale.schedule's windows when the loop runs on the cluster (the agent applies them).
    windows: list[AutoscaleWindow] = field(default_factory=list)


@dataclass
class Ingress:
    """What playbooks/ingress.yml applied (a fingerprint, so a re-run with nothing changed runs
    no playbook) and where it serves."""

    applied: str | None = None
    url: str | None = None
    address: str | None = None  # the floating IP (or the ingress nodes' first address)


@dataclass
class Hibernation:
    """The whole cluster asleep, or on its way there or back (hibernate.py). While it is kept,
    commands that need the cluster running refuse, saying so."""

    phase: str = "hibernating"  # hibernating | hibernated | waking
    since: str = ""  # when hibernate started (UTC, ISO)
    active_workers: list[str] = field(default_factory=list)  # the workers ACTIVE when it started
    snapshot: str | None = None  # the etcd backup taken first (backups set up), else None
    agent: bool = False  # the autoscaler's agent ran on the cluster: started again by wake
    hibernated_at: str | None = None  # when the last server was shelved


@dataclass
class Upgrade:
    """An upgrade in progress (upgrade.py): its version, and the nodes that were schedulable when
    it began, uncordoned at its end even if a killed run left them cordoned."""

    to: str
    schedulable: list[str] = field(default_factory=list)


@dataclass
class ClusterState:
    """Everything stackspray keeps about one cluster between commands."""

    cluster: str = ""
    cloud: str | None = None
    spec: str | None = None  # the spec file it was created from
    ssh_user: str | None = None
    keypair: Keypair | None = None
    network: Network | None = None
    security_groups: dict[str, str] = field(default_factory=dict)  # name -> id
    server_groups: dict[str, str] = field(default_factory=dict)  # name -> id
    servers: dict[str, Server] = field(default_factory=dict)  # name -> record
    floating_ip: FloatingIp | None = None
    kubernetes: KubernetesRanges | None = None
    kubeconfig: str | None = None
    kubespray_inputs: str | None = None  # digest of the spec's Kubespray variables at the last build
    kube_version: str | None = None  # the Kubernetes version cluster.yml last built (None: not recorded)
    # Kubespray's cluster_name at the last build: the mark Cinder CSI's volumes and the cloud
    # controller's load balancers carry (names.kube_cluster_name). None: not recorded.
    kube_cluster_name: str | None = None
    # The servers Kubespray has built or joined (cluster.yml, scale.yml); a server not in it is
    # joined by the next converge (an add-nodes interrupted before scale.yml, or run with
    # --no-kubernetes). None: a state from before this was kept — every server counts as joined.
    kubernetes_nodes: list[str] | None = None
    ingress: Ingress | None = None
    gpu_applied: str | None = None  # fingerprint of what playbooks/gpu.yml applied (gpu_setup.py)
    # The Kubespray build the Cinder CSI controller was given its control-plane toleration after
    # (csi_placement.py): its `kubespray_inputs`. None: not yet.
    csi_controller_placed: str | None = None
    gpu_device_plugin: str | None = None  # the device plugin's image it installed (None: none)
    credential: Credential | None = None
    credential_access_rules: bool = False  # the spec's credential.access_rules: new ones get rules
    # SU rates set for this cluster: {family: {su_per_vcpu_hour, source}} (the spec's su_rates; on
    # the autoscaler agent, the table the operator's machine shipped with its settings).
    su_rates: dict[str, dict] = field(default_factory=dict)
    rotation: Rotation | None = None
    credential_rotations: list[CredentialRotation] = field(default_factory=list)
    share: Share | None = None
    scale_runs: list[ScaleRun] = field(default_factory=list)
    autoscale: Autoscale | None = None
    heal: dict[str, HealMemory] = field(default_factory=dict)  # unhealthy nodes heal is working on
    hibernation: Hibernation | None = None  # hibernate/wake in progress or done (None: awake)
    # Workers an upgrade left at their older kubelet because they were shelved; each is upgraded
    # when it is unshelved (upgrade.py).
    upgrade_behind: list[str] = field(default_factory=list)
    upgrade: Upgrade | None = None  # an upgrade in progress
    destroyed_at: str | None = None
    updated_at: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a newer schema, kept as they are

    def __bool__(self) -> bool:
        """A state that records a cluster (an empty one stands for "no state file")."""
        return bool(self.cluster or self.cloud or self.servers)

    @classmethod
    def from_dict(cls, data: object, source: str = "state.json") -> ClusterState:
        """Read a state document of any known schema version (older ones are migrated)."""
        if not isinstance(data, dict):
            raise StateError(
                f"{source}: not a stackspray state file (a JSON object was expected, got "
                f"{type(data).__name__}); move it aside and re-run `invoke create-cluster` with the "
                "cluster's spec, which finds the cluster's resources by their marks and rewrites it"
            )
        data = migrate(dict(data), source)
        try:
            return _build(cls, data, source)
        except (TypeError, ValueError, KeyError) as exc:
            raise StateError(
                f"{source}: the state file does not match schema {SCHEMA_VERSION} ({exc}); move it aside "
                "and re-run `invoke create-cluster` with the cluster's spec to rewrite it"
            ) from None

    def kube_mark(self, cluster: str) -> str:
        """The Kubespray cluster_name of this cluster (names.kube_cluster_name): the mark of what
        Kubernetes makes in the cloud."""
        return names.kube_cluster_name(cluster, self.kube_cluster_name, self.kubespray_inputs is not None)

    def to_dict(self) -> dict[str, Any]:
        """The document written to state.json (current schema version; `extra` merged back)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "extra"}
        return {**self.extra, **out}


def migrate(data: dict[str, Any], source: str = "state.json") -> dict[str, Any]:
    """Bring a state document to the current schema version."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        raise StateError(f"{source}: schema_version {version!r} is not a version stackspray wrote")
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{source}: written by a newer stackspray (schema {version}, this one knows up to "
            f"{SCHEMA_VERSION}): upgrade stackspray to manage this cluster"
        )
    if version == 1:
        # Version 1 had no version key and the same fields; its `credential` of a cluster built
        # before the first rotation may lack `expires_at`, which the dataclass defaults.
        data["schema_version"] = 2
    return data


# -- a small typed reader: dataclass fields from their annotations ------------------------------


def _build(cls: type, data: dict[str, Any], where: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    unknown = {k: v for k, v in data.items() if k not in names}
    for f in dataclasses.fields(cls):
        if f.name in data and f.name != "extra":
            kwargs[f.name] = _value(hints[f.name], data[f.name], f"{where}: {f.name}")
    if "extra" in names:
        kwargs["extra"] = unknown
    return cls(**kwargs)


def _value(tp, value, where: str):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _value(args[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{where} should be an object, not {type(value).__name__}")
        return _build(tp, value, where)
    if origin is dict:
        _, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise TypeError(f"{where} should be an object, not {type(value).__name__}")
        return {k: _value(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        (vt,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise TypeError(f"{where} should be a list, not {type(value).__name__}")
        return [_value(vt, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, bool) and not isinstance(value, tp):
        raise TypeError(f"{where} should be {tp.__name__}, not {type(value).__name__}")
    return value


def autoscale_from_dict(data: dict[str, Any], where: str = "autoscale settings") -> Autoscale:
    """Autoscale settings from their JSON form (the agent's settings ConfigMap)."""
    try:
        return _build(Autoscale, data, where)
    except (TypeError, ValueError, KeyError) as exc:
        raise StateError(f"{where}: not autoscale settings ({exc})") from exc
