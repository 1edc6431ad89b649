"""The cluster's Keystone application credential, as destroy finds it: made and rotated by
`credentials`/`rotation` (not by the planner), deleted with the cluster — a credential left
behind would stay valid for months after the cluster is gone."""

from __future__ import annotations

from .. import names
from ..cloudops import act, read
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res

KIND = "application-credential"
DEPENDS_ON: tuple[str, ...] = ()


def needs(spec: ClusterSpec | None) -> set[str]:
    return set()


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    return None


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    return []


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    return None


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    user = view.api.user_id
    return [
        Res(c.id, c.name, True, "", {"user": user})
        for c in read(lambda: view.api.list("application_credential", parent=user), "list credentials")
        if names.is_cluster_credential(c, cluster)
    ]


def delete(api, a: Action) -> None:
    act(
        lambda: api.delete("application_credential", a.detail["id"], parent=a.detail["user"]),
        f"delete application credential {a.name}",
    )
