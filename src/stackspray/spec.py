"""The cluster spec: one YAML file describing a cluster, validated before anything is created.

`load_spec(path)` parses and validates the file on its own (types, unknown keys, counts, CIDRs);
`check_against_cloud(spec, catalog)` then checks what only the cloud knows (flavor, image,
network, keypair, floating IP). Both collect every problem and raise one `SpecError` listing
each as "field: what is wrong — how to fix it". Defaults are Jetstream2's.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import cost, names
from .errors import SpecError, StackSprayError
from .names import CONTROL_PLANE

DEFAULT_IMAGE = "Featured-Ubuntu24"
DEFAULT_SSH_USER = "ubuntu"
DEFAULT_EXTERNAL_NETWORK = "public"
DEFAULT_CIDR = "10.0.0.0/24"
DEFAULT_SHARE_TYPE = "cephfsnativetype"
DEFAULT_POD_CIDR = "10.233.64.0/18"
DEFAULT_SERVICE_CIDR = "10.233.0.0/18"
WORKERS = "workers"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
GROUP_RE = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
KUBESPRAY_GROUP_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
K8S_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # RFC 1123 label
# useradd(8)'s default NAME_REGEX (Debian's adduser.conf): what `ssh_user` may be. It reaches a
# shell through ssh's ProxyCommand, so nothing else is let through.
POSIX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# Manila cephx access rule names, CephFS names and mount paths: plain characters only (they
# become file names on the nodes, fstab fields and CSI attributes).
PLAIN_RE = re.compile(r"[A-Za-z0-9._-]{1,255}")
MOUNT_PATH_RE = re.compile(r"(/[A-Za-z0-9._-]+)+/?")
ANSIBLE_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Jinja2's delimiters: a spec string holding one would be rendered by Ansible on this machine.
JINJA = ("{{", "{%", "{#")
# A hard cap per node group and for the whole cluster, before the quota is even asked: a typo
# (40000 for 4) must not make stackspray plan, print and try to boot tens of thousands of VMs.
MAX_GROUP_COUNT = 100
MAX_NODES = 200
MAX_SPEC_BYTES = 256 * 1024
MAX_ALIASES = 50
# Kubespray variables stackspray sets itself: under `kubernetes:` they would silently override
# it (or break the cluster). Value: the spec field to use instead, or None (nothing to set).
OWNED_KUBESPRAY_VARS: dict[str, str | None] = {
    "cloud_provider": None,
    "external_cloud_provider": None,
    "kube_pods_subnet": "kubernetes.pod_cidr",
    "kube_service_addresses": "kubernetes.service_cidr",
    "supplementary_addresses_in_ssl_keys": None,
    "kubeconfig_localhost": None,
    "kubeconfig_localhost_ansible_host": None,
    "artifacts_dir": None,
    "persistent_volumes_enabled": None,
    "calico_veth_mtu": None,
    "cert_manager_enabled": "ingress.tls",
    # A host's node_taints masks the group's: stackspray sets them per node group.
    "node_taints": "node_groups.<group>.taints",
    # GPU nodes get NVIDIA's runtime as their default (gpu.py); the others Kubespray's runc.
    "containerd_default_runtime": "gpu.install",
    # The id Cinder CSI marks volumes with and the cloud controller names load balancers with:
    # the cluster's name, so destroy-cluster tells this cluster's from a neighbour's.
    "cluster_name": None,
}
OWNED_KUBESPRAY_PREFIXES = ("external_openstack_", "cinder_", "ansible_")


NAME_RULE = "1-32 lowercase letters, digits or '-', starting with a letter and not ending in '-'"


def check_cluster_name(name: object, flag: str = "--cluster") -> str:
    """A cluster name given on the command line, checked like a spec's `name` (it becomes a
    folder under inventories/, a unit and a crontab name): anything else is refused, naming the flag."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise StackSprayError(f"{flag}: {name!r} is not a cluster name: it must be {NAME_RULE}")
    return name


@dataclass(frozen=True)
class AutoscaleSpec:
    """node_groups.<g>.autoscale: what `invoke autoscale.enable` uses when its flags are absent."""

    min: int = 0
    max: int = 0
    idle: float = 1800.0  # seconds
    pending_for: float = 30.0


@dataclass(frozen=True)
class HealSpec:
    """node_groups.<g>.heal: when `invoke heal` calls a node of the group broken, and how many
    broken ones it may replace (Cluster API's MachineHealthCheck: unhealthy conditions with a
    timeout, maxUnhealthy)."""

    unhealthy_for: float = 300.0  # seconds NotReady (or the server ERROR/SHUTOFF) before a remedy
    max_unhealthy: str = "40%"  # more of the group unhealthy than this: nothing is remedied
    reboot_timeout: float = 300.0  # seconds a reboot has to bring the node back Ready

    def max_unhealthy_of(self, size: int) -> int:
        """max_unhealthy as a node count for a group of `size`: a percentage rounds down, as
        MachineHealthCheck's intstr.GetScaledValueFromIntOrPercent with roundUp false, but is never
        below 1 (one broken node of a small group says nothing about the cloud; 0 is written 0)."""
        most = str(self.max_unhealthy)
        if most.endswith("%"):
            return max(1, size * int(most[:-1]) // 100) if int(most[:-1]) else 0
        return int(most)


@dataclass(frozen=True)
class NodeGroup:
    name: str
    flavor: str
    count: int
    boot_volume_gb: int | None = None
    extra_groups: tuple[str, ...] = ()
    autoscale: AutoscaleSpec | None = None
    heal: HealSpec = HealSpec()
    gpus: int | None = None  # GPUs per node, when the flavor is not in gpu.py's table
    taints: tuple[str, ...] = ()  # Kubespray's node_taints, `key=value:Effect`, on every node

    @property
    def is_control_plane(self) -> bool:
        return self.name == CONTROL_PLANE


@dataclass(frozen=True)
class KeypairSpec:
    name: str  # the Nova keypair's name
    public_key_file: Path | None = None  # set: upload it (ours, deleted with the cluster)
    private_key_file: Path | None = None  # used for SSH to the nodes


@dataclass(frozen=True)
class NetworkSpec:
    existing: str | None = None  # use this network (e.g. auto_allocated_network)
    cidr: str = DEFAULT_CIDR
    external_network: str = DEFAULT_EXTERNAL_NETWORK
    dns_nameservers: tuple[str, ...] = ()
    # The router the cluster's subnet is attached to: a named one of the project's, or (None) the
    # project's only router; `create_router` makes one of the cluster's own instead. Jetstream2
    # gives a project one router (quota 1), already used by its auto_allocated_network.
    router: str | None = None
    create_router: bool = False


@dataclass(frozen=True)
class ShareSpec:
    size_gb: int
    share_type: str = DEFAULT_SHARE_TYPE
    access_rule: str = ""
    # How Kubernetes sees it (playbooks/manila-share.yml): a ReadWriteMany claim in a namespace.
    claim_name: str = ""
    namespace: str = "default"
    fs_name: str | None = None  # CephFS file system name, when the cloud has several
    # Also mount it on every node (/etc/fstab), outside Kubernetes.
    mount_on_nodes: bool = False
    mount_path: str = ""
    # Owner of the share's root (uid, gid), set once: zero-to-jupyterhub's notebook user is 1000:100.
    owner: tuple[int, int] | None = None


@dataclass(frozen=True)
class CredentialSpec:
    # Keystone access rules on the cluster's application credential (access_rules.py): only the
    # calls the cloud controller manager and Cinder CSI make. Opt-in: the cloud must enforce them.
    access_rules: bool = False


@dataclass(frozen=True)
class KubernetesSpec:
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    options: dict[str, Any] = field(default_factory=dict)  # passed to Kubespray as group vars
    # Kubespray's Cinder CSI StorageClass is the cluster's default (with volume expansion), so
    # claims without a storageClassName (JupyterHub's, most charts') are bound.
    default_storage_class: bool = True


@dataclass(frozen=True)
class WorkloadsSpec:
    """What the cluster's workloads will make in the cloud through Kubernetes, declared so the
    quota preflight can count it before anything is built (docs/cloud-resources.md): Cinder
    volumes for claims on the default class (a JupyterHub: one per user and one for the hub), and
    LoadBalancer Services (an Octavia load balancer and a floating IP each)."""

    volumes: int = 0
    volume_gb: int = 0
    load_balancers: int = 0


LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
# Let's Encrypt puts the first name in the certificate's common name, whose upper bound is 64
# characters (RFC 5280 ub-common-name); it refuses longer names.
CERT_NAME_LIMIT = 64
# The ingress controller's IngressClass (Traefik's chart: ingressClass.name defaults to the
# release name; the release is "traefik").
INGRESS_CLASS = "traefik"
HOST_RE = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class DnsSpec:
    zone: str  # the cloud DNS zone, with its final dot: myproj.projects.jetstream-cloud.org.
    name: str  # the record's name inside it: hub -> hub.myproj.projects.jetstream-cloud.org


@dataclass(frozen=True)
class IngressSpec:
    """`ingress:`: web traffic (80/443) into the cluster through an ingress controller on the
    nodes of `group`, HTTPS certificates from Let's Encrypt through cert-manager."""

    group: str = CONTROL_PLANE
    http_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    tls: bool = True
    email: str | None = None
    acme_server: str = LETSENCRYPT
    host: str | None = None  # the DNS name served (from `dns` when that is given)
    dns: DnsSpec | None = None

    @property
    def url(self) -> str | None:
        if not self.host:
            return None
        return f"{'https' if self.tls else 'http'}://{self.host}/"


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    cloud: str
    image: str
    ssh_user: str
    keypair: KeypairSpec
    network: NetworkSpec
    node_groups: tuple[NodeGroup, ...]
    floating_ip: str | None  # an existing address to adopt; None: allocate one
    ssh_cidrs: tuple[str, ...]
    api_cidrs: tuple[str, ...]
    share: ShareSpec | None
    kubernetes: KubernetesSpec
    source: str = "<spec>"
    credential: CredentialSpec = CredentialSpec()
    ingress: IngressSpec | None = None
    su_rates: tuple[tuple[str, float], ...] = ()  # (flavor family, SU per vCPU-hour) overrides
    # GPU groups get NVIDIA's container runtime and device plugin (gpu.py); false: nothing is
    # installed (and a device plugin stackspray installed earlier is removed).
    gpu_install: bool = True
    workloads: WorkloadsSpec = WorkloadsSpec()

    def group(self, name: str) -> NodeGroup | None:
        return next((g for g in self.node_groups if g.name == name), None)

    @property
    def control_plane(self) -> NodeGroup:
        group = self.group(CONTROL_PLANE)
        assert group is not None  # validated
        return group

    def server_names(self, group: NodeGroup) -> list[str]:
        """The names of a group's servers: <cluster>-<group>-<n>, n from 1."""
        return [names.server(self.name, group.name, i) for i in range(1, group.count + 1)]


TOP_KEYS = {
    "name",
    "cloud",
    "image",
    "ssh_user",
    "keypair",
    "network",
    "node_groups",
    "floating_ip",
    "allowed_cidrs",
    "share",
    "kubernetes",
    "credential",
    "ingress",
    "su_rates",
    "gpu",
    "workloads",
}
WORKLOADS_KEYS = {"volumes", "volume_gb", "load_balancers"}
GPU_KEYS = {"install"}
INGRESS_KEYS = {"group", "allowed_cidrs", "tls", "email", "acme_server", "host", "dns"}
CREDENTIAL_KEYS = {"access_rules"}
GROUP_KEYS = {"flavor", "count", "boot_volume_gb", "extra_groups", "autoscale", "heal", "gpus", "taints"}
# Kubespray's node_taints format (roles/kubernetes/node-taint: `kubectl taint node <n> <taint>`):
# key[=value]:effect, the key a label name, the effect one of kubectl's three.
TAINT_RE = re.compile(
    r"(?P<key>([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
    r"(=(?P<value>([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?))?"
    r":(?P<effect>NoSchedule|PreferNoSchedule|NoExecute)"
)
AUTOSCALE_KEYS = {"min", "max", "idle", "pending_for"}
HEAL_KEYS = {"unhealthy_for", "max_unhealthy", "reboot_timeout"}
_MAX_UNHEALTHY = re.compile(r"(\d{1,3})%|\d{1,4}")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*")


def parse_duration(value: object, where: str) -> float:
    """`30s`, `30m`, `2h` or a number of seconds → seconds (ValueError names `where`)."""
    m = (
        _DURATION.fullmatch(str(value))
        if isinstance(value, str | int | float) and value is not True
        else None
    )
    if not m or isinstance(value, bool):
        raise ValueError(f"{where}: expected a duration such as 30s, 30m or 2h, got {_show(value)}")
    return float(m[1]) * {"s": 1, "m": 60, "h": 3600, None: 1}[m[2]]


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(where, f"must be a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if key not in allowed:
                hint = _closest(str(key), allowed)
                label = key if isinstance(key, str) and key.strip() and len(key) <= 60 else _show(key)
                self.add(
                    f"{where}.{label}" if where else label,
                    f"unknown key — remove it{f' (did you mean {hint!r}?)' if hint else ''}",
                )
        return value

    def string(
        self, value: Any, where: str, default: str | None = None, required: bool = False
    ) -> str | None:
        if value is None:
            if required:
                self.add(where, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.add(where, f"must be a non-empty string, got {_show(value)}")
            return default
        if any(j in value for j in JINJA):
            self.add(where, f"{_show(value)} contains a Jinja2 delimiter ({{{{, {{% or {{#}}: remove it")
            return default
        return value

    def integer(
        self, value: Any, where: str, minimum: int, default: int | None = None, maximum: int | None = None
    ) -> int | None:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(where, f"must be a whole number, got {_show(value)}")
            return default
        if value < minimum:
            self.add(where, f"must be at least {minimum}, got {value}")
            return default
        if maximum is not None and value > maximum:
            self.add(where, f"must be at most {maximum}, got {_show(value)}")
            return default
        return value

    def cidr(self, value: Any, where: str, default: str) -> str:
        """An IPv4 range: stackspray's subnets, security group rules and Kubernetes ranges are IPv4."""
        text = self.string(value, where, default)
        try:
            net = ipaddress.ip_network(text, strict=True)
        except (ValueError, TypeError):
            self.add(where, f"{_show(text)} is not a network address in CIDR form, e.g. 10.0.0.0/24")
            return default
        if net.version != 4:
            self.add(where, f"{text} is an IPv6 range: stackspray supports IPv4 ranges only here")
            return default
        return str(net)

    def cidr_list(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ("0.0.0.0/0",)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.add(where, "must be a non-empty list of CIDRs, e.g. [203.0.113.0/24]")
            return ()
        return tuple(self.cidr(v, f"{where}[{i}]", "0.0.0.0/0") for i, v in enumerate(value))


def _closest(word: str, options: set[str]) -> str | None:

    match = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return match[0] if match else None


def parse_spec(data: Any, source: str = "<spec>", env: dict[str, str] | None = None) -> ClusterSpec:
    """Validate a parsed spec document; raise SpecError listing every problem."""
    env = dict(os.environ) if env is None else env
    c = _Checker()
    if not isinstance(data, dict):
        raise SpecError(source, [f"(top level): must be a mapping of keys, got {type(data).__name__}"])
    c.mapping(data, "", TOP_KEYS)

    name = c.string(data.get("name"), "name", required=True) or "invalid"
    if name != "invalid" and not NAME_RE.fullmatch(name):
        c.add(
            "name", f"{name!r} must be {NAME_RULE} (it prefixes every resource and becomes part of hostnames)"
        )

    cloud = c.string(data.get("cloud"), "cloud", default=env.get("OS_CLOUD"))
    if not cloud:
        c.add("cloud", "no cloud given and $OS_CLOUD is not set — name a clouds.yaml entry")
    image = c.string(data.get("image"), "image", DEFAULT_IMAGE)
    ssh_user = c.string(data.get("ssh_user"), "ssh_user", DEFAULT_SSH_USER)
    if ssh_user and not POSIX_USER_RE.fullmatch(ssh_user):
        c.add(
            "ssh_user",
            f"{_show(ssh_user)} is not a user name: lowercase letters, digits, '_' or '-', starting with "
            "a letter or '_', at most 32 (e.g. ubuntu)",
        )
        ssh_user = DEFAULT_SSH_USER

    kp = c.mapping(data.get("keypair"), "keypair", {"name", "public_key_file", "private_key_file"})
    kp_pub = c.string(kp.get("public_key_file"), "keypair.public_key_file")
    kp_priv = c.string(kp.get("private_key_file"), "keypair.private_key_file")
    kp_name = c.string(kp.get("name"), "keypair.name")
    if not kp_name and not kp_pub:
        c.add("keypair", "give `name` (an existing keypair) or `public_key_file` (to upload)")
    pub_path = _path(c, kp_pub, "keypair.public_key_file")
    priv_path = _path(c, kp_priv, "keypair.private_key_file")
    if pub_path and not _is_file(pub_path):
        c.add("keypair.public_key_file", f"{pub_path} does not exist — point it at your .pub file")
    elif pub_path and not _text_head(pub_path).startswith(("ssh-", "ecdsa-")):
        c.add("keypair.public_key_file", f"{pub_path} is not an OpenSSH public key (a UTF-8 text file)")
    if priv_path is None and pub_path is not None and pub_path.suffix == ".pub":
        priv_path = pub_path.with_suffix("")
    keypair = KeypairSpec(kp_name or names.keypair(name), pub_path, priv_path)

    net = c.mapping(
        data.get("network"),
        "network",
        {"existing", "cidr", "external_network", "dns_nameservers", "router", "create_router"},
    )
    existing = c.string(net.get("existing"), "network.existing")
    if existing and "cidr" in net:
        c.add("network", "give either `existing` (use that network) or `cidr` (create one), not both")
    router = c.string(net.get("router"), "network.router")
    create_router = net.get("create_router", False)
    if not isinstance(create_router, bool):
        c.add("network.create_router", f"must be true or false, got {_show(create_router)}")
        create_router = False
    if router and create_router:
        c.add("network", "give either `router` (attach to that router) or `create_router: true`, not both")
    if existing and (router or create_router):
        c.add("network", "`router`/`create_router` apply to a network stackspray creates, not to `existing`")
    dns = net.get("dns_nameservers") or []
    if not isinstance(dns, list):
        c.add("network.dns_nameservers", "must be a list of IP addresses")
        dns = []
    for i, d in enumerate(dns):
        try:
            if not isinstance(d, str) or ipaddress.ip_address(d).version != 4:
                raise ValueError(d)
        except ValueError:
            c.add(f"network.dns_nameservers[{i}]", f"{_show(d)} is not an IPv4 address")
    network = NetworkSpec(
        existing=existing,
        cidr=c.cidr(net.get("cidr"), "network.cidr", DEFAULT_CIDR),
        external_network=c.string(
            net.get("external_network"), "network.external_network", DEFAULT_EXTERNAL_NETWORK
        ),
        dns_nameservers=tuple(str(d) for d in dns),
        router=router,
        create_router=create_router,
    )

    groups = _node_groups(c, data.get("node_groups"))

    fip = data.get("floating_ip")
    fip_address = None
    if isinstance(fip, dict):
        c.mapping(fip, "floating_ip", {"address"})
        fip_address = c.string(fip.get("address"), "floating_ip.address")
    elif fip is not None:
        c.add("floating_ip", "must be a mapping, e.g. {address: 149.165.0.10} to adopt one, or omitted")
    if fip_address:
        try:
            if ipaddress.ip_address(fip_address).version != 4:
                raise ValueError(fip_address)
        except ValueError:
            c.add("floating_ip.address", f"{_show(fip_address)} is not an IPv4 address")
            fip_address = None

    cidrs = c.mapping(data.get("allowed_cidrs"), "allowed_cidrs", {"ssh", "api"})
    ssh_cidrs = c.cidr_list(cidrs.get("ssh"), "allowed_cidrs.ssh")
    api_cidrs = c.cidr_list(cidrs.get("api"), "allowed_cidrs.api")

    share = None
    if data.get("share") is not None:
        sh = c.mapping(
            data["share"],
            "share",
            {
                "size_gb",
                "share_type",
                "access_rule",
                "claim_name",
                "namespace",
                "fs_name",
                "mount_on_nodes",
                "mount_path",
                "owner",
            },
        )
        size = c.integer(sh.get("size_gb"), "share.size_gb", 1, maximum=100_000)
        if size is None and "size_gb" not in sh:
            c.add("share.size_gb", "is required for a share (GiB), e.g. size_gb: 10")
        rule = c.string(sh.get("access_rule"), "share.access_rule", names.share_access_rule(name))
        if rule and not PLAIN_RE.fullmatch(rule):
            c.add("share.access_rule", f"{_show(rule)} may hold only letters, digits, '.', '_' and '-'")
            rule = None
        elif rule and not rule.startswith(name):
            c.add(
                "share.access_rule",
                f"{rule!r} must start with the cluster name {name!r}: "
                "Manila rule names are global to the cloud",
            )
        claim = c.string(sh.get("claim_name"), "share.claim_name", names.share(name))
        namespace = c.string(sh.get("namespace"), "share.namespace", "default")
        for where, value in (("share.claim_name", claim), ("share.namespace", namespace)):
            if value and not K8S_NAME_RE.fullmatch(value):
                c.add(
                    where,
                    f"{value!r} is not a Kubernetes name: lower-case letters, digits and '-', "
                    "starting and ending with a letter or digit, at most 63 characters",
                )
        mount_on_nodes = sh.get("mount_on_nodes", False)
        if not isinstance(mount_on_nodes, bool):
            c.add("share.mount_on_nodes", f"must be true or false, got {_show(mount_on_nodes)}")
            mount_on_nodes = False
        mount_path = c.string(sh.get("mount_path"), "share.mount_path", f"/mnt/{name}-share")
        if mount_path and (not mount_path.startswith("/") or mount_path.rstrip("/") in ("", "/")):
            c.add("share.mount_path", f"{_show(mount_path)} must be an absolute path below /, e.g. /mnt/data")
        elif mount_path and not MOUNT_PATH_RE.fullmatch(mount_path):
            c.add(
                "share.mount_path",
                f"{_show(mount_path)} may hold only letters, digits, '.', '_', '-' and '/' (it goes into "
                "/etc/fstab)",
            )
        fs_name = c.string(sh.get("fs_name"), "share.fs_name")
        if fs_name and not PLAIN_RE.fullmatch(fs_name):
            c.add("share.fs_name", f"{_show(fs_name)} may hold only letters, digits, '.', '_' and '-'")
        owner = None
        if sh.get("owner") is not None:
            o = c.mapping(sh.get("owner"), "share.owner", {"uid", "gid"})
            uid = c.integer(o.get("uid"), "share.owner.uid", 0, maximum=2**31 - 1)
            gid = c.integer(o.get("gid"), "share.owner.gid", 0, maximum=2**31 - 1)
            if isinstance(sh.get("owner"), dict) and (uid is None or gid is None):
                c.add(
                    "share.owner", "give both `uid` and `gid`, e.g. {uid: 1000, gid: 100} (JupyterHub's user)"
                )
            elif uid is not None and gid is not None:
                owner = (uid, gid)
        share = ShareSpec(
            size or 1,
            c.string(sh.get("share_type"), "share.share_type", DEFAULT_SHARE_TYPE),
            rule or names.share_access_rule(name),
            claim_name=claim or names.share(name),
            namespace=namespace or "default",
            fs_name=fs_name,
            mount_on_nodes=mount_on_nodes,
            mount_path=(mount_path or f"/mnt/{name}-share").rstrip("/"),
            owner=owner,
        )

    k8s = data.get("kubernetes") or {}
    if not isinstance(k8s, dict):
        c.add("kubernetes", "must be a mapping of Kubespray variables")
        k8s = {}
    pod = c.cidr(k8s.get("pod_cidr"), "kubernetes.pod_cidr", DEFAULT_POD_CIDR)
    svc = c.cidr(k8s.get("service_cidr"), "kubernetes.service_cidr", DEFAULT_SERVICE_CIDR)
    nets = {"network.cidr": network.cidr, "kubernetes.pod_cidr": pod, "kubernetes.service_cidr": svc}
    items = list(nets.items())
    for i, (ka, a) in enumerate(items):
        for kb, b in items[i + 1 :]:
            if existing and "network.cidr" in (ka, kb):
                continue
            if ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b)):
                c.add(kb, f"{b} overlaps {ka} {a} — choose a range that does not")
    default_class = k8s.get("default_storage_class", True)
    if not isinstance(default_class, bool):
        c.add("kubernetes.default_storage_class", f"must be true or false, got {_show(default_class)}")
        default_class = True
    options = {k: v for k, v in k8s.items() if k not in ("pod_cidr", "service_cidr", "default_storage_class")}
    _node_labels(c, options.get("node_labels"))
    for key in options:
        where = f"kubernetes.{key}"
        if not isinstance(key, str) or not ANSIBLE_VAR_RE.fullmatch(key):
            c.add(where, "is not a Kubespray variable name (letters, digits and '_')")
        elif key in OWNED_KUBESPRAY_VARS or key.startswith(OWNED_KUBESPRAY_PREFIXES):
            instead = OWNED_KUBESPRAY_VARS.get(key)
            c.add(
                where,
                "is set by stackspray itself"
                + (f": use the spec field `{instead}` instead" if instead else ": remove it"),
            )

    cred = c.mapping(data.get("credential"), "credential", CREDENTIAL_KEYS)
    access_rules = cred.get("access_rules", False)
    if not isinstance(access_rules, bool):
        c.add("credential.access_rules", f"must be true or false, got {_show(access_rules)}")
        access_rules = False

    ingress = _ingress(c, data.get("ingress"), groups, options) if data.get("ingress") is not None else None

    gpu = c.mapping(data.get("gpu"), "gpu", GPU_KEYS)
    gpu_install = gpu.get("install", True)
    if not isinstance(gpu_install, bool):
        c.add("gpu.install", f"must be true or false, got {_show(gpu_install)}")
        gpu_install = True

    wl = c.mapping(data.get("workloads"), "workloads", WORKLOADS_KEYS)
    workloads = WorkloadsSpec(
        volumes=c.integer(wl.get("volumes"), "workloads.volumes", 0, 0, maximum=10_000) or 0,
        volume_gb=c.integer(wl.get("volume_gb"), "workloads.volume_gb", 1, 0, maximum=100_000) or 0,
        load_balancers=c.integer(wl.get("load_balancers"), "workloads.load_balancers", 0, 0, maximum=1_000)
        or 0,
    )
    if workloads.volumes and not workloads.volume_gb:
        c.add("workloads.volume_gb", "is required with workloads.volumes: the size of each claim in GB")
    if workloads.volumes and not default_class:
        c.add(
            "workloads.volumes",
            "counts claims on the default class, but kubernetes.default_storage_class is false: remove one",
        )

    su_rates: tuple[tuple[str, float], ...] = ()
    try:
        su_rates = tuple(
            (f, r.su_per_vcpu_hour)
            for f, r in sorted(cost.parse_table(data.get("su_rates"), "su_rates", "spec").items())
        )
    except cost.RatesError as exc:
        c.problems.append(str(exc))

    total = sum(g.count for g in groups)
    if total > MAX_NODES:
        c.add("node_groups", f"{total} nodes in all: stackspray builds at most {MAX_NODES} per cluster")
    if not existing and total and network.cidr:
        room = ipaddress.ip_network(network.cidr).num_addresses - 4  # network, broadcast, gateway, DHCP
        if room < total:
            c.add(
                "network.cidr",
                f"{network.cidr} has room for {max(room, 0)} node(s), the spec has {total}: use a larger "
                "range, e.g. a /24",
            )

    if c.problems:
        raise SpecError(source, c.problems)
    return ClusterSpec(
        name=name,
        cloud=cloud or "",
        image=image or DEFAULT_IMAGE,
        ssh_user=ssh_user or DEFAULT_SSH_USER,
        keypair=keypair,
        network=network,
        node_groups=groups,
        floating_ip=fip_address,
        ssh_cidrs=ssh_cidrs,
        api_cidrs=api_cidrs,
        share=share,
        kubernetes=KubernetesSpec(pod, svc, options, default_class),
        source=source,
        credential=CredentialSpec(access_rules=access_rules),
        ingress=ingress,
        su_rates=su_rates,
        gpu_install=gpu_install,
        workloads=workloads,
    )


def _ingress(c: _Checker, raw: Any, groups: tuple[NodeGroup, ...], options: dict) -> IngressSpec | None:
    ing = c.mapping(raw, "ingress", INGRESS_KEYS)
    if not isinstance(raw, dict):
        return None
    group = c.string(ing.get("group"), "ingress.group", CONTROL_PLANE) or CONTROL_PLANE
    if groups and group not in {g.name for g in groups}:
        c.add("ingress.group", f"{group!r} is not a node group (have: {', '.join(g.name for g in groups)})")
    cidrs = c.mapping(ing.get("allowed_cidrs"), "ingress.allowed_cidrs", {"http"})
    http = c.cidr_list(cidrs.get("http"), "ingress.allowed_cidrs.http")
    tls = ing.get("tls", True)
    if not isinstance(tls, bool):
        c.add("ingress.tls", f"must be true or false, got {_show(tls)}")
        tls = True
    email = c.string(ing.get("email"), "ingress.email")
    if email and not EMAIL_RE.fullmatch(email):
        c.add("ingress.email", f"{_show(email)} is not an e-mail address (Let's Encrypt writes to it)")
    acme = c.string(ing.get("acme_server"), "ingress.acme_server", LETSENCRYPT) or LETSENCRYPT
    if not acme.startswith("https://"):
        c.add("ingress.acme_server", f"{_show(acme)} must be an https:// ACME directory URL")
    host = c.string(ing.get("host"), "ingress.host")
    dns = None
    if ing.get("dns") is not None:
        d = c.mapping(ing.get("dns"), "ingress.dns", {"zone", "name"})
        zone = c.string(d.get("zone"), "ingress.dns.zone", required=True)
        rname = c.string(d.get("name"), "ingress.dns.name", required=True)
        if zone and rname:
            zone = zone.lower().rstrip(".") + "."
            full = f"{rname.lower().rstrip('.')}.{zone}".rstrip(".")
            if host and host.lower().rstrip(".") != full:
                c.add(
                    "ingress.host", f"{host!r} is not the name ingress.dns makes ({full}): give one of them"
                )
            host = full
            dns = DnsSpec(zone, rname.lower().rstrip("."))
        if group != CONTROL_PLANE:
            c.add(
                "ingress.dns",
                f"the record points at the cluster's floating IP, which is on the first {CONTROL_PLANE} "
                f"node, not in group {group!r}: serve ingress from {CONTROL_PLANE} or drop `dns`",
            )
    if host:
        host = host.lower().rstrip(".")
        if not HOST_RE.fullmatch(host):
            c.add(
                "ingress.host" if dns is None else "ingress.dns",
                f"{host!r} is not a DNS name (labels of letters, digits and '-', at most 63 each)",
            )
        elif tls and len(host) > CERT_NAME_LIMIT:
            c.add(
                "ingress.host" if dns is None else "ingress.dns",
                f"{host!r} is {len(host)} characters: Let's Encrypt refuses names over "
                f"{CERT_NAME_LIMIT} (the certificate's common name) — use a shorter name",
            )
    if tls:
        if not email:
            c.add("ingress.email", "is required with TLS (Let's Encrypt's account and expiry notices)")
        if not host:
            c.add(
                "ingress",
                "TLS needs a DNS name (Let's Encrypt issues certificates for names, not addresses): "
                "give `host` (a name pointing at the floating IP) or `dns` {zone, name}, or set tls: false",
            )
    if options.get("helm_enabled") is False:
        c.add("kubernetes.helm_enabled", "must not be false with `ingress` (its controller is a Helm chart)")
    return IngressSpec(group, http, tls, email, acme, host or None, dns)


def _node_groups(c: _Checker, raw: Any) -> tuple[NodeGroup, ...]:
    if raw is None:
        c.add("node_groups", f"is required: at least `{CONTROL_PLANE}` and `{WORKERS}`")
        return ()
    if not isinstance(raw, dict):
        c.add("node_groups", "must be a mapping of group name to {flavor, count}")
        return ()
    groups = []
    for gname, g in raw.items():
        where = f"node_groups.{gname}" if isinstance(gname, str) else "node_groups"
        if not isinstance(gname, str) or not GROUP_RE.fullmatch(gname):
            c.add(
                f"node_groups.{_show(gname)}",
                "group names are lowercase letters, digits and '-' (at most 21)",
            )
            continue
        g = c.mapping(g, where, GROUP_KEYS)
        flavor = c.string(g.get("flavor"), f"{where}.flavor", required=True)
        count = c.integer(g.get("count"), f"{where}.count", 0, default=None, maximum=MAX_GROUP_COUNT)
        if count is None and "count" not in g:
            c.add(f"{where}.count", "is required")
        vol = c.integer(g.get("boot_volume_gb"), f"{where}.boot_volume_gb", 1, maximum=10_000)
        extra = g.get("extra_groups") or []
        if not isinstance(extra, list):
            c.add(f"{where}.extra_groups", "must be a list of Kubespray group names")
            extra = []
        for i, e in enumerate(extra):
            if not isinstance(e, str) or not KUBESPRAY_GROUP_RE.fullmatch(e):
                c.add(f"{where}.extra_groups[{i}]", f"{_show(e)} is not a valid Ansible group name")
            elif e in ("kube_control_plane", "kube_node", "etcd", "k8s_cluster", "bastion"):
                c.add(f"{where}.extra_groups[{i}]", f"{e!r} is managed by stackspray — remove it")
        auto = _autoscale(c, g.get("autoscale"), f"{where}.autoscale", gname, count or 0)
        heal = _heal(c, g.get("heal"), f"{where}.heal")
        gpus = c.integer(g.get("gpus"), f"{where}.gpus", 0, maximum=16)
        taints = _taints(c, g.get("taints"), f"{where}.taints")
        groups.append(
            NodeGroup(
                gname, flavor or "", count or 0, vol, tuple(str(e) for e in extra), auto, heal, gpus, taints
            )
        )
    names = {g.name for g in groups}
    if CONTROL_PLANE not in names and isinstance(raw, dict) and CONTROL_PLANE not in raw:
        c.add("node_groups", f"`{CONTROL_PLANE}` is required (it runs etcd and the API server)")
    if WORKERS not in names and isinstance(raw, dict) and WORKERS not in raw:
        c.add("node_groups", f"`{WORKERS}` is required (count may be 0)")
    cp = next((g for g in groups if g.is_control_plane), None)
    if cp is not None and isinstance(raw.get(CONTROL_PLANE), dict) and "count" in raw[CONTROL_PLANE]:
        if cp.count < 1:
            c.add(f"node_groups.{CONTROL_PLANE}.count", "must be at least 1")
        elif cp.count % 2 == 0:
            c.add(
                f"node_groups.{CONTROL_PLANE}.count",
                f"{cp.count} is even: etcd runs on the control plane and needs an odd count "
                f"(use {cp.count - 1} or {cp.count + 1})",
            )
    return tuple(groups)


def _taints(c: _Checker, raw: Any, where: str) -> tuple[str, ...]:
    """node_groups.<g>.taints: Kubespray's node_taints strings, or a clear error."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.add(where, "must be a list of taints like 'nvidia.com/gpu=:NoSchedule'")
        return ()
    out = []
    for i, t in enumerate(raw):
        if not isinstance(t, str) or not TAINT_RE.fullmatch(t):
            c.add(
                f"{where}[{i}]",
                f"{_show(t)} is not a taint: write key=value:Effect (value may be empty), Effect one of "
                "NoSchedule, PreferNoSchedule, NoExecute — e.g. 'nvidia.com/gpu=:NoSchedule'",
            )
        else:
            out.append(t)
    return tuple(out)


# Kubernetes label syntax (k8s.io/apimachinery/pkg/util/validation: IsQualifiedName, IsValidLabelValue).
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")


def _node_labels(c: _Checker, raw: Any) -> None:
    """kubernetes.node_labels (Kubespray's, on every node): Kubernetes labels, or a clear error."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        c.add("kubernetes.node_labels", "must be a mapping of label to value, e.g. {site: iu}")
        return
    for k, v in raw.items():
        where = f"kubernetes.node_labels.{_show(k)}"
        if not isinstance(k, str) or not _LABEL_KEY.fullmatch(k) or len(k.rsplit("/", 1)[0]) > 253:
            c.add(
                where,
                "is not a Kubernetes label name (letters, digits, '-', '_', '.', an optional DNS prefix/)",
            )
        elif k == names.GROUP_LABEL:
            c.add(where, "is set by stackspray itself (each node's group): remove it")
        elif not isinstance(v, str) or not _LABEL_VALUE.fullmatch(v):
            c.add(
                where,
                f"{_show(v)} is not a Kubernetes label value (at most 63 letters, digits, '-', '_', '.')",
            )


def _autoscale(c: _Checker, raw: Any, where: str, group: str, count: int) -> AutoscaleSpec | None:
    if raw is None:
        return None
    raw = c.mapping(raw, where, AUTOSCALE_KEYS)
    if group == CONTROL_PLANE:
        c.add(where, "the control plane is never shelved: autoscale workers' groups only")
        return None
    lo = c.integer(raw.get("min"), f"{where}.min", 0, default=0)
    hi = c.integer(raw.get("max"), f"{where}.max", 1, default=count)
    if lo is not None and hi is not None and lo > hi:
        c.add(f"{where}.min", f"{lo} is above max {hi}")
    if hi is not None and hi > count:
        c.add(
            f"{where}.max",
            f"{hi} is above the group's count {count}: autoscaling wakes shelved workers, it adds none",
        )
    times = {}
    for key, default in (("idle", 1800.0), ("pending_for", 30.0)):
        try:
            times[key] = parse_duration(raw[key], f"{where}.{key}") if key in raw else default
        except ValueError as exc:
            c.problems.append(str(exc))
            times[key] = default
    return AutoscaleSpec(lo or 0, hi if hi is not None else count, times["idle"], times["pending_for"])


def _heal(c: _Checker, raw: Any, where: str) -> HealSpec:
    if raw is None:
        return HealSpec()
    raw = c.mapping(raw, where, HEAL_KEYS)
    times = {}
    for key in ("unhealthy_for", "reboot_timeout"):
        try:
            times[key] = parse_duration(raw[key], f"{where}.{key}") if key in raw else 300.0
        except ValueError as exc:
            c.problems.append(str(exc))
            times[key] = 300.0
    most = raw.get("max_unhealthy", "40%")
    m = (
        _MAX_UNHEALTHY.fullmatch(str(most))
        if isinstance(most, str | int) and not isinstance(most, bool)
        else None
    )
    if not m or (m[1] is not None and int(m[1]) > 100):
        c.add(f"{where}.max_unhealthy", f"{_show(most)} is not a node count or a percentage such as 40%")
        most = "40%"
    return HealSpec(times["unhealthy_for"], str(most), times["reboot_timeout"])


def spec_path(path: str | os.PathLike[str]) -> Path:
    """The spec file meant by `path`: the path itself, or a bare name under ./clusters/."""
    p = Path(path)
    if not p.exists() and not p.suffix and (Path("clusters") / f"{p}.yaml").exists():
        p = Path("clusters") / f"{p}.yaml"
    if not p.is_file():
        raise SpecError(str(path), ["(file): not found — give a path or a name under clusters/"])
    return p


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what a spec never needs and a hostile file would use:
    duplicate keys (the later one silently won) and more than MAX_ALIASES aliases (a small
    "billion laughs" file expands ×10 per level)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases (*name): refused", event.start_mark
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {key_node.value!r} appears twice (first at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def parse_spec_text(text: str, source: str, env: dict[str, str] | None = None) -> ClusterSpec:
    """Validate a spec given as YAML text (`source` names it in errors)."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(source, [f"(file): {len(text)} characters; a spec is at most {MAX_SPEC_BYTES}"])
    try:
        data = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"(file): not valid YAML: {_show_text(str(exc))}"]) from None
    except RecursionError:
        raise SpecError(source, ["(file): nested too deeply to be a cluster spec"]) from None
    return parse_spec(data, source, env)


def load_spec(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> ClusterSpec:
    """Read and validate a spec file (a path, or a name under ./clusters/)."""
    p = spec_path(path)
    raw = p.read_bytes()
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(str(p), [f"(file): {len(raw)} bytes; a spec is at most {MAX_SPEC_BYTES}"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(str(p), [f"(file): not UTF-8 text (byte {exc.start}): save it as UTF-8"]) from None
    return parse_spec_text(text, str(p), env)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 2, 3, 3, 3, 3
_REPR.maxstring = _REPR.maxother = 50


def _show(value: object, limit: int = 60) -> str:
    """A value in a message, cut short without walking all of it: a message (and the time to
    write it) must not grow with a hostile input, e.g. an alias bomb's billion-element list."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show_text(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _path(c: _Checker, value: str | None, where: str) -> Path | None:
    if not value:
        return None
    if "\0" in value or "\n" in value:
        c.add(where, f"{_show(value)} is not a usable path")
        return None
    return Path(value).expanduser()


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


def _text_head(p: Path) -> str:
    """The start of a small text file ('' when it cannot be read as UTF-8 text)."""
    try:
        with p.open("rb") as fh:
            return fh.read(4096).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


@dataclass(frozen=True)
class CloudCatalog:
    """What the cloud offers, as observed: the inputs of `check_against_cloud`."""

    flavors: dict[str, dict]  # name -> {"vcpus", "ram", "extra_specs"}
    images: set[str]
    networks: set[str]  # names
    external_networks: set[str]
    keypairs: set[str]
    floating_ips: dict[str, str | None]  # address -> port_id (our project's)
    share_types: set[str] | None  # None: the cloud has no shared-file-system service
    dns_zones: set[str] | None = None  # None: the cloud has no DNS service (or it was not asked)


def check_against_cloud(spec: ClusterSpec, cat: CloudCatalog) -> None:
    """Raise SpecError for each thing the spec names that the cloud does not have."""
    problems = []
    for g in spec.node_groups:
        if g.flavor not in cat.flavors:
            near = _closest(g.flavor, set(cat.flavors))
            problems.append(
                f"node_groups.{g.name}.flavor: {g.flavor!r} does not exist in cloud "
                f"{spec.cloud!r}{f' — did you mean {near!r}?' if near else ''} "
                f"(`openstack flavor list`)"
            )
    if spec.image not in cat.images:
        problems.append(
            f"image: {spec.image!r} does not exist in cloud {spec.cloud!r} (`openstack image list`)"
        )
    if spec.network.existing and spec.network.existing not in cat.networks:
        problems.append(f"network.existing: no network {spec.network.existing!r} (`openstack network list`)")
    if not spec.network.existing and spec.network.external_network not in cat.external_networks:
        problems.append(
            f"network.external_network: {spec.network.external_network!r} is not an external "
            f"network in cloud {spec.cloud!r} (have: {', '.join(sorted(cat.external_networks))})"
        )
    if spec.keypair.public_key_file is None and spec.keypair.name not in cat.keypairs:
        problems.append(f"keypair.name: no keypair {spec.keypair.name!r} — create it or give public_key_file")
    if spec.floating_ip and spec.floating_ip not in cat.floating_ips:
        problems.append(
            f"floating_ip.address: {spec.floating_ip} is not allocated to this project — "
            "allocate it first or remove the key to get a new one"
        )
    if spec.share:
        if cat.share_types is None:
            problems.append("share: this cloud has no shared-file-system (Manila) service — remove `share`")
        elif spec.share.share_type not in cat.share_types:
            problems.append(
                f"share.share_type: {spec.share.share_type!r} does not exist "
                f"(have: {', '.join(sorted(cat.share_types))})"
            )
    dns = spec.ingress.dns if spec.ingress else None
    if dns is not None:
        if cat.dns_zones is None:
            problems.append(
                f"ingress.dns: cloud {spec.cloud!r} has no DNS service (Designate) — remove `dns`, point a "
                "name at the floating IP elsewhere and give it as `ingress.host`"
            )
        elif dns.zone not in cat.dns_zones:
            have = ", ".join(sorted(cat.dns_zones)) or "none"
            problems.append(
                f"ingress.dns.zone: the project has no DNS zone {dns.zone!r} (have: {have}; "
                "`openstack zone list`)"
            )
    if problems:
        raise SpecError(spec.source, problems)
