"""Each server's port `<server>-port` on the cluster's subnet: made before its server (so the
server's address and the floating IP's target are known while it boots), with the cluster's
security groups for its node group and the pod and service ranges as allowed address pairs
(Calico routes them without encapsulation)."""

from __future__ import annotations

from .. import names
from ..cloudops import act, read
from ..errors import Conflict
from ..names import is_owned
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res, delete_by_id, have
from .security_group import groups_for
from .server import removed_servers

KIND = "port"
DEPENDS_ON = ("subnet", "security-group")


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"ports"}


def ours_on_port(spec: ClusterSpec, port: Res) -> list[str] | None:
    """The cluster's security groups on an observed port (by name), or None when not observed.
    Groups that are not the cluster's (a user's own) are never touched."""
    on = port.detail.get("security_groups")
    if on is None:
        return None
    return sorted(n for n in on if n in names.security_groups(spec.name))


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    c = spec.name
    sg_names = {r.id: n for n, r in obs.security_groups.items() if r.owned}
    for p in view.get("ports"):
        if not is_owned(p, c):
            continue
        if p.name in obs.ports:
            raise Conflict(f"two ports of cluster {c} are named {p.name}: delete one and re-run")
        obs.ports[p.name] = Res(
            p.id,
            p.name,
            True,
            p.status,
            {
                "device_id": p.device_id,
                "fixed_ips": p.fixed_ips,
                "tags": list(p.tags or []),
                # by name where the group is the cluster's, else its id (a user's own group)
                "security_groups": sorted(sg_names.get(i, i) for i in p.security_group_ids or []),
            },
        )


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    acts: list[Action] = []
    for group in spec.node_groups:
        want = sorted(groups_for(spec, group))
        for sname in spec.server_names(group):
            pname = names.port(sname)
            observed = obs.ports.get(pname)
            on = ours_on_port(spec, observed) if observed and observed.owned else None
            if on is not None and on != want:
                acts.append(
                    Action(
                        "update",
                        KIND,
                        pname,
                        f"security groups {', '.join(on) or 'none'} -> {', '.join(want)}",
                        {"security_groups": want, "id": observed.id},
                    )
                )
            elif not have(acts, spec.name, KIND, pname, observed):
                acts.append(
                    Action(
                        "create",
                        KIND,
                        pname,
                        "missing",
                        {
                            "server": sname,
                            "security_groups": groups_for(spec, group),
                            "allowed_address_pairs": [spec.kubernetes.pod_cidr, spec.kubernetes.service_cidr],
                        },
                    )
                )
        for sname in removed_servers(spec, group, obs):
            port = obs.ports.get(names.port(sname))
            if port is not None:
                acts.append(Action("delete", KIND, port.name, "its server is removed", {"id": port.id}))
    return acts


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    for name, res in ctx.obs.ports.items():
        ctx.remember(f"port:{name}", res.id)
    jobs = [ctx.pool.submit(_create, ctx, a) for a in actions if a.kind == "create"]
    jobs += [ctx.pool.submit(_update, ctx, a) for a in actions if a.kind == "update"]
    for f in jobs:
        f.result()


def _create(ctx: ApplyContext, a: Action) -> None:
    body = dict(
        name=a.name,
        network_id=ctx.ids["network"],
        description=ctx.tag,
        fixed_ips=[{"subnet_id": ctx.ids["subnet"]}],
        security_group_ids=[ctx.ids[f"sg:{n}"] for n in a.detail["security_groups"]],
        allowed_address_pairs=[{"ip_address": c} for c in a.detail["allowed_address_pairs"]],
    )
    port = ctx.neutron_ensure("port", KIND, a.name, lambda: ctx.api.create("port", **body), known_absent=True)
    ctx.remember(f"port:{a.name}", port.id)


def _update(ctx: ApplyContext, a: Action) -> None:
    """Tag the port, and put the cluster's groups the plan wants on it; a group that is not the
    cluster's (one the user added) stays."""
    api = ctx.api
    port = read(lambda: api.get("port", a.detail["id"]), f"read port {a.name}")
    ctx.tag_resource("port", port)
    if "security_groups" not in a.detail:
        return
    ours = {ctx.ids[f"sg:{n}"] for n in names.security_groups(ctx.spec.name) if f"sg:{n}" in ctx.ids}
    keep = [i for i in port.security_group_ids or [] if i not in ours]
    wanted = keep + [ctx.ids[f"sg:{n}"] for n in a.detail["security_groups"]]
    act(lambda: api.update("port", port, security_group_ids=wanted), f"security groups of {a.name}")
    ctx.say(f"port {a.name}: security groups {', '.join(a.detail['security_groups'])}")


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    """The cluster's own ports (a router's interface on our subnet is `router_interface`'s)."""
    return [
        Res(p.id, p.name, True, p.status)
        for p in view.get("ports")
        if is_owned(p, cluster) and not (p.device_owner or "").startswith("network:")
    ]


def delete(api, a: Action) -> None:
    delete_by_id(api, "port", a)
