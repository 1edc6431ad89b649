"""Observing the cloud: what exists for a cluster, found by name and by our ownership marks.

Neutron resources carry the tags ``stackspray`` and ``stackspray-cluster=<name>``; servers and
shares carry the metadata ``stackspray-cluster`` (and ``stackspray-group``). A resource with the
right name but without our mark is reported as not owned: the planner refuses to touch it.
List calls are few and wide (one per resource kind) rather than one per resource.
"""

from __future__ import annotations

import re

from . import dns, names
from .cloudops import concurrently, flavors_by_name, read
from .errors import Conflict, NotFound
from .names import META_CLUSTER, META_GROUP, is_adopted, is_owned, owns_by_metadata
from .plan import DESTROY_ORDER, Observed, Res
from .spec import CloudCatalog, ClusterSpec

__all__ = ["META_CLUSTER", "META_GROUP", "is_owned", "observe", "observe_owned", "owned_servers"]


def _pick(items, kind: str, cluster: str) -> Res | None:
    """The one resource of this name: the owned one if any (more than one owned: Conflict),
    else the first unowned one, which the planner reports as a conflict."""
    if not items:
        return None
    owned = [i for i in items if is_owned(i, cluster)]
    if len(owned) > 1:
        raise Conflict(
            f"{len(owned)} {kind}s named {owned[0].name} carry cluster {cluster}'s mark "
            f"({', '.join(i.id for i in owned)}): delete the extra one and re-run"
        )
    chosen = owned[0] if owned else items[0]
    return Res(chosen.id, chosen.name, bool(owned), getattr(chosen, "status", "") or "")


def _router(net, spec: ClusterSpec) -> tuple[Res | None, str]:
    """The router the cluster's subnet goes on, and whether it is the cluster's own (one listing
    of the project's routers; the detail carries the router's gateway network):

    - `network.create_router`: the cluster's own `<c>-router` (found, or None: to create);
    - `network.router: NAME`: that router of the project (by name or id; exactly one must match);
    - neither: the cluster's own router if an earlier stackspray made one, else the project's
      only router that is not another cluster's (Jetstream2: auto_allocated_router, which holds
      the project's router quota of 1), else None: one of its own is created. Several candidates
      are a Conflict: the spec must name one."""
    c = spec.name
    routers = read(lambda: list(net.routers()), "list routers")

    def res(r, owned: bool) -> Res:
        return Res(r.id, r.name, owned, "", {"gateway": (r.external_gateway_info or {}).get("network_id")})

    own = _pick([r for r in routers if r.name == names.router(c)], "router", c)
    if spec.network.create_router or (own is not None and own.owned):
        return own, "own"
    if spec.network.router:
        found = [r for r in routers if spec.network.router in (r.name, r.id)]
        if not found:
            raise NotFound(
                f"network.router: no router named {spec.network.router!r} in this project "
                "(`openstack router list`)"
            )
        if len(found) > 1:
            raise Conflict(
                f"network.router: {len(found)} routers are named {spec.network.router!r} "
                f"({', '.join(r.id for r in found)}): rename one, or give the router's id instead"
            )
        return res(found[0], False), "existing"
    theirs = [
        r
        for r in routers
        if not any(t.startswith(f"{names.META_CLUSTER}=") for t in (r.tags or []))
        and not (r.description or "").startswith(f"{names.META_CLUSTER}=")
    ]
    if not theirs:
        return own, "own"
    if len(theirs) > 1:
        raise Conflict(
            f"the project has {len(theirs)} routers ({', '.join(sorted(r.name for r in theirs))}): name "
            "the one for this cluster in the spec as network.router, or set network.create_router: true"
        )
    return res(theirs[0], False), "existing"


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


def _router_with_interfaces(net, spec: ClusterSpec) -> tuple[Res | None, str]:
    router, mode = _router(net, spec)
    if router is None:
        return None, mode
    ifaces = read(
        lambda: list(net.ports(device_id=router.id, device_owner="network:router_interface")),
        "list router interfaces",
    )
    subnets = [ip["subnet_id"] for p in ifaces for ip in p.fixed_ips]
    return Res(router.id, router.name, router.owned, "", {**router.detail, "interfaces": subnets}), mode


def _lookups(conn, spec: ClusterSpec, servers: list | None = None) -> dict:
    """The listings `observe` judges, all made at once (they do not depend on each other);
    `servers`: the servers named for the cluster, listed already."""
    c = spec.name
    net = conn.network
    calls = {
        "security_groups": lambda: read(lambda: list(net.security_groups()), "list security groups"),
        "keypair": lambda: read(lambda: conn.compute.find_keypair(spec.keypair.name), "find keypair"),
        "server_groups": lambda: read(lambda: list(conn.compute.server_groups()), "list server groups"),
        "quotas": lambda: read(
            lambda: conn.compute.get_quota_set(conn.current_project_id), "read compute quota"
        ),
        "ports": lambda: read(lambda: list(net.ports()), "list ports"),
        "servers": lambda: (
            servers
            if servers is not None
            else read(lambda: list(conn.compute.servers(name=f"^{re.escape(c)}-")), "list servers")
        ),
        "fips": lambda: read(lambda: list(net.ips()), "list floating IPs"),
        "has_dns": lambda: dns.has_dns(conn),
    }
    if not spec.network.existing:
        calls["networks"] = lambda: read(lambda: list(net.networks(name=names.network(c))), "list networks")
        calls["subnets"] = lambda: read(lambda: list(net.subnets(name=names.subnet(c))), "list subnets")
        calls["router"] = lambda: _router_with_interfaces(net, spec)
    if spec.share:
        sfs = conn.shared_file_system
        calls["shares"] = lambda: read(lambda: list(sfs.shares(details=True)), "list shares")
    return concurrently(calls)


def observe(conn, spec: ClusterSpec, servers: list | None = None) -> Observed:
    """Everything of this cluster that exists in the cloud, looked up by the exact names of
    `names` and judged by the exact marks; more than one owned match is a Conflict. `servers`:
    the listing of the servers named `<cluster>-…`, when the caller has just made it."""
    c = spec.name
    obs = Observed()
    got = _lookups(conn, spec, servers)

    if not spec.network.existing:
        obs.network = _pick(got["networks"], "network", c)
        obs.subnet = _pick(got["subnets"], "subnet", c)
        obs.router, obs.router_mode = got["router"]

    wanted_sgs = set(names.security_groups(c))
    by_name: dict[str, list] = {}
    for sg in got["security_groups"]:
        if sg.name in wanted_sgs:
            by_name.setdefault(sg.name, []).append(sg)
    for sg_name, found in by_name.items():
        res = _pick(found, "security group", c)
        chosen = next(g for g in found if g.id == res.id)
        obs.security_groups[sg_name] = Res(res.id, sg_name, res.owned, "", {"rules": sg_rules(chosen)})

    kp = got["keypair"]
    if kp is not None:
        obs.keypair = Res(kp.name, kp.name, True, "", {"fingerprint": kp.fingerprint})

    # Server groups carry no marks: ours are those with the exact names this spec gives.
    groups: dict[str, list] = {}
    for sg in got["server_groups"]:
        if any(names.is_server_group(c, g.name, sg.name) for g in spec.node_groups):
            groups.setdefault(sg.name, []).append(sg)
    for g_name, found in groups.items():
        if len(found) > 1:
            raise Conflict(
                f"{len(found)} server groups are named {g_name} ({', '.join(g.id for g in found)}): "
                "delete the extra ones (`openstack server group delete ID`) and re-run"
            )
        obs.server_groups[g_name] = Res(found[0].id, g_name, True)
    obs.server_group_limit = int(got["quotas"].server_group_members)

    for p in got["ports"]:
        if not is_owned(p, c):
            continue
        if p.name in obs.ports:
            raise Conflict(f"two ports of cluster {c} are named {p.name}: delete one and re-run")
        sg_names = {r.id: n for n, r in obs.security_groups.items() if r.owned}
        obs.ports[p.name] = Res(
            p.id,
            p.name,
            True,
            p.status,
            {
                "device_id": p.device_id,
                "fixed_ips": p.fixed_ips,
                # by name where the group is the cluster's, else its id (a user's own group)
                "security_groups": sorted(sg_names.get(i, i) for i in p.security_group_ids or []),
            },
        )

    wanted_servers = {n for g in spec.node_groups for n in spec.server_names(g)}
    for s in got["servers"]:
        owned = owns_by_metadata(s, c)
        if not owned and s.name not in wanted_servers:
            continue  # another cluster's (or someone's) server that merely shares the prefix
        if s.name in obs.servers and obs.servers[s.name].owned and owned:
            raise Conflict(
                f"two servers of cluster {c} are named {s.name} ({obs.servers[s.name].id}, {s.id}): "
                "delete the one that should not exist and re-run"
            )
        if s.name in obs.servers and not owned:
            continue  # keep the owned one
        meta = s.metadata or {}
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

    fips = [f for f in got["fips"] if is_owned(f, c)]
    if len(fips) > 1:
        raise Conflict(
            f"cluster {c} owns {len(fips)} floating IPs ({', '.join(f.floating_ip_address for f in fips)}); "
            "it uses one: release the others (`openstack floating ip delete ADDRESS`) and re-run"
        )
    if fips:
        f = fips[0]
        obs.floating_ip = Res(
            f.id,
            f.floating_ip_address,
            True,
            f.status,
            {"address": f.floating_ip_address, "port_id": f.port_id, "adopted": is_adopted(f)},
        )

    if spec.share:
        sfs = conn.shared_file_system
        shares = got["shares"]
        mine = [s for s in shares if s.name == names.share(c)]
        owned = [s for s in mine if owns_by_metadata(s, c)]
        if len(owned) > 1:
            raise Conflict(
                f"{len(owned)} shares of cluster {c} are named {names.share(c)}: delete the extra one "
                "(`openstack share delete ID`) and re-run"
            )
        if mine:
            s = owned[0] if owned else mine[0]
            obs.share = Res(s.id, s.name, bool(owned), s.status)
            rules = read(lambda: list(sfs.access_rules(s)), "list access rules")
            rule = next((r for r in rules if r.access_to == spec.share.access_rule), None)
            if rule is not None:
                obs.access_rule = Res(rule.id, rule.access_to, True, rule.state)
    if got["has_dns"]:
        want = spec.ingress.dns if spec.ingress else None
        fqdn = f"{spec.ingress.host}." if want else None
        if want is not None:
            obs.dns_record = dns.observe_record(conn, c, want.zone, fqdn)
        # The cluster's records under another name (the spec's name changed, or `dns` went).
        obs.stale_dns = [r for r in dns.owned_records(conn, c) if r.name != fqdn]
    return obs


def owned_servers(conn, name: str) -> list:
    """The cluster's servers: named for it and carrying its metadata mark."""
    return [
        s
        for s in read(lambda: list(conn.compute.servers(name=f"^{re.escape(name)}-")), "list servers")
        if owns_by_metadata(s, name)
    ]


def catalog(conn, spec: ClusterSpec) -> CloudCatalog:
    """What the cloud offers that the spec may name (for `spec.check_against_cloud`)."""

    def share_types():
        if not (spec.share and conn.has_service("shared-file-system")):
            return None
        resp = read(lambda: conn.shared_file_system.get("/types", microversion="2.46"), "list share types")
        return {t["name"] for t in resp.json().get("share_types", [])}

    got = concurrently(
        {
            "flavors": lambda: flavors_by_name(conn),
            "images": lambda: read(lambda: list(conn.image.images()), "list images"),
            "networks": lambda: read(lambda: list(conn.network.networks()), "list networks"),
            "keypairs": lambda: read(lambda: list(conn.compute.keypairs()), "list keypairs"),
            "fips": lambda: read(lambda: list(conn.network.ips()), "list floating IPs"),
            "dns_zones": lambda: (
                dns.zone_names(conn) if spec.ingress and spec.ingress.dns and dns.has_dns(conn) else None
            ),
            "share_types": share_types,
        }
    )
    flavors = {name: {"vcpus": f.vcpus, "ram": f.ram} for name, f in got["flavors"].items()}
    images = {i.name for i in got["images"]}
    networks = got["networks"]
    kps = {k.name for k in got["keypairs"]}
    fips = {f.floating_ip_address: f.port_id for f in got["fips"]}
    dns_zones, share_types = got["dns_zones"], got["share_types"]
    return CloudCatalog(
        flavors=flavors,
        images=images,
        networks={n.name for n in networks},
        external_networks={n.name for n in networks if n.is_router_external},
        keypairs=kps,
        floating_ips=fips,
        share_types=share_types,
        dns_zones=dns_zones,
    )


# Destroy's look-up, beside create's: everything that carries the cluster's exact marks.
DESTROY_KINDS = DESTROY_ORDER


def observe_owned(
    conn, cluster: str, *, server_group_ids: set[str] = frozenset(), keypair: str | None = None
) -> dict[str, list[Res]]:
    """Every resource of the cluster, by kind (`DESTROY_KINDS`), judged by the marks of `names`.

    Server groups carry no marks: ours are the ones the state recorded (`server_group_ids`) or
    whose members are our servers. Keypairs carry none either: only `keypair`, the one the state
    says stackspray uploaded. Router interfaces are listed for every router holding one of our
    subnets — a router we did not create keeps existing, our subnet is only detached from it."""
    net = conn.network
    out: dict[str, list[Res]] = {k: [] for k in DESTROY_KINDS}
    servers = owned_servers(conn, cluster)
    out["server"] = [Res(s.id, s.name, True, s.status) for s in servers]
    for f in read(lambda: list(net.ips()), "list floating IPs"):
        if is_owned(f, cluster):
            out["floating-ip"].append(
                Res(
                    f.id,
                    f.floating_ip_address,
                    True,
                    f.status,
                    {"adopted": is_adopted(f), "tags": sorted(f.tags or [])},
                )
            )
    for p in read(lambda: list(net.ports()), "list ports"):
        if is_owned(p, cluster) and not (p.device_owner or "").startswith("network:"):
            out["port"].append(Res(p.id, p.name, True, p.status))
    subnets = [s for s in read(lambda: list(net.subnets()), "list subnets") if is_owned(s, cluster)]
    out["subnet"] = [Res(s.id, s.name, True) for s in subnets]
    our_subnets = {s.id: s.name for s in subnets}
    routers = read(lambda: list(net.routers()), "list routers")
    for r in routers:
        ifaces = read(
            lambda r=r: list(net.ports(device_id=r.id, device_owner="network:router_interface")),
            "list router interfaces",
        )
        attached = sorted({ip["subnet_id"] for p in ifaces for ip in p.fixed_ips} & set(our_subnets))
        for sid in attached:
            out["router-interface"].append(
                Res(r.id, f"{r.name}:{our_subnets[sid]}", True, "", {"router": r.name, "subnet_id": sid})
            )
        if is_owned(r, cluster):
            out["router"].append(Res(r.id, r.name, True))
    out["network"] = [
        Res(n.id, n.name, True)
        for n in read(lambda: list(net.networks()), "list networks")
        if is_owned(n, cluster)
    ]
    if dns.has_dns(conn):
        out["dns-record"] = dns.owned_records(conn, cluster)
    out["security-group"] = [
        Res(g.id, g.name, True)
        for g in read(lambda: list(net.security_groups()), "list security groups")
        if is_owned(g, cluster)
    ]
    our_servers = {s.id for s in servers}
    out["server-group"] = [
        Res(g.id, g.name, True)
        for g in read(lambda: list(conn.compute.server_groups()), "list server groups")
        if g.id in server_group_ids or set(g.member_ids or []) & our_servers
    ]
    if conn.has_service("shared-file-system"):
        out["share"] = [
            Res(s.id, s.name, True, s.status)
            for s in read(lambda: list(conn.shared_file_system.shares(details=True)), "list shares")
            if owns_by_metadata(s, cluster)
        ]
    if keypair:
        kp = read(lambda: conn.compute.find_keypair(keypair), "find keypair")
        if kp is not None:
            out["keypair"] = [Res(kp.name, kp.name, True)]
    # A cluster credential left behind would stay valid for months after the cluster is gone.
    user = conn.current_user_id
    out["application-credential"] = [
        Res(c.id, c.name, True, "", {"user": user})
        for c in read(lambda: list(conn.identity.application_credentials(user=user)), "list credentials")
        if names.is_cluster_credential(c, cluster)
    ]
    return out
