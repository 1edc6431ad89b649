"""The cluster's floating IP, on the first control-plane node's port: allocated and marked, or
the spec's `floating_ip` address adopted (tagged `stackspray-adopted`: released at destroy, never
deleted)."""

from __future__ import annotations

from .. import names
from ..cloudops import act, ensure, read
from ..errors import CloudError, Conflict, NotFound
from ..names import ADOPTED_TAG, OWNER_TAG, is_adopted, is_owned
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res, retag, untagged

KIND = "floating-ip"
# Neutron associates a floating IP only with a port whose subnet is on a router with a gateway.
DEPENDS_ON = ("port", "router-interface")


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"floating_ips"}


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    c = spec.name
    fips = [f for f in view.get("floating_ips") if is_owned(f, c)]
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
            {
                "address": f.floating_ip_address,
                "port_id": f.port_id,
                "adopted": is_adopted(f),
                "tags": list(f.tags or []),
            },
        )


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    first = spec.server_names(spec.control_plane)[0]
    fip = obs.floating_ip
    if fip is None:
        if spec.floating_ip:
            return [
                Action(
                    "create",
                    KIND,
                    spec.floating_ip,
                    "adopt the address from the spec",
                    {"adopt": spec.floating_ip, "server": first},
                )
            ]
        return [Action("create", KIND, names.floating_ip(spec.name), "allocate", {"server": first})]
    port = obs.ports.get(names.port(first))
    address = fip.detail.get("address", fip.name)
    if port is not None and fip.detail.get("port_id") == port.id and not untagged(fip):
        return [Action("noop", KIND, address, f"on {first}")]
    if port is not None and fip.detail.get("port_id") == port.id:
        return [Action("update", KIND, address, retag(KIND, address, fip).reason, {"server": first})]
    return [Action("update", KIND, address, f"associate with {first}", {"server": first})]


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    if ctx.obs.floating_ip is not None:
        ctx.remember("floating_ip_address", ctx.obs.floating_ip.detail["address"])
    for a in actions:
        if a.kind in ("create", "update"):
            _one(ctx, a)


def _one(ctx: ApplyContext, a: Action) -> None:
    api, c = ctx.api, ctx.spec.name
    port_id = ctx.ids[f"port:{names.port(a.detail['server'])}"]
    if a.kind == "update":
        # By the mark, not the tags alone: a run killed between the create and the tagging
        # left a floating IP with only the description mark.
        listed = read(lambda: api.list("floating_ip"), "list floating IPs")
        fip = next((f for f in listed if is_owned(f, c)), None)
        if fip is None:
            raise CloudError(
                f"floating IP {a.name}: gone since the plan was made (released by someone?): re-run"
            )
        ctx.tag_resource("floating_ip", fip)
    elif "adopt" in a.detail:
        fip = read(
            lambda: next(iter(api.list("floating_ip", floating_ip_address=a.detail["adopt"])), None),
            "find FIP",
        )
        if fip is None:
            raise CloudError(f"floating IP {a.detail['adopt']} is not allocated to this project")
        act(
            lambda: api.set_tags("floating_ip", fip, set(fip.tags or []) | set(ctx.tags) | {ADOPTED_TAG}),
            "tag adopted floating IP",
        )
    else:
        ext_name = ctx.spec.network.external_network
        ext = read(lambda: api.find("network", ext_name), "find external network")
        if ext is None:
            raise NotFound(f"network.external_network: no network {ext_name!r}")
        fip, _ = ensure(
            lambda: next((f for f in api.list("floating_ip") if is_owned(f, c)), None),
            lambda: api.create("floating_ip", floating_network_id=ext.id, description=ctx.tag),
            "floating IP",
        )
        ctx.tag_resource("floating_ip", fip)
    act(lambda: api.update("floating_ip", fip, port_id=port_id), "associate floating IP")
    ctx.remember("floating_ip_address", fip.floating_ip_address)
    ctx.say(f"floating IP {fip.floating_ip_address} on {a.detail['server']}")


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return [
        Res(
            f.id,
            f.floating_ip_address,
            True,
            f.status,
            {"adopted": is_adopted(f), "tags": sorted(f.tags or [])},
        )
        for f in view.get("floating_ips")
        if is_owned(f, cluster)
    ]


def delete(api, a: Action) -> None:
    """Delete the cluster's address; an adopted one is released (kept, with the user's own tags)."""
    fid = a.detail["id"]
    if a.kind == "update":
        act(
            lambda: api.update("floating_ip", fid, port_id=None), f"disassociate adopted floating IP {a.name}"
        )
        keep = [t for t in a.detail.get("tags", []) if not t.startswith(OWNER_TAG)]
        act(
            lambda: api.set_tags("floating_ip", api.get("floating_ip", fid), keep),
            f"untag adopted floating IP {a.name}",
        )
    else:
        act(lambda: api.delete("floating_ip", fid), f"delete floating IP {a.name}")
