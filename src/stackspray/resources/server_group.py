"""Each node group's soft-anti-affinity server group `<c>-<group>` — split into `<c>-<group>-1`,
`-2`, … when the group is larger than Nova's server_group_members quota. Server groups carry no
marks: ours are the ones with the exact names this spec gives (create) and the ones the state
recorded or whose members are our servers (destroy)."""

from __future__ import annotations

from .. import names
from ..cloudops import act, ensure
from ..errors import Conflict
from ..names import owns_by_metadata
from ..spec import ClusterSpec, NodeGroup
from .base import Action, ApplyContext, Lookups, Observed, Res, have

KIND = "server-group"
DEPENDS_ON: tuple[str, ...] = ()


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"server_groups", "servers"} if spec is None else {"server_groups", "server_group_limit"}


def server_group_of(spec: ClusterSpec, group: NodeGroup, limit: int) -> dict[str, str]:
    """Server name -> its server group. A group larger than Nova's server_group_members quota
    is spread over several soft-anti-affinity groups (<c>-<group>-1, -2, ...) of at most `limit`."""
    servers = spec.server_names(group)
    if limit <= 0 or group.count <= limit:
        return dict.fromkeys(servers, names.server_group(spec.name, group.name))
    return {n: names.server_group(spec.name, group.name, i // limit + 1) for i, n in enumerate(servers)}


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    c = spec.name
    groups: dict[str, list] = {}
    for sg in view.get("server_groups"):
        if any(names.is_server_group(c, g.name, sg.name) for g in spec.node_groups):
            groups.setdefault(sg.name, []).append(sg)
    for name, found in groups.items():
        if len(found) > 1:
            raise Conflict(
                f"{len(found)} server groups are named {name} ({', '.join(g.id for g in found)}): "
                "delete the extra ones (`openstack server group delete ID`) and re-run"
            )
        obs.server_groups[name] = Res(found[0].id, name, True)
    obs.server_group_limit = view.get("server_group_limit")


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    acts: list[Action] = []
    for group in spec.node_groups:
        sg_of = server_group_of(spec, group, obs.server_group_limit)
        for name in dict.fromkeys(sg_of.values()):
            if not have(acts, spec.name, KIND, name, obs.server_groups.get(name)):
                acts.append(Action("create", KIND, name, "missing (soft-anti-affinity)"))
        whole = names.server_group(spec.name, group.name)
        beyond = any(
            s.owned and s.detail.get("group") == group.name and n not in sg_of for n, s in obs.servers.items()
        )
        if group.count == 0 and whole in obs.server_groups and not beyond:
            acts.append(Action("noop", KIND, whole, "kept (count is 0)"))
    return acts


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    for name, res in ctx.obs.server_groups.items():
        ctx.remember(f"sgroup:{name}", res.id)
    creates = [a for a in actions if a.kind == "create"]
    for f in [ctx.pool.submit(_one, ctx, a) for a in creates]:
        f.result()


def _one(ctx: ApplyContext, a: Action) -> None:
    api = ctx.api
    group, created = ensure(
        lambda: next((g for g in api.list("server_group") if g.name == a.name), None),
        lambda: api.create("server_group", name=a.name, policy="soft-anti-affinity"),
        f"server group {a.name}",
    )
    ctx.record_in_state("server_groups", a.name, group.id)
    ctx.remember(f"sgroup:{a.name}", group.id)
    if created:
        ctx.say(f"created server group {a.name}")


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    ours = {s.id for s in view.get("servers") if owns_by_metadata(s, cluster)}
    recorded = known.get("server_group_ids", set())
    return [
        Res(g.id, g.name, True)
        for g in view.get("server_groups")
        if g.id in recorded or set(g.member_ids or []) & ours
    ]


def delete(api, a: Action) -> None:
    act(lambda: api.delete("server_group", a.detail["id"]), f"delete {a.name}")
