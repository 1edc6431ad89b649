"""The share's cephx access rule (`share.access_rule`, read-write): its access key is what the
nodes and the CephFS CSI driver mount with, kept in the cluster's secrets (0600). Deleted with
the share."""

from __future__ import annotations

from .. import names
from ..cloudops import ensure, read, wait_until
from ..errors import CloudError
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res

KIND = "access-rule"
DEPENDS_ON = ("share",)
SECRET_FILE = "share-access-key"


def needs(spec: ClusterSpec | None) -> set[str]:
    return set()


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    if not spec.share or obs.share is None:
        return
    rules = read(lambda: view.api.list("access_rule", parent=obs.share.id), "list access rules")
    rule = next((r for r in rules if r.access_to == spec.share.access_rule), None)
    if rule is not None:
        obs.access_rule = Res(rule.id, rule.access_to, True, rule.state)


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    if not spec.share:
        return []
    if obs.access_rule is None or obs.share is None or obs.share.status == "error":
        return [Action("create", KIND, spec.share.access_rule, "missing (cephx, rw)")]
    return [Action("noop", KIND, spec.share.access_rule, obs.access_rule.status)]


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    if not any(a.kind == "create" for a in actions):
        return
    api, access_to = ctx.api, ctx.spec.share.access_rule
    share_id = ctx.ids["share"]

    def find_rule():
        return next((r for r in api.list("access_rule", parent=share_id) if r.access_to == access_to), None)

    rule, _ = ensure(
        find_rule,
        lambda: api.create(
            "access_rule", parent=share_id, access_to=access_to, access_type="cephx", access_level="rw"
        ),
        f"access rule {access_to}",
    )

    def active():
        r = read(lambda: api.get("access_rule", rule.id), "read access rule")
        if r.state == "error":
            raise CloudError(f"access rule {access_to} went to error")
        return r if r.state == "active" and r.access_key else None

    rule = wait_until(active, f"access rule {access_to} active", timeout=300)
    ctx.cdir.write_secret(SECRET_FILE, rule.access_key)
    ctx.say(
        f"share {names.share(ctx.spec.name)} ready; access key stored in {ctx.cdir.secrets / SECRET_FILE}"
    )


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return []  # the rules go with their share


def delete(api, a: Action) -> None:
    return None
