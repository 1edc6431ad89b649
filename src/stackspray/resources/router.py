"""The router the cluster's subnet goes on: the cluster's own `<c>-router`, or one of the
project's (Jetstream2's auto_allocated_router, which holds the project's router quota of 1),
which is never changed or deleted — only our subnet is attached to it (`router_interface`)."""

from __future__ import annotations

from .. import names
from ..cloudops import read
from ..errors import Conflict, NotFound
from ..names import is_owned
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res, delete_by_id, have, pick

KIND = "router"
DEPENDS_ON: tuple[str, ...] = ()
INTERFACE_OWNER = "network:router_interface"


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"routers", "ports"} if spec is None or not spec.network.existing else set()


def interfaces(view: Lookups, router_id: str) -> list[str]:
    """The subnets attached to a router (its interface ports, from the port listing)."""
    return [
        ip["subnet_id"]
        for p in view.get("ports")
        if p.device_id == router_id and p.device_owner == INTERFACE_OWNER
        for ip in p.fixed_ips or []
    ]


def choose(routers: list, spec: ClusterSpec) -> tuple[Res | None, str]:
    """The router the cluster's subnet goes on, and whether it is the cluster's own (the detail
    carries the router's gateway network):

    - `network.create_router`: the cluster's own `<c>-router` (found, or None: to create);
    - `network.router: NAME`: that router of the project (by name or id; exactly one must match);
    - neither: the cluster's own router if an earlier stackspray made one, else the project's
      only router that is not another cluster's (Jetstream2: auto_allocated_router), else None:
      one of its own is created. Several candidates are a Conflict: the spec must name one."""
    c = spec.name

    def res(r, owned: bool) -> Res:
        return Res(r.id, r.name, owned, "", {"gateway": (r.external_gateway_info or {}).get("network_id")})

    own = pick([r for r in routers if r.name == names.router(c)], "router", c)
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


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    if spec.network.existing:
        return
    router, obs.router_mode = choose(view.get("routers"), spec)
    if router is not None:
        detail = {**router.detail, "interfaces": interfaces(view, router.id)}
        router = Res(router.id, router.name, router.owned, "", detail)
    obs.router = router


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    if spec.network.existing:
        return []
    acts: list[Action] = []
    if obs.router_mode == "existing" and obs.router is not None:
        acts.append(
            Action(
                "noop",
                KIND,
                obs.router.name,
                f"the project's router ({obs.router.id}): the cluster's subnet is attached to it; "
                "it is never changed or deleted",
            )
        )
    elif not have(acts, spec.name, KIND, names.router(spec.name), obs.router):
        acts.append(
            Action(
                "create",
                KIND,
                names.router(spec.name),
                "missing",
                {"external_network": spec.network.external_network},
            )
        )
    return acts


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    if ctx.spec.network.existing:
        return
    if not any(a.kind == "create" for a in actions):
        # The project's router, or ours from an earlier run: attached to, never changed (ours
        # gets its tags when a cut-short run left it with only its description mark).
        ctx.remember("router", ctx.obs.router.id)
        ctx.remember("router_name", ctx.obs.router.name)
        if any(a.detail.get("retag") for a in actions):
            ctx.tag_resource("router", read(lambda: ctx.api.get("router", ctx.obs.router.id), "read router"))
        return
    api, name = ctx.api, names.router(ctx.spec.name)
    ext_name = ctx.spec.network.external_network
    ext = read(lambda: api.find("network", ext_name), "find external network")
    if ext is None:
        raise NotFound(
            f"network.external_network: no network {ext_name!r} (`openstack network list --external`)"
        )
    r = ctx.neutron_ensure(
        "router",
        KIND,
        name,
        lambda: api.create(
            "router", name=name, description=ctx.tag, external_gateway_info={"network_id": ext.id}
        ),
    )
    ctx.remember("router", r.id)
    ctx.remember("router_name", r.name)


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return [Res(r.id, r.name, True) for r in view.get("routers") if is_owned(r, cluster)]


def delete(api, a: Action) -> None:
    delete_by_id(api, "router", a)
