"""The cluster's security groups and their ingress rules: `<c>-cluster` (members reach each
other), `<c>-ssh`, `<c>-api` (6443), `<c>-nodeport` (30000-32767, as Kubespray's OpenStack
Terraform opens them: contrib/terraform/openstack/modules/network) and, with `ingress`,
`<c>-ingress` (80/443). Rules are compared as tuples; egress rules are left alone."""

from __future__ import annotations

from .. import names
from ..cloudops import act, read
from ..errors import Conflict
from ..names import is_owned
from ..spec import ClusterSpec, NodeGroup
from .base import Action, ApplyContext, Lookups, Observed, Res, delete_by_id, have, pick, retag, untagged

KIND = "security-group"
DEPENDS_ON: tuple[str, ...] = ()

NODEPORT_RANGE = (30000, 32767)
API_PORT = 6443
HTTP_PORTS = (80, 443)  # the ingress controller's, on the host network of the ingress nodes


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"security_groups"}


def sg_name(spec: ClusterSpec, role: str) -> str:
    return names.security_group(spec.name, role)


def desired(spec: ClusterSpec) -> dict[str, list[tuple]]:
    """Group name -> rules as (direction, ethertype, protocol, port_min, port_max, remote_cidr, remote_group).

    remote_group "self" means the group itself (every member may reach every other)."""
    groups: dict[str, list[tuple]] = {
        sg_name(spec, "cluster"): [
            ("ingress", "IPv4", None, None, None, None, "self"),
        ],
        sg_name(spec, "ssh"): [("ingress", "IPv4", "tcp", 22, 22, c, None) for c in spec.ssh_cidrs],
        sg_name(spec, "api"): [
            ("ingress", "IPv4", "tcp", API_PORT, API_PORT, c, None) for c in spec.api_cidrs
        ],
        sg_name(spec, "nodeport"): [
            ("ingress", "IPv4", "tcp", *NODEPORT_RANGE, c, None) for c in spec.api_cidrs
        ],
    }
    if spec.ingress is not None:
        groups[sg_name(spec, "ingress")] = [
            ("ingress", "IPv4", "tcp", p, p, c, None) for c in spec.ingress.http_cidrs for p in HTTP_PORTS
        ]
    return groups


def groups_for(spec: ClusterSpec, group: NodeGroup) -> list[str]:
    """Security groups of a node group's ports: the API on the control plane, NodePorts on workers,
    80/443 on the ingress group's."""
    out = [sg_name(spec, "cluster"), sg_name(spec, "ssh")]
    out.append(sg_name(spec, "api") if group.is_control_plane else sg_name(spec, "nodeport"))
    if spec.ingress is not None and spec.ingress.group == group.name:
        out.append(sg_name(spec, "ingress"))
    return out


def rule_tuple(r: dict, sg_id: str) -> tuple:
    """One security group rule in the planner's tuple form; "self" for the group itself."""
    return (
        r["direction"],
        r["ethertype"],
        r.get("protocol"),
        r.get("port_range_min"),
        r.get("port_range_max"),
        r.get("remote_ip_prefix"),
        "self" if r.get("remote_group_id") == sg_id else r.get("remote_group_id"),
    )


def sg_rules(sg) -> list[tuple]:
    """A security group's ingress rules in the planner's tuple form (egress is left alone)."""
    return [rule_tuple(r, sg.id) for r in sg.security_group_rules or [] if r["direction"] == "ingress"]


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    wanted = set(names.security_groups(spec.name))
    by_name: dict[str, list] = {}
    for sg in view.get("security_groups"):
        if sg.name in wanted:
            by_name.setdefault(sg.name, []).append(sg)
    for name, found in by_name.items():
        res = pick(found, "security group", spec.name)
        chosen = next(g for g in found if g.id == res.id)
        obs.security_groups[name] = Res(
            res.id, name, res.owned, "", {"rules": sg_rules(chosen), "tags": list(chosen.tags or [])}
        )


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    acts: list[Action] = []
    for name, rules in desired(spec).items():
        res = obs.security_groups.get(name)
        if res is None:
            acts.append(Action("create", KIND, name, "missing", {"rules": [list(r) for r in rules]}))
            continue
        if not res.owned:
            have(acts, spec.name, KIND, name, res)
            continue
        observed_rules = {tuple(r) for r in res.detail.get("rules", [])}
        missing = [list(r) for r in rules if tuple(r) not in observed_rules]
        extra = [list(r) for r in observed_rules if r not in set(rules)]
        if missing or extra:
            acts.append(
                Action(
                    "update",
                    KIND,
                    name,
                    f"{len(missing)} rule(s) to add, {len(extra)} to remove",
                    {"add": missing, "remove": extra},
                )
            )
        elif untagged(res):
            acts.append(retag(KIND, name, res))
        else:
            acts.append(Action("noop", KIND, name, f"{len(rules)} rule(s) as specified"))
    # The ingress group of a spec without `ingress:` any more: closed (its rules removed; the
    # group itself goes with destroy-cluster), and taken off the ports (`port`).
    left = obs.security_groups.get(sg_name(spec, "ingress"))
    if spec.ingress is None and left is not None and left.owned and left.detail.get("rules"):
        acts.append(
            Action(
                "update",
                KIND,
                left.name,
                f"no `ingress` in the spec: remove its {len(left.detail['rules'])} rule(s)",
                {"add": [], "remove": [list(r) for r in left.detail["rules"]]},
            )
        )
    return acts


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    for name, res in ctx.obs.security_groups.items():
        if res.owned:
            ctx.remember(f"sg:{name}", res.id)
    work = [a for a in actions if a.kind in ("create", "update")]
    for f in [ctx.pool.submit(_one, ctx, a) for a in work]:
        f.result()


def _one(ctx: ApplyContext, a: Action) -> None:
    api = ctx.api
    sg = ctx.neutron_ensure(
        "security_group",
        "security group",
        a.name,
        lambda: api.create("security_group", name=a.name, description=ctx.tag),
    )
    ctx.remember(f"sg:{a.name}", sg.id)
    current = read(lambda: api.get("security_group", sg.id), f"read {a.name}")
    present = {tuple(r) for r in sg_rules(current)}
    add = a.detail.get("rules") or a.detail.get("add") or []
    for rule in add:
        if tuple(rule) in present:
            continue
        direction, ether, proto, pmin, pmax, cidr, group = rule
        body = {"security_group_id": sg.id, "direction": direction, "ethertype": ether}
        if proto:
            body.update(protocol=proto, port_range_min=pmin, port_range_max=pmax)
        if cidr:
            body["remote_ip_prefix"] = cidr
        if group == "self":
            body["remote_group_id"] = sg.id
        try:
            act(lambda b=body: api.create("security_group_rule", **b), f"rule on {a.name}")
        except Conflict:
            pass  # Neutron's SecurityGroupRuleExists: an earlier attempt created it
    for rule in a.detail.get("remove", []):
        for r in current.security_group_rules or []:
            if r["direction"] == "ingress" and rule_tuple(r, sg.id) == tuple(rule):
                act(lambda rid=r["id"]: api.delete("security_group_rule", rid), f"remove rule from {a.name}")
    ctx.say(f"security group {a.name}: {len(add)} rule(s) ensured")


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return [Res(g.id, g.name, True) for g in view.get("security_groups") if is_owned(g, cluster)]


def delete(api, a: Action) -> None:
    delete_by_id(api, "security_group", a)
