"""Planning: a pure function from the cluster spec and the observed cloud to a list of actions.

Nothing here talks to the cloud. `observe.py` builds an `Observed` from the cloud, `apply.py`
carries the actions out. Every resource the spec implies gets exactly one action — `create`,
`delete`, `update`, or `noop` with the reason — so the printed plan says what will change and
what will be left alone, and a second run after a complete one plans only no-ops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from . import names
from .names import OWNER_TAG, cluster_tag
from .spec import ClusterSpec, NodeGroup

__all__ = ["OWNER_TAG", "cluster_tag", "plan", "plan_destroy"]
Kind = Literal["create", "update", "delete", "noop", "conflict"]

# Kubespray's OpenStack Terraform opens these (contrib/terraform/openstack/modules/network).
NODEPORT_RANGE = (30000, 32767)
API_PORT = 6443
HTTP_PORTS = (80, 443)  # the ingress controller's, on the host network of the ingress nodes


@dataclass(frozen=True)
class Res:
    """One observed resource: its id, name, whether it carries our ownership tag, and details."""

    id: str
    name: str
    owned: bool = True
    status: str = ""
    detail: dict = field(default_factory=dict)


@dataclass
class Observed:
    """What exists in the cloud for this cluster (by name and ownership tags), plus the state file."""

    network: Res | None = None
    subnet: Res | None = None
    router: Res | None = None  # detail: {"interfaces": [subnet ids]}
    # "own": the cluster's `<c>-router` (found, or to create); "existing": `router` is one of the
    # project's (Jetstream2's auto_allocated_router): never ours, only our subnet is attached.
    router_mode: str = "own"
    security_groups: dict[str, Res] = field(default_factory=dict)  # detail: {"rules": [rule tuples]}
    keypair: Res | None = None
    server_groups: dict[str, Res] = field(default_factory=dict)
    server_group_limit: int = -1  # Nova's server_group_members quota (-1: unlimited)
    ports: dict[str, Res] = field(default_factory=dict)  # by name; detail: {"device_id"}
    servers: dict[str, Res] = field(default_factory=dict)  # by name; status; detail: {"flavor", "group"}
    floating_ip: Res | None = None  # detail: {"address", "port_id", "adopted"}
    share: Res | None = None
    access_rule: Res | None = None
    dns_record: Res | None = None  # the ingress's A record; detail: {"zone", "zone_id", "records"}
    stale_dns: list[Res] = field(default_factory=list)  # the cluster's records the spec no longer names


@dataclass(frozen=True)
class Action:
    kind: Kind
    resource: str  # network, subnet, router, router-interface, security-group, ...
    name: str
    reason: str = ""
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def sg_name(spec: ClusterSpec, role: str) -> str:
    return names.security_group(spec.name, role)


def desired_security_groups(spec: ClusterSpec) -> dict[str, list[tuple]]:
    """Group name -> rules as (direction, ethertype, protocol, port_min, port_max, remote_cidr, remote_group).

    remote_group "self" means the group itself (every member may reach every other)."""
    groups: dict[str, list[tuple]] = {
        sg_name(spec, "cluster"): [
            ("ingress", "IPv4", None, None, None, None, "self"),
        ],
        sg_name(spec, "ssh"): [("ingress", "IPv4", "tcp", 22, 22, c, None) for c in spec.ssh_cidrs],
        sg_name(spec, "api"): [
            ("ingress", "IPv4", "tcp", API_PORT, API_PORT, c, None) for c in spec.api_cidrs
        ],
        sg_name(spec, "nodeport"): [
            ("ingress", "IPv4", "tcp", *NODEPORT_RANGE, c, None) for c in spec.api_cidrs
        ],
    }
    if spec.ingress is not None:
        groups[sg_name(spec, "ingress")] = [
            ("ingress", "IPv4", "tcp", p, p, c, None) for c in spec.ingress.http_cidrs for p in HTTP_PORTS
        ]
    return groups


def groups_for(spec: ClusterSpec, group: NodeGroup) -> list[str]:
    """Security groups of a node group's ports: the API on the control plane, NodePorts on workers,
    80/443 on the ingress group's."""
    names = [sg_name(spec, "cluster"), sg_name(spec, "ssh")]
    names.append(sg_name(spec, "api") if group.is_control_plane else sg_name(spec, "nodeport"))
    if spec.ingress is not None and spec.ingress.group == group.name:
        names.append(sg_name(spec, "ingress"))
    return names


def ours_on_port(spec: ClusterSpec, port: Res) -> list[str] | None:
    """The cluster's security groups on an observed port (by name), or None when not observed.
    Groups that are not the cluster's (a user's own) are never touched."""
    on = port.detail.get("security_groups")
    if on is None:
        return None
    return sorted(n for n in on if n in names.security_groups(spec.name))


def server_group_of(spec: ClusterSpec, group: NodeGroup, limit: int) -> dict[str, str]:
    """Server name -> its server group. A group larger than Nova's server_group_members quota
    is spread over several soft-anti-affinity groups (<c>-<group>-1, -2, ...) of at most `limit`."""
    servers = spec.server_names(group)
    if limit <= 0 or group.count <= limit:
        return dict.fromkeys(servers, names.server_group(spec.name, group.name))
    return {n: names.server_group(spec.name, group.name, i // limit + 1) for i, n in enumerate(servers)}


def _index(name: str) -> int:
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    """The actions that converge the cloud on the spec, in dependency order."""
    acts: list[Action] = []

    def have(kind: str, name: str, res: Res | None, what: str = "exists") -> bool:
        if res is None:
            return False
        if not res.owned:
            acts.append(
                Action(
                    "conflict",
                    kind,
                    name,
                    f"a {kind} named {name} exists but is not owned by cluster {spec.name}: "
                    "rename or delete it, or change the cluster name",
                )
            )
            return True
        acts.append(Action("noop", kind, name, f"{what} ({res.id})"))
        return True

    # network
    if spec.network.existing:
        acts.append(Action("noop", "network", spec.network.existing, "existing network from the spec"))
    else:
        net_name = names.network(spec.name)
        if not have("network", net_name, obs.network):
            acts.append(Action("create", "network", net_name, "missing"))
        sub_name, router_name = names.subnet(spec.name), names.router(spec.name)
        if not have("subnet", sub_name, obs.subnet):
            acts.append(
                Action(
                    "create",
                    "subnet",
                    sub_name,
                    "missing",
                    {"cidr": spec.network.cidr, "dns": list(spec.network.dns_nameservers)},
                )
            )
        if obs.router_mode == "existing" and obs.router is not None:
            router_name = obs.router.name
            acts.append(
                Action(
                    "noop",
                    "router",
                    router_name,
                    f"the project's router ({obs.router.id}): the cluster's subnet is attached to it; "
                    "it is never changed or deleted",
                )
            )
        elif not have("router", router_name, obs.router):
            acts.append(
                Action(
                    "create",
                    "router",
                    router_name,
                    "missing",
                    {"external_network": spec.network.external_network},
                )
            )
        ifaces = obs.router.detail.get("interfaces", []) if obs.router else []
        router_id = {"router_id": obs.router.id} if obs.router else {}
        if obs.subnet and obs.subnet.id in ifaces:
            acts.append(Action("noop", "router-interface", router_name, "subnet attached", router_id))
        else:
            acts.append(Action("create", "router-interface", router_name, "subnet not attached", router_id))

    # security groups and their rules
    for name, rules in desired_security_groups(spec).items():
        res = obs.security_groups.get(name)
        if res is None:
            acts.append(
                Action("create", "security-group", name, "missing", {"rules": [list(r) for r in rules]})
            )
            continue
        if not res.owned:
            have("security-group", name, res)
            continue
        observed_rules = {tuple(r) for r in res.detail.get("rules", [])}
        missing = [list(r) for r in rules if tuple(r) not in observed_rules]
        extra = [list(r) for r in observed_rules if r not in set(rules)]
        if missing or extra:
            acts.append(
                Action(
                    "update",
                    "security-group",
                    name,
                    f"{len(missing)} rule(s) to add, {len(extra)} to remove",
                    {"add": missing, "remove": extra},
                )
            )
        else:
            acts.append(Action("noop", "security-group", name, f"{len(rules)} rule(s) as specified"))
    # The ingress group of a spec without `ingress:` any more: closed (its rules removed; the
    # group itself goes with destroy-cluster), and taken off the ports below.
    left = obs.security_groups.get(sg_name(spec, "ingress"))
    if spec.ingress is None and left is not None and left.owned and left.detail.get("rules"):
        acts.append(
            Action(
                "update",
                "security-group",
                left.name,
                f"no `ingress` in the spec: remove its {len(left.detail['rules'])} rule(s)",
                {"add": [], "remove": [list(r) for r in left.detail["rules"]]},
            )
        )

    # keypair
    kp = spec.keypair
    if kp.public_key_file is not None:
        if obs.keypair is None:
            acts.append(Action("create", "keypair", kp.name, f"upload {kp.public_key_file}"))
        else:
            acts.append(Action("noop", "keypair", kp.name, "uploaded"))
    else:
        acts.append(Action("noop", "keypair", kp.name, "existing keypair from the spec"))

    # server groups, ports, servers
    for group in spec.node_groups:
        wanted = spec.server_names(group)
        sg_of = server_group_of(spec, group, obs.server_group_limit)
        for sgname in dict.fromkeys(sg_of.values()):
            if not have("server-group", sgname, obs.server_groups.get(sgname)):
                acts.append(Action("create", "server-group", sgname, "missing (soft-anti-affinity)"))
        for sname in wanted:
            pname = names.port(sname)
            observed_port = obs.ports.get(pname)
            on = ours_on_port(spec, observed_port) if observed_port and observed_port.owned else None
            want = sorted(groups_for(spec, group))
            if on is not None and on != want:
                acts.append(
                    Action(
                        "update",
                        "port",
                        pname,
                        f"security groups {', '.join(on) or 'none'} -> {', '.join(want)}",
                        {"security_groups": want, "id": observed_port.id},
                    )
                )
            elif not have("port", pname, observed_port):
                acts.append(
                    Action(
                        "create",
                        "port",
                        pname,
                        "missing",
                        {
                            "server": sname,
                            "security_groups": groups_for(spec, group),
                            "allowed_address_pairs": [spec.kubernetes.pod_cidr, spec.kubernetes.service_cidr],
                        },
                    )
                )
            boot = {
                "group": group.name,
                "flavor": group.flavor,
                "port": pname,
                "server_group": sg_of[sname],
                "boot_volume_gb": group.boot_volume_gb,
            }
            srv = obs.servers.get(sname)
            if srv is None:
                acts.append(Action("create", "server", sname, "missing", boot))
            elif not srv.owned:
                have("server", sname, srv)
            elif srv.status == "ERROR":
                acts.append(
                    Action("delete", "server", sname, "in ERROR: delete and boot again", {"recreate": True})
                )
                acts.append(Action("create", "server", sname, "replaces the server in ERROR", boot))
            else:
                why = f"{srv.status.lower()}" + (
                    f"; flavor {srv.detail.get('flavor')} differs from spec {group.flavor} (not resized)"
                    if srv.detail.get("flavor") not in (None, group.flavor)
                    else ""
                )
                acts.append(Action("noop", "server", sname, why))
        # scale down: servers of this group beyond the count, highest index first
        extra = sorted(
            (
                n
                for n, s in obs.servers.items()
                if s.owned and s.detail.get("group") == group.name and n not in wanted
            ),
            key=_index,
            reverse=True,
        )
        for sname in extra:
            if group.is_control_plane and _index(sname) == 1:
                acts.append(
                    Action("conflict", "server", sname, "the first control-plane node cannot be removed")
                )
                continue
            acts.append(Action("delete", "server", sname, f"beyond {group.name}.count={group.count}"))
            if names.port(sname) in obs.ports:
                acts.append(Action("delete", "port", names.port(sname), "its server is removed"))
        whole = names.server_group(spec.name, group.name)
        if group.count == 0 and whole in obs.server_groups and not extra:
            acts.append(Action("noop", "server-group", whole, "kept (count is 0)"))

    # floating IP on the first control-plane node
    first = spec.server_names(spec.control_plane)[0]
    fip = obs.floating_ip
    if fip is None:
        if spec.floating_ip:
            acts.append(
                Action(
                    "create",
                    "floating-ip",
                    spec.floating_ip,
                    "adopt the address from the spec",
                    {"adopt": spec.floating_ip, "server": first},
                )
            )
        else:
            acts.append(
                Action("create", "floating-ip", names.floating_ip(spec.name), "allocate", {"server": first})
            )
    else:
        port = obs.ports.get(names.port(first))
        if port is not None and fip.detail.get("port_id") == port.id:
            acts.append(Action("noop", "floating-ip", fip.detail.get("address", fip.name), f"on {first}"))
        else:
            acts.append(
                Action(
                    "update",
                    "floating-ip",
                    fip.detail.get("address", fip.name),
                    f"associate with {first}",
                    {"server": first},
                )
            )

    # the ingress's DNS record, pointing at the floating IP
    ing = spec.ingress
    if ing is not None and ing.dns is not None:
        fqdn = f"{ing.host}."
        rec = obs.dns_record
        address = fip.detail.get("address") if fip is not None else None
        where = {"zone": ing.dns.zone, "name": fqdn}
        if rec is None:
            acts.append(Action("create", "dns-record", fqdn, "missing: point it at the floating IP", where))
        elif not rec.owned:
            have("dns-record", fqdn, rec)
        elif address is None or rec.detail.get("records") != [address]:
            acts.append(
                Action(
                    "update",
                    "dns-record",
                    fqdn,
                    f"points at {', '.join(rec.detail.get('records') or []) or 'nothing'}, "
                    "not the floating IP",
                    {**where, "id": rec.id},
                )
            )
        else:
            acts.append(Action("noop", "dns-record", fqdn, f"points at {address}"))
    for rec in obs.stale_dns:
        acts.append(
            Action(
                "delete",
                "dns-record",
                rec.name,
                "the spec no longer names it",
                {"id": rec.id, "zone_id": rec.detail.get("zone_id")},
            )
        )

    # share
    if spec.share:
        sname = names.share(spec.name)
        if obs.share is None:
            acts.append(
                Action(
                    "create",
                    "share",
                    sname,
                    "missing",
                    {"size_gb": spec.share.size_gb, "share_type": spec.share.share_type},
                )
            )
        elif obs.share.status == "error":
            acts.append(Action("delete", "share", sname, "in error: delete and create again"))
            acts.append(
                Action(
                    "create",
                    "share",
                    sname,
                    "replaces the share in error",
                    {"size_gb": spec.share.size_gb, "share_type": spec.share.share_type},
                )
            )
        else:
            acts.append(Action("noop", "share", sname, obs.share.status))
        if obs.access_rule is None or obs.share is None or obs.share.status == "error":
            acts.append(Action("create", "access-rule", spec.share.access_rule, "missing (cephx, rw)"))
        else:
            acts.append(Action("noop", "access-rule", spec.share.access_rule, obs.access_rule.status))
    return acts


def changes(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.kind != "noop"]


def conflicts(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.kind == "conflict"]


def summary(actions: list[Action]) -> dict[str, int]:
    out = {"create": 0, "update": 0, "delete": 0, "noop": 0, "conflict": 0}
    for a in actions:
        out[a.kind] += 1
    return out


# The order resources go in: each only after everything that uses it.
DESTROY_ORDER = (
    "dns-record",
    "server",
    "floating-ip",
    "port",
    "router-interface",
    "router",
    "subnet",
    "network",
    "security-group",
    "server-group",
    "share",
    "keypair",
    "application-credential",
)


def plan_destroy(cluster: str, owned: dict[str, list[Res]]) -> list[Action]:
    """The actions that remove everything the cluster owns, in dependency order (pure).

    `owned` is what `observe.observe_owned` found, by kind. An adopted floating IP is released
    (kept in the project), never deleted; a router interface is a detach, not a router's delete.
    Nothing found: one explicit no-op."""
    acts: list[Action] = []
    for kind in DESTROY_ORDER:
        for r in sorted(owned.get(kind, []), key=lambda r: r.name):
            detail = {"id": r.id, **r.detail}
            if kind == "floating-ip" and r.detail.get("adopted"):
                acts.append(
                    Action("update", kind, r.name, "adopted: release it (kept in the project)", detail)
                )
            elif kind == "router-interface":
                acts.append(Action("delete", kind, r.name, "detach the cluster's subnet", detail))
            else:
                acts.append(Action("delete", kind, r.name, f"owned by cluster {cluster}", detail))
    if not acts:
        acts.append(Action("noop", "cluster", cluster, "nothing of it is left in the cloud"))
    return acts
