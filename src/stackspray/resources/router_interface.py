"""The cluster's subnet attached to its router (the cluster's own or the project's). Deleting it
detaches the subnet; the router itself stays unless it is the cluster's (`router`)."""

from __future__ import annotations

from .. import names
from ..cloudops import act, read
from ..errors import CloudError, NotFound
from ..names import is_owned
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res
from .router import INTERFACE_OWNER, interfaces

KIND = "router-interface"
DEPENDS_ON = ("subnet", "router")


def needs(spec: ClusterSpec | None) -> set[str]:
    if spec is None:
        return {"routers", "ports", "subnets"}
    return set()  # `router` observes the chosen router's interfaces


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    return None  # part of the router's observation (obs.router.detail["interfaces"])


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    if spec.network.existing:
        return []
    name = obs.router.name if obs.router_mode == "existing" and obs.router else names.router(spec.name)
    ifaces = obs.router.detail.get("interfaces", []) if obs.router else []
    router_id = {"router_id": obs.router.id} if obs.router else {}
    if obs.subnet and obs.subnet.id in ifaces:
        return [Action("noop", KIND, name, "subnet attached", router_id)]
    return [Action("create", KIND, name, "subnet not attached", router_id)]


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    if not any(a.kind == "create" for a in actions):
        return  # the plan saw the subnet on its router a moment ago
    api = ctx.api
    router_id, subnet_id = ctx.ids["router"], ctx.ids["subnet"]
    sub_name, router_name = names.subnet(ctx.spec.name), ctx.ids.get("router_name", router_id)

    def attached() -> bool:
        ports = read(
            lambda: api.list("port", device_id=router_id, device_owner=INTERFACE_OWNER),
            "list router interfaces",
        )
        return any(ip["subnet_id"] == subnet_id for p in ports for ip in p.fixed_ips or [])

    if attached():
        return
    try:
        act(lambda: api.add_router_interface(router_id, subnet_id), f"attach {sub_name} to {router_name}")
    except CloudError:
        # An earlier attempt whose answer was lost may have attached it: look, don't guess.
        if not attached():
            raise
    ctx.say(f"attached {sub_name} to {router_name}")


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    """Our subnets' interfaces on every router of the project (ours or not)."""
    ours = {s.id: s.name for s in view.get("subnets") if is_owned(s, cluster)}
    out = []
    for r in view.get("routers"):
        for sid in sorted(set(interfaces(view, r.id)) & set(ours)):
            out.append(Res(r.id, f"{r.name}:{ours[sid]}", True, "", {"router": r.name, "subnet_id": sid}))
    return out


def delete(api, a: Action) -> None:
    try:
        act(
            lambda: api.remove_router_interface(a.detail["id"], a.detail["subnet_id"]),
            f"detach subnet from router {a.detail['router']}",
        )
    except NotFound:
        pass  # already detached
