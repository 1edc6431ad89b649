"""The cluster's network `<c>-net` (or the spec's `network.existing`, which is never changed)."""

from __future__ import annotations

from .. import names
from ..cloudops import read
from ..errors import CloudError
from ..names import is_owned
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res, delete_by_id, have, pick

KIND = "network"
DEPENDS_ON: tuple[str, ...] = ()


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"networks"} if spec is None or not spec.network.existing else set()


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    if not spec.network.existing:
        name = names.network(spec.name)
        obs.network = pick([n for n in view.get("networks") if n.name == name], "network", spec.name)


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    if spec.network.existing:
        return [Action("noop", KIND, spec.network.existing, "existing network from the spec")]
    acts: list[Action] = []
    name = names.network(spec.name)
    if not have(acts, spec.name, KIND, name, obs.network):
        acts.append(Action("create", KIND, name, "missing"))
    return acts


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    api, spec = ctx.api, ctx.spec
    if spec.network.existing:
        # The user's network: its id and its first IPv4 subnet, looked up, never changed.
        n = read(lambda: api.find("network", spec.network.existing), "find network")
        if n is None:
            raise CloudError(f"network.existing: no network {spec.network.existing!r} in this project")
        ctx.remember("network", n.id)
        subnets = read(lambda: api.list("subnet", network_id=n.id, ip_version=4), "list subnets")
        if not subnets:
            raise CloudError(f"network {spec.network.existing} has no IPv4 subnet")
        ctx.remember("subnet", subnets[0].id)
        return
    name = names.network(spec.name)
    n = ctx.neutron_ensure(
        "network", KIND, name, lambda: api.create("network", name=name, description=ctx.tag)
    )
    ctx.remember("network", n.id)


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return [Res(n.id, n.name, True) for n in view.get("networks") if is_owned(n, cluster)]


def delete(api, a: Action) -> None:
    delete_by_id(api, "network", a)
