"""Observing the cloud: what exists for a cluster, found by name and by our ownership tags.

Neutron resources carry the tags ``stackspray`` and ``stackspray-cluster=<name>``; servers and
shares carry the metadata ``stackspray-cluster`` (and ``stackspray-group``). A resource with the
right name but without our mark is reported as not owned: the planner refuses to touch it.
List calls are few and wide (one per resource kind) rather than one per resource.
"""

from __future__ import annotations

from .cloudops import read
from .plan import Observed, Res, cluster_tag
from .spec import CloudCatalog, ClusterSpec

META_CLUSTER = "stackspray-cluster"
META_GROUP = "stackspray-group"


def _tags(r) -> list[str]:
    return list(getattr(r, "tags", None) or [])


def is_owned(r, tag: str) -> bool:
    """Ours: tagged, or carrying the description set atomically at creation (tags come after)."""
    return tag in _tags(r) or (getattr(r, "description", "") or "") == tag


def _pick(items, name: str, tag: str, **detail) -> Res | None:
    matches = [i for i in items if i.name == name]
    if not matches:
        return None
    owned = [i for i in matches if is_owned(i, tag)]
    chosen = owned[0] if owned else matches[0]
    return Res(chosen.id, name, bool(owned), getattr(chosen, "status", "") or "", detail)


def rule_tuple(r: dict, sg_id: str) -> tuple:
    """One security group rule in the planner's tuple form; "self" for the group itself."""
    return (
        r["direction"],
        r["ethertype"],
        r.get("protocol"),
        r.get("port_range_min"),
        r.get("port_range_max"),
        r.get("remote_ip_prefix"),
        "self" if r.get("remote_group_id") == sg_id else r.get("remote_group_id"),
    )


def sg_rules(sg) -> list[tuple]:
    """A security group's ingress rules in the planner's tuple form (egress is left alone)."""
    return [rule_tuple(r, sg.id) for r in sg.security_group_rules or [] if r["direction"] == "ingress"]


def flavor_name(server) -> str | None:
    flavor = server.flavor or {}
    if isinstance(flavor, dict):
        return flavor.get("original_name") or flavor.get("name")
    return getattr(flavor, "original_name", None) or getattr(flavor, "name", None)


def observe(conn, spec: ClusterSpec) -> Observed:
    """Everything of this cluster that exists in the cloud."""
    c = spec.name
    tag = cluster_tag(c)
    net = conn.network
    obs = Observed()

    if not spec.network.existing:
        obs.network = _pick(
            read(lambda: list(net.networks(name=f"{c}-net")), "list networks"), f"{c}-net", tag
        )
        obs.subnet = _pick(
            read(lambda: list(net.subnets(name=f"{c}-subnet")), "list subnets"), f"{c}-subnet", tag
        )
        routers = read(lambda: list(net.routers(name=f"{c}-router")), "list routers")
        obs.router = _pick(routers, f"{c}-router", tag)
        if obs.router is not None:
            ifaces = read(
                lambda: list(net.ports(device_id=obs.router.id, device_owner="network:router_interface")),
                "list router interfaces",
            )
            subnets = [ip["subnet_id"] for p in ifaces for ip in p.fixed_ips]
            obs.router = Res(obs.router.id, obs.router.name, obs.router.owned, "", {"interfaces": subnets})

    for sg in read(lambda: list(net.security_groups()), "list security groups"):
        if sg.name.startswith(f"{c}-"):
            obs.security_groups[sg.name] = Res(sg.id, sg.name, is_owned(sg, tag), "", {"rules": sg_rules(sg)})

    kp = read(lambda: conn.compute.find_keypair(spec.keypair.name), "find keypair")
    if kp is not None:
        obs.keypair = Res(kp.name, kp.name, True, "", {"fingerprint": kp.fingerprint})

    for sg in read(lambda: list(conn.compute.server_groups()), "list server groups"):
        if sg.name.startswith(f"{c}-"):
            obs.server_groups[sg.name] = Res(sg.id, sg.name, True)
    quotas = read(lambda: conn.compute.get_quota_set(conn.current_project_id), "read compute quota")
    obs.server_group_limit = int(quotas.server_group_members)

    for p in read(lambda: list(net.ports()), "list ports"):
        if not (p.name.startswith(f"{c}-") and is_owned(p, tag)):
            continue
        obs.ports[p.name] = Res(
            p.id, p.name, True, p.status, {"device_id": p.device_id, "fixed_ips": p.fixed_ips}
        )

    servers = read(lambda: list(conn.compute.servers(name=f"^{c}-")), "list servers")
    for s in servers:
        meta = s.metadata or {}
        owned = meta.get(META_CLUSTER) == c
        if not owned and not s.name.startswith(f"{c}-"):
            continue
        obs.servers[s.name] = Res(
            s.id,
            s.name,
            owned,
            s.status,
            {
                "flavor": flavor_name(s),
                "group": meta.get(META_GROUP),
                "addresses": s.addresses,
                "fault": (s.fault or {}).get("message") if s.status == "ERROR" else None,
            },
        )

    fips = [f for f in read(lambda: list(net.ips()), "list floating IPs") if is_owned(f, tag)]
    if fips:
        f = fips[0]
        obs.floating_ip = Res(
            f.id,
            f.floating_ip_address,
            True,
            f.status,
            {
                "address": f.floating_ip_address,
                "port_id": f.port_id,
                "adopted": "stackspray-adopted" in _tags(f),
            },
        )

    if spec.share:
        sfs = conn.shared_file_system
        shares = read(lambda: list(sfs.shares(details=True)), "list shares")
        mine = [s for s in shares if s.name == f"{c}-share"]
        if mine:
            s = next((x for x in mine if (x.metadata or {}).get(META_CLUSTER) == c), mine[0])
            obs.share = Res(s.id, s.name, (s.metadata or {}).get(META_CLUSTER) == c, s.status)
            rules = read(lambda: list(sfs.access_rules(s)), "list access rules")
            rule = next((r for r in rules if r.access_to == spec.share.access_rule), None)
            if rule is not None:
                obs.access_rule = Res(rule.id, rule.access_to, True, rule.state)
    return obs


def catalog(conn, spec: ClusterSpec) -> CloudCatalog:
    """What the cloud offers that the spec may name (for `spec.check_against_cloud`)."""
    flavors = {
        f.name: {"vcpus": f.vcpus, "ram": f.ram}
        for f in read(lambda: list(conn.compute.flavors(is_public=None)), "list flavors")
    }
    images = {i.name for i in read(lambda: list(conn.image.images()), "list images")}
    networks = read(lambda: list(conn.network.networks()), "list networks")
    kps = {k.name for k in read(lambda: list(conn.compute.keypairs()), "list keypairs")}
    fips = {
        f.floating_ip_address: f.port_id for f in read(lambda: list(conn.network.ips()), "list floating IPs")
    }
    share_types = None
    if spec.share and conn.has_service("shared-file-system"):
        resp = read(lambda: conn.shared_file_system.get("/types", microversion="2.46"), "list share types")
        share_types = {t["name"] for t in resp.json().get("share_types", [])}
    return CloudCatalog(
        flavors=flavors,
        images=images,
        networks={n.name for n in networks},
        external_networks={n.name for n in networks if n.is_router_external},
        keypairs=kps,
        floating_ips=fips,
        share_types=share_types,
    )
