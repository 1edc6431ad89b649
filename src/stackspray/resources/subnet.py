"""The cluster's IPv4 subnet `<c>-subnet` on its network (the spec's CIDR and DNS servers)."""

from __future__ import annotations

from .. import names
from ..names import is_owned
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res, delete_by_id, have, pick

KIND = "subnet"
DEPENDS_ON = ("network",)


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"subnets"} if spec is None or not spec.network.existing else set()


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    if not spec.network.existing:
        name = names.subnet(spec.name)
        obs.subnet = pick([s for s in view.get("subnets") if s.name == name], "subnet", spec.name)


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    if spec.network.existing:
        return []  # the existing network's own subnet (network.apply finds it)
    acts: list[Action] = []
    name = names.subnet(spec.name)
    if not have(acts, spec.name, KIND, name, obs.subnet):
        acts.append(
            Action(
                "create",
                KIND,
                name,
                "missing",
                {"cidr": spec.network.cidr, "dns": list(spec.network.dns_nameservers)},
            )
        )
    return acts


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    spec = ctx.spec
    if spec.network.existing:
        return
    name = names.subnet(spec.name)
    s = ctx.neutron_ensure(
        "subnet",
        KIND,
        name,
        lambda: ctx.api.create(
            "subnet",
            name=name,
            network_id=ctx.ids["network"],
            ip_version=4,
            cidr=spec.network.cidr,
            description=ctx.tag,
            dns_nameservers=list(spec.network.dns_nameservers),
        ),
    )
    ctx.remember("subnet", s.id)


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return [Res(s.id, s.name, True) for s in view.get("subnets") if is_owned(s, cluster)]


def delete(api, a: Action) -> None:
    delete_by_id(api, "subnet", a)
