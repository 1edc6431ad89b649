"""The cluster's Manila share `<c>-share` (CephFS on Jetstream2), marked by the metadata
`stackspray-cluster`; a share in error is deleted and made again. Its cephx access rule is
`access_rule`'s."""

from __future__ import annotations

from .. import names
from ..cloudops import act, ensure, read, wait_gone, wait_until
from ..errors import CloudError, Conflict
from ..names import META_CLUSTER, owns_by_metadata
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res

KIND = "share"
DEPENDS_ON: tuple[str, ...] = ()


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"shares"} if spec is None or spec.share else set()


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    if not spec.share:
        return
    c = spec.name
    mine = [s for s in view.get("shares") if s.name == names.share(c)]
    owned = [s for s in mine if owns_by_metadata(s, c)]
    if len(owned) > 1:
        raise Conflict(
            f"{len(owned)} shares of cluster {c} are named {names.share(c)}: delete the extra one "
            "(`openstack share delete ID`) and re-run"
        )
    if mine:
        s = owned[0] if owned else mine[0]
        obs.share = Res(s.id, s.name, bool(owned), s.status)


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    if not spec.share:
        return []
    name = names.share(spec.name)
    make = {"size_gb": spec.share.size_gb, "share_type": spec.share.share_type}
    if obs.share is None:
        return [Action("create", KIND, name, "missing", make)]
    if obs.share.status == "error":
        return [
            Action("delete", KIND, name, "in error: delete and create again", {"id": obs.share.id}),
            Action("create", KIND, name, "replaces the share in error", make),
        ]
    return [Action("noop", KIND, name, obs.share.status)]


def _find(api, cluster: str):
    name = names.share(cluster)
    for s in api.list("share", details=True):
        if s.name == name and owns_by_metadata(s, cluster):
            return s
    return None


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    """Make the share when planned, and wait until it is available (an earlier run may have
    left it `creating`): its access rule can only be made then."""
    if not ctx.spec.share:
        return
    api, sh, c = ctx.api, ctx.spec.share, ctx.spec.name
    name = names.share(c)
    seen = ctx.obs.share
    if any(a.kind == "create" for a in actions):
        share, created = ensure(
            lambda: _find(api, c),
            lambda: api.create(
                "share",
                name=name,
                size=sh.size_gb,
                share_proto="CEPHFS",
                share_type=sh.share_type,
                metadata={META_CLUSTER: c},
            ),
            f"share {name}",
        )
        if created:
            ctx.say(f"creating share {name} ({sh.size_gb} GiB)")
        share_id, status = share.id, share.status
    elif seen is not None and seen.owned:
        share_id, status = seen.id, seen.status
    else:
        return

    def available():
        s = read(lambda: api.get("share", share_id), f"read share {name}")
        if s.status == "error":
            raise CloudError(f"share {name} went to error; re-run to replace it")
        return s if s.status == "available" else None

    if status != "available":
        wait_until(available, f"share {name} available", timeout=600)
    ctx.remember("share", share_id)


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    return [Res(s.id, s.name, True, s.status) for s in view.get("shares") if owns_by_metadata(s, cluster)]


def delete(api, a: Action) -> None:
    sid = a.detail["id"]
    act(lambda: api.delete("share", sid), f"delete share {a.name}")
    wait_gone(
        lambda: next((x for x in api.list("share") if x.id == sid), None),
        f"share {a.name} deleted",
        timeout=600,
    )
