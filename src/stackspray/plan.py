"""Planning: a pure function from the cluster spec and the observed cloud to a list of actions.

Nothing here talks to the cloud. `observe.py` builds an `Observed` from the cloud, `apply.py`
carries the actions out; what each resource kind plans is in its own module under `resources/`,
and `plan` walks them in the registry's order. Every resource the spec implies gets exactly one
action — `create`, `delete`, `update`, or `noop` with the reason — so the printed plan says what
will change and what will be left alone, and a second run after a complete one plans only no-ops.
"""

from __future__ import annotations

from .names import OWNER_TAG, cluster_tag
from .resources import DESTROY_ORDER, KINDS, load_balancer, volume
from .resources.base import Action, Kind, Observed, Res

__all__ = [
    "DESTROY_ORDER",
    "OWNER_TAG",
    "Action",
    "Kind",
    "Observed",
    "Res",
    "changes",
    "cluster_tag",
    "conflicts",
    "plan",
    "plan_destroy",
    "summary",
]


def plan(spec, obs: Observed) -> list[Action]:
    """The actions that converge the cloud on the spec, in the order they are carried out: the
    removals first (each kind before what it depends on, `DESTROY_ORDER`), then every kind's
    creates, updates, no-ops and conflicts in the registry's order."""
    acts = [a for kind in KINDS for a in kind.plan(spec, obs)]
    removals = sorted((a for a in acts if a.kind == "delete"), key=lambda a: DESTROY_ORDER.index(a.resource))
    return removals + [a for a in acts if a.kind != "delete"]


def changes(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.kind != "noop"]


def conflicts(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.kind == "conflict"]


def summary(actions: list[Action]) -> dict[str, int]:
    out = {"create": 0, "update": 0, "delete": 0, "noop": 0, "conflict": 0}
    for a in actions:
        out[a.kind] += 1
    return out


def plan_destroy(cluster: str, owned: dict[str, list[Res]], *, delete_volumes: bool = False) -> list[Action]:
    """The actions that remove everything the cluster owns, in dependency order (pure).

    `owned` is what `observe.observe_owned` found, by kind. An adopted floating IP is released
    (kept in the project), never deleted; a router interface is a detach, not a router's delete;
    the volumes Kubernetes made are kept (a no-op naming each) unless `delete_volumes`.
    Nothing found: one explicit no-op."""
    acts: list[Action] = []
    for kind in DESTROY_ORDER:
        for r in sorted(owned.get(kind, []), key=lambda r: r.name):
            detail = {"id": r.id, **r.detail}
            if kind == "volume":
                acts.append(volume.plan_delete(cluster, r, delete_volumes))
            elif kind == "load-balancer":
                acts.append(load_balancer.plan_delete(cluster, r))
            elif kind == "floating-ip" and r.detail.get("adopted"):
                acts.append(
                    Action("update", kind, r.name, "adopted: release it (kept in the project)", detail)
                )
            elif kind == "router-interface":
                acts.append(Action("delete", kind, r.name, "detach the cluster's subnet", detail))
            else:
                acts.append(Action("delete", kind, r.name, f"owned by cluster {cluster}", detail))
    if not acts:
        acts.append(Action("noop", "cluster", cluster, "nothing of it is left in the cloud"))
    elif not any(a.kind != "noop" for a in acts):
        acts.append(Action("noop", "cluster", cluster, "nothing left to delete; what is listed is kept"))
    return acts
