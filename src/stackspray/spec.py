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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import names
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


NAME_RULE = "1-32 lowercase letters, digits or '-', starting with a letter and not ending in '-'"


def check_cluster_name(name: object, flag: str = "--cluster") -> str:
    """A cluster name given on the command line, checked like a spec's `name` (it becomes a
    folder under inventories/, a unit and a crontab name): anything else is refused, naming the flag."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise StackSprayError(f"{flag}: {name!r} is not a cluster name: it must be {NAME_RULE}")
    return name


@dataclass(frozen=True)
class NodeGroup:
    name: str
    flavor: str
    count: int
    boot_volume_gb: int | None = None
    extra_groups: tuple[str, ...] = ()

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


@dataclass(frozen=True)
class KubernetesSpec:
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    options: dict[str, Any] = field(default_factory=dict)  # passed to Kubespray as group vars


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
}
GROUP_KEYS = {"flavor", "count", "boot_volume_gb", "extra_groups"}


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
                self.add(
                    f"{where}.{key}" if where else str(key),
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
            self.add(where, f"must be a non-empty string, got {value!r}")
            return default
        return value

    def integer(self, value: Any, where: str, minimum: int, default: int | None = None) -> int | None:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(where, f"must be a whole number, got {value!r}")
            return default
        if value < minimum:
            self.add(where, f"must be at least {minimum}, got {value}")
            return default
        return value

    def cidr(self, value: Any, where: str, default: str) -> str:
        text = self.string(value, where, default)
        try:
            return str(ipaddress.ip_network(text, strict=True))
        except (ValueError, TypeError):
            self.add(where, f"{text!r} is not a network address in CIDR form, e.g. 10.0.0.0/24")
            return default

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

    kp = c.mapping(data.get("keypair"), "keypair", {"name", "public_key_file", "private_key_file"})
    kp_pub = c.string(kp.get("public_key_file"), "keypair.public_key_file")
    kp_priv = c.string(kp.get("private_key_file"), "keypair.private_key_file")
    kp_name = c.string(kp.get("name"), "keypair.name")
    if not kp_name and not kp_pub:
        c.add("keypair", "give `name` (an existing keypair) or `public_key_file` (to upload)")
    pub_path = Path(kp_pub).expanduser() if kp_pub else None
    priv_path = Path(kp_priv).expanduser() if kp_priv else None
    if pub_path and not pub_path.is_file():
        c.add("keypair.public_key_file", f"{pub_path} does not exist — point it at your .pub file")
    elif pub_path and not pub_path.read_text().startswith(("ssh-", "ecdsa-")):
        c.add("keypair.public_key_file", f"{pub_path} is not an OpenSSH public key")
    if priv_path is None and pub_path is not None and pub_path.suffix == ".pub":
        priv_path = pub_path.with_suffix("")
    keypair = KeypairSpec(kp_name or names.keypair(name), pub_path, priv_path)

    net = c.mapping(
        data.get("network"), "network", {"existing", "cidr", "external_network", "dns_nameservers"}
    )
    existing = c.string(net.get("existing"), "network.existing")
    if existing and "cidr" in net:
        c.add("network", "give either `existing` (use that network) or `cidr` (create one), not both")
    dns = net.get("dns_nameservers") or []
    if not isinstance(dns, list):
        c.add("network.dns_nameservers", "must be a list of IP addresses")
        dns = []
    for i, d in enumerate(dns):
        try:
            ipaddress.ip_address(d)
        except ValueError:
            c.add(f"network.dns_nameservers[{i}]", f"{d!r} is not an IP address")
    network = NetworkSpec(
        existing=existing,
        cidr=c.cidr(net.get("cidr"), "network.cidr", DEFAULT_CIDR),
        external_network=c.string(
            net.get("external_network"), "network.external_network", DEFAULT_EXTERNAL_NETWORK
        ),
        dns_nameservers=tuple(str(d) for d in dns),
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
            ipaddress.ip_address(fip_address)
        except ValueError:
            c.add("floating_ip.address", f"{fip_address!r} is not an IP address")

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
            },
        )
        size = c.integer(sh.get("size_gb"), "share.size_gb", 1)
        if sh and size is None and "size_gb" not in sh:
            c.add("share.size_gb", "is required for a share (GiB)")
        rule = c.string(sh.get("access_rule"), "share.access_rule", names.share_access_rule(name))
        if rule and not rule.startswith(name):
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
            c.add("share.mount_on_nodes", f"must be true or false, got {mount_on_nodes!r}")
            mount_on_nodes = False
        mount_path = c.string(sh.get("mount_path"), "share.mount_path", f"/mnt/{name}-share")
        if mount_path and (not mount_path.startswith("/") or mount_path.rstrip("/") in ("", "/")):
            c.add("share.mount_path", f"{mount_path!r} must be an absolute path below /, e.g. /mnt/data")
        elif mount_path and any(ch.isspace() for ch in mount_path):
            c.add("share.mount_path", f"{mount_path!r} must not contain spaces (it goes into /etc/fstab)")
        share = ShareSpec(
            size or 1,
            c.string(sh.get("share_type"), "share.share_type", DEFAULT_SHARE_TYPE),
            rule or names.share_access_rule(name),
            claim_name=claim or names.share(name),
            namespace=namespace or "default",
            fs_name=c.string(sh.get("fs_name"), "share.fs_name"),
            mount_on_nodes=mount_on_nodes,
            mount_path=(mount_path or f"/mnt/{name}-share").rstrip("/"),
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
    options = {k: v for k, v in k8s.items() if k not in ("pod_cidr", "service_cidr")}

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
        kubernetes=KubernetesSpec(pod, svc, options),
        source=source,
    )


def _node_groups(c: _Checker, raw: Any) -> tuple[NodeGroup, ...]:
    if raw is None:
        c.add("node_groups", f"is required: at least `{CONTROL_PLANE}` and `{WORKERS}`")
        return ()
    if not isinstance(raw, dict):
        c.add("node_groups", "must be a mapping of group name to {flavor, count}")
        return ()
    groups = []
    for gname, g in raw.items():
        where = f"node_groups.{gname}"
        if not isinstance(gname, str) or not GROUP_RE.fullmatch(gname):
            c.add(where, "group names are lowercase letters, digits and '-' (at most 21)")
            continue
        g = c.mapping(g, where, GROUP_KEYS)
        flavor = c.string(g.get("flavor"), f"{where}.flavor", required=True)
        count = c.integer(g.get("count"), f"{where}.count", 0, default=None)
        if count is None and "count" not in g:
            c.add(f"{where}.count", "is required")
        vol = c.integer(g.get("boot_volume_gb"), f"{where}.boot_volume_gb", 1)
        extra = g.get("extra_groups") or []
        if not isinstance(extra, list):
            c.add(f"{where}.extra_groups", "must be a list of Kubespray group names")
            extra = []
        for i, e in enumerate(extra):
            if not isinstance(e, str) or not KUBESPRAY_GROUP_RE.fullmatch(e):
                c.add(f"{where}.extra_groups[{i}]", f"{e!r} is not a valid Ansible group name")
            elif e in ("kube_control_plane", "kube_node", "etcd", "k8s_cluster", "bastion"):
                c.add(f"{where}.extra_groups[{i}]", f"{e!r} is managed by stackspray — remove it")
        groups.append(NodeGroup(gname, flavor or "", count or 0, vol, tuple(str(e) for e in extra)))
    names = {g.name for g in groups}
    if CONTROL_PLANE not in names and isinstance(raw, dict) and CONTROL_PLANE not in raw:
        c.add("node_groups", f"`{CONTROL_PLANE}` is required (it runs etcd and the API server)")
    if WORKERS not in names and isinstance(raw, dict) and WORKERS not in raw:
        c.add("node_groups", f"`{WORKERS}` is required (count may be 0)")
    cp = next((g for g in groups if g.is_control_plane), None)
    if cp is not None and "count" in (raw.get(CONTROL_PLANE) or {}):
        if cp.count < 1:
            c.add(f"node_groups.{CONTROL_PLANE}.count", "must be at least 1")
        elif cp.count % 2 == 0:
            c.add(
                f"node_groups.{CONTROL_PLANE}.count",
                f"{cp.count} is even: etcd runs on the control plane and needs an odd count "
                f"(use {cp.count - 1} or {cp.count + 1})",
            )
    return tuple(groups)


def spec_path(path: str | os.PathLike[str]) -> Path:
    """The spec file meant by `path`: the path itself, or a bare name under ./clusters/."""
    p = Path(path)
    if not p.exists() and not p.suffix and (Path("clusters") / f"{p}.yaml").exists():
        p = Path("clusters") / f"{p}.yaml"
    if not p.is_file():
        raise SpecError(str(path), ["(file): not found — give a path or a name under clusters/"])
    return p


def parse_spec_text(text: str, source: str, env: dict[str, str] | None = None) -> ClusterSpec:
    """Validate a spec given as YAML text (`source` names it in errors)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"(file): not valid YAML: {exc}"]) from exc
    return parse_spec(data, source, env)


def load_spec(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> ClusterSpec:
    """Read and validate a spec file (a path, or a name under ./clusters/)."""
    p = spec_path(path)
    return parse_spec_text(p.read_text(), str(p), env)


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
    if problems:
        raise SpecError(spec.source, problems)
