"""The ingress's DNS record in the cloud's DNS service (Designate): `ingress.dns: {zone, name}`
makes one A record `<name>.<zone>` pointing at the cluster's floating IP, in a zone the project
already has (on Jetstream2: `<project>.projects.jetstream-cloud.org.`).

The record is the cluster's when its description is the cluster's mark (`names.cluster_tag`):
create-cluster finds it by name and mark, destroy-cluster by the mark alone, and a record of that
name without the mark (someone else's) is a conflict, never changed. The cluster's records under
another name (the spec's name changed, or `dns` went) are deleted.
"""

from __future__ import annotations

import time

from .. import names
from ..cloudops import act, read
from ..errors import CloudError, Conflict
from ..names import is_owned
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res, have

KIND = "dns-record"
DEPENDS_ON = ("floating-ip",)
TTL = 300


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"has_dns"}


def zone_names(api) -> set[str]:
    """The zones the project has (names with their final dot)."""
    return {z.name for z in read(lambda: api.list("zone"), "list DNS zones")}


def _zone(api, name: str):
    found = [z for z in read(lambda: api.list("zone", name=name), "find DNS zone") if z.name == name]
    if not found:
        raise CloudError(f"ingress.dns.zone: the project has no DNS zone {name} (`openstack zone list`)")
    return found[0]


def observe_record(api, cluster: str, zone: str, fqdn: str) -> Res | None:
    """The A record `fqdn` in `zone`: owned when it carries the cluster's mark."""
    z = _zone(api, zone)
    found = [
        r
        for r in read(lambda: api.list("recordset", parent=z, name=fqdn, type="A"), "list DNS records")
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


def owned_records(api, cluster: str) -> list[Res]:
    """Every record in the project's zones that carries the cluster's mark (destroy's look-up)."""
    mark = names.cluster_tag(cluster)
    out = []
    for z in read(lambda: api.list("zone"), "list DNS zones"):
        for r in read(lambda z=z: api.list("recordset", parent=z), "list DNS records"):
            if (r.description or "") == mark:
                out.append(Res(r.id, r.name, True, r.status or "", {"zone_id": z.id, "zone": z.name}))
    return out


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    if not view.get("has_dns"):
        return
    want = spec.ingress.dns if spec.ingress else None
    fqdn = f"{spec.ingress.host}." if want else None
    if want is not None:
        obs.dns_record = observe_record(view.api, spec.name, want.zone, fqdn)
    obs.stale_dns = [r for r in owned_records(view.api, spec.name) if r.name != fqdn]


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    acts: list[Action] = []
    ing = spec.ingress
    if ing is not None and ing.dns is not None:
        fqdn = f"{ing.host}."
        rec = obs.dns_record
        fip = obs.floating_ip
        address = fip.detail.get("address") if fip is not None else None
        where = {"zone": ing.dns.zone, "name": fqdn}
        if rec is None:
            acts.append(Action("create", KIND, fqdn, "missing: point it at the floating IP", where))
        elif not rec.owned:
            have(acts, spec.name, KIND, fqdn, rec)
        elif address is None or rec.detail.get("records") != [address]:
            acts.append(
                Action(
                    "update",
                    KIND,
                    fqdn,
                    f"points at {', '.join(rec.detail.get('records') or []) or 'nothing'}, "
                    "not the floating IP",
                    {**where, "id": rec.id},
                )
            )
        else:
            acts.append(Action("noop", KIND, fqdn, f"points at {address}"))
    for rec in obs.stale_dns:
        acts.append(
            Action(
                "delete",
                KIND,
                rec.name,
                "the spec no longer names it",
                {"id": rec.id, "zone_id": rec.detail.get("zone_id")},
            )
        )
    return acts


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    for a in actions:
        if a.kind not in ("create", "update"):
            continue
        address = ctx.ids.get("floating_ip_address")
        if address is None:
            fip = next(
                (
                    f
                    for f in read(lambda: ctx.api.list("floating_ip"), "list floating IPs")
                    if is_owned(f, ctx.spec.name)
                ),
                None,
            )
            if fip is None:
                raise CloudError(f"DNS record {a.name}: the cluster has no floating IP to point it at")
            address = fip.floating_ip_address
        ensure_record(ctx.api, ctx.spec.name, a.detail["zone"], a.name, address, ctx.say)


def ensure_record(api, cluster: str, zone: str, fqdn: str, address: str, say) -> None:
    """Create the record, or point the cluster's own record at `address`; wait until ACTIVE."""
    current = observe_record(api, cluster, zone, fqdn)
    if current is not None and not current.owned:
        raise Conflict(
            f"an A record {fqdn} exists but is not owned by cluster {cluster}: delete it or choose "
            "another ingress.dns.name"
        )
    if current is None:
        z = _zone(api, zone)
        rec = act(
            lambda: api.create(
                "recordset",
                parent=z,
                name=fqdn,
                type="A",
                records=[address],
                ttl=TTL,
                description=names.cluster_tag(cluster),
            ),
            f"create DNS record {fqdn}",
        )
        zone_id = z.id
    elif current.detail["records"] != [address]:
        zone_id = current.detail["zone_id"]
        rec = act(
            lambda: api.update("recordset", current.id, parent=zone_id, records=[address]),
            f"update DNS record {fqdn}",
        )
    else:
        return
    deadline = time.monotonic() + 120
    delay = 0.5
    while True:
        status = read(lambda: api.get("recordset", rec.id, parent=zone_id), f"read DNS record {fqdn}").status
        if status == "ACTIVE":
            break
        if status == "ERROR" or time.monotonic() > deadline:
            raise CloudError(f"DNS record {fqdn} is {status} (the DNS service did not apply it): re-run")
        time.sleep(delay)
        delay = min(delay * 2, 5)
    say(f"DNS: {fqdn} -> {address}")


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return owned_records(view.api, cluster) if view.get("has_dns") else []


def delete(api, a: Action) -> None:
    act(
        lambda: api.delete("recordset", a.detail["id"], parent=a.detail["zone_id"]),
        f"delete DNS record {a.name}",
    )
