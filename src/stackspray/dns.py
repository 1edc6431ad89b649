"""The ingress's DNS record in the cloud's DNS service (Designate), through openstacksdk's dns proxy.

`ingress.dns: {zone, name}` makes one A record `<name>.<zone>` pointing at the cluster's floating
IP, in a zone the project already has (on Jetstream2: `<project>.projects.jetstream-cloud.org.`).
The record is the cluster's when its description is the cluster's mark (`names.cluster_tag`):
create-cluster finds it by name and mark, destroy-cluster by the mark alone, and a record of that
name without the mark (someone else's) is a conflict, never changed.
"""

from __future__ import annotations

import time

from . import names
from .cloudops import act, read
from .errors import CloudError, Conflict
from .plan import Res

TTL = 300


def has_dns(conn) -> bool:
    return conn.has_service("dns")


def zone_names(conn) -> set[str]:
    """The zones the project has (names with their final dot)."""
    return {z.name for z in read(lambda: list(conn.dns.zones()), "list DNS zones")}


def _zone(conn, name: str):
    found = [z for z in read(lambda: list(conn.dns.zones(name=name)), "find DNS zone") if z.name == name]
    if not found:
        raise CloudError(f"ingress.dns.zone: the project has no DNS zone {name} (`openstack zone list`)")
    return found[0]


def observe_record(conn, cluster: str, zone: str, fqdn: str) -> Res | None:
    """The A record `fqdn` in `zone`: owned when it carries the cluster's mark."""
    z = _zone(conn, zone)
    found = [
        r
        for r in read(lambda: list(conn.dns.recordsets(z, name=fqdn, type="A")), "list DNS records")
        if r.name == fqdn and r.type == "A"
    ]
    if not found:
        return None
    if len(found) > 1:
        raise Conflict(f"{len(found)} A records are named {fqdn}: delete the extra ones and re-run")
    r = found[0]
    return Res(
        r.id,
        fqdn,
        (r.description or "") == names.cluster_tag(cluster),
        r.status or "",
        {"zone_id": z.id, "zone": zone, "records": sorted(r.records or [])},
    )


def owned_records(conn, cluster: str) -> list[Res]:
    """Every record in the project's zones that carries the cluster's mark (destroy's look-up)."""
    mark = names.cluster_tag(cluster)
    out = []
    for z in read(lambda: list(conn.dns.zones()), "list DNS zones"):
        for r in read(lambda z=z: list(conn.dns.recordsets(z)), "list DNS records"):
            if (r.description or "") == mark:
                out.append(Res(r.id, r.name, True, r.status or "", {"zone_id": z.id, "zone": z.name}))
    return out


def ensure_record(conn, cluster: str, zone: str, fqdn: str, address: str, say) -> None:
    """Create the record, or point the cluster's own record at `address`; wait until ACTIVE."""
    current = observe_record(conn, cluster, zone, fqdn)
    if current is not None and not current.owned:
        raise Conflict(
            f"an A record {fqdn} exists but is not owned by cluster {cluster}: delete it or choose "
            "another ingress.dns.name"
        )
    dns = conn.dns
    if current is None:
        z = _zone(conn, zone)
        rec = act(
            lambda: dns.create_recordset(
                z, name=fqdn, type="A", records=[address], ttl=TTL, description=names.cluster_tag(cluster)
            ),
            f"create DNS record {fqdn}",
        )
        zone_id = z.id
    elif current.detail["records"] != [address]:
        rec = act(
            lambda: dns.update_recordset(
                dns.get_recordset(current.id, current.detail["zone_id"]), records=[address]
            ),
            f"update DNS record {fqdn}",
        )
        zone_id = current.detail["zone_id"]
    else:
        return
    deadline = time.monotonic() + 120
    delay = 0.5
    while True:
        status = read(lambda: dns.get_recordset(rec.id, zone_id), f"read DNS record {fqdn}").status
        if status == "ACTIVE":
            break
        if status == "ERROR" or time.monotonic() > deadline:
            raise CloudError(f"DNS record {fqdn} is {status} (the DNS service did not apply it): re-run")
        time.sleep(delay)
        delay = min(delay * 2, 5)
    say(f"DNS: {fqdn} -> {address}")


def delete_record(conn, record_id: str, zone_id: str, name: str) -> None:
    act(
        lambda: conn.dns.delete_recordset(record_id, zone_id, ignore_missing=True),
        f"delete DNS record {name}",
    )
