"""What a cluster holds in a cloud, read through stackspray's `CloudAPI` and written without ids or
addresses, so that two clouds — the fake and the sandbox — or two runs can be compared."""

from __future__ import annotations

import re

from stackspray.cloudapi import CloudAPI
from stackspray.names import OWNER_TAG, is_owned, owns_by_metadata
from stackspray.resources.server import flavor_name

INTERFACE = "network:router_interface"


def cluster_shape(api: CloudAPI, cluster: str) -> dict[str, list]:
    """Every resource of `cluster` (by its exact marks), normalized: names, marks, rules, which
    port a server and the floating IP are on, statuses that should have settled."""
    nets = [n for n in api.list("network") if is_owned(n, cluster)]
    subnets = [s for s in api.list("subnet") if is_owned(s, cluster)]
    sub_names = {s.id: s.name for s in subnets}
    ports = api.list("port")
    groups = [g for g in api.list("security_group") if is_owned(g, cluster)]
    group_names = {g.id: g.name for g in groups}
    servers = [s for s in api.list("server", name=f"^{re.escape(cluster)}-") if owns_by_metadata(s, cluster)]
    server_names = {s.id: s.name for s in servers}
    our_ports = [p for p in ports if is_owned(p, cluster) and p.device_owner != INTERFACE]
    port_names = {p.id: p.name for p in our_ports}
    shares = [s for s in api.list("share", details=True) if owns_by_metadata(s, cluster)]

    def marks(r) -> list[str]:
        return sorted(t for t in r.tags or [] if t == OWNER_TAG or t.startswith("stackspray-"))

    def rule(r: dict) -> tuple:
        return (
            r["ethertype"],
            r.get("protocol") or "",
            r.get("port_range_min") or 0,
            r.get("port_range_max") or 0,
            r.get("remote_ip_prefix") or "",
            "self" if r.get("remote_group_id") else "",
        )

    return {
        "networks": sorted((n.name, marks(n)) for n in nets),
        "subnets": sorted((s.name, s.cidr, marks(s)) for s in subnets),
        "routers": sorted((r.name, marks(r)) for r in api.list("router") if is_owned(r, cluster)),
        "router_interfaces": sorted(
            sub_names[ip["subnet_id"]]
            for p in ports
            if p.device_owner == INTERFACE
            for ip in p.fixed_ips or []
            if ip["subnet_id"] in sub_names
        ),
        "security_groups": sorted(
            (
                g.name,
                marks(g),
                sorted(rule(r) for r in g.security_group_rules or [] if r["direction"] == "ingress"),
            )
            for g in groups
        ),
        "ports": sorted(
            (
                p.name,
                marks(p),
                sorted(group_names.get(i, "(not the cluster's)") for i in p.security_group_ids or []),
                server_names.get(p.device_id, ""),
                sorted(pair["ip_address"] for pair in p.allowed_address_pairs or []),
            )
            for p in our_ports
        ),
        "server_groups": sorted(
            (g.name, sorted(server_names[m] for m in g.member_ids or [] if m in server_names))
            for g in api.list("server_group")
            if set(g.member_ids or []) & set(server_names)
        ),
        "servers": sorted(
            (
                s.name,
                s.status,
                (s.metadata or {}).get("stackspray-group"),
                flavor_name(s),
                s.key_name,
            )
            for s in servers
        ),
        "floating_ips": sorted(
            (marks(f), port_names.get(f.port_id, f.port_id and "(another port)"))
            for f in api.list("floating_ip")
            if is_owned(f, cluster)
        ),
        "shares": sorted((s.name, s.status, s.size, s.share_protocol) for s in shares),
        "access_rules": sorted(
            (r.access_to, r.access_type, r.access_level, r.state)
            for s in shares
            for r in api.list("access_rule", parent=s.id)
        ),
    }
