"""Cinder volumes Kubernetes made for the cluster: Cinder CSI's dynamically provisioned volumes
(one per PersistentVolumeClaim on the `cinder-csi` class — a JupyterHub makes one per user).

stackspray never creates them; destroy-cluster finds them by the mark Cinder CSI gives them —
metadata `cinder.csi.openstack.org/cluster` = the cluster's Kubespray `cluster_name`
(names.kube_cluster_name) — lists them in its plan, and deletes them only when asked
(`--delete-volumes`): they hold the users' data. A kept volume is named with its size and its
claim, and is left detached (deleting a server detaches its volumes). A cluster Kubespray built
with its default `cluster_name` (`cluster.local`, before stackspray set it) shares that mark with
every other such cluster: its volumes are listed as not provably its own and never deleted.
Boot volumes (the spec's `boot_volume_gb`) are not these: they carry no CSI mark and go with
their server (`delete_on_termination`)."""

from __future__ import annotations

from ..cloudops import act, wait_gone
from ..names import (
    CSI_CLUSTER_META,
    CSI_PVC_NAME_META,
    CSI_PVC_NAMESPACE_META,
    KUBESPRAY_DEFAULT_CLUSTER_NAME,
    made_by_kubernetes,
)
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res

KIND = "volume"
DEPENDS_ON: tuple[str, ...] = ("server",)  # attached to servers; deleting a server detaches them


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"volumes"} if spec is None else set()


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    """Nothing to make: create-cluster leaves Kubernetes' volumes to Kubernetes."""


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    return []


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    return None


def describe(v) -> dict:
    """What a plan and status say of one volume: size, status, the claim it was made for, the
    servers it is attached to."""
    meta = getattr(v, "metadata", None) or {}
    ns, claim = meta.get(CSI_PVC_NAMESPACE_META), meta.get(CSI_PVC_NAME_META)
    return {
        "size_gb": int(getattr(v, "size", 0) or 0),
        "status": getattr(v, "status", "") or "",
        "claim": f"{ns}/{claim}" if ns and claim else None,
        "attached_to": sorted(a.get("server_id", "") for a in getattr(v, "attachments", None) or []),
        "mark": meta.get(CSI_CLUSTER_META),
    }


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    """The volumes Cinder CSI marked with the cluster's Kubespray cluster_name (`known`'s
    `kube_cluster_name`, else the cluster's own name). Marked with Kubespray's shared default,
    they carry `ambiguous` and are never deleted."""
    mark = known.get("kube_cluster_name") or cluster
    out = []
    for v in view.get("volumes"):
        if not made_by_kubernetes(v, mark):
            continue
        detail = describe(v)
        if mark == KUBESPRAY_DEFAULT_CLUSTER_NAME:
            detail["ambiguous"] = True
        out.append(Res(v.id, v.name or v.id, True, detail["status"], detail))
    return out


def plan_delete(cluster: str, r: Res, delete_volumes: bool) -> Action:
    """destroy-cluster's action for one of Kubernetes' volumes: kept (a no-op that says why and
    how much) unless `delete_volumes`; never deleted when its mark is Kubespray's shared one."""
    size = r.detail.get("size_gb", 0)
    claim = r.detail.get("claim")
    what = f"{size} GB" + (f", claim {claim}" if claim else "")
    detail = {"id": r.id, **r.detail}
    if r.detail.get("ambiguous"):
        return Action(
            "noop",
            KIND,
            r.name,
            f"kept ({what}): marked {CSI_CLUSTER_META}={KUBESPRAY_DEFAULT_CLUSTER_NAME}, Kubespray's "
            "default that every cluster built with it shares — check it is this cluster's "
            f"(`openstack volume show {r.id}`) and delete it yourself",
            detail,
        )
    if delete_volumes:
        return Action("delete", KIND, r.name, f"made by Kubernetes for cluster {cluster} ({what})", detail)
    return Action(
        "noop",
        KIND,
        r.name,
        f"kept ({what}): made by Kubernetes for a claim and may hold its data; --delete-volumes deletes it",
        detail,
    )


def delete(api, a: Action) -> None:
    vid = a.detail["id"]
    act(lambda: api.delete("volume", vid), f"delete volume {a.name}")
    wait_gone(lambda: _get(api, vid), f"volume {a.name} deleted", timeout=300)


def _get(api, vid: str):
    return next((v for v in api.list("volume") if v.id == vid), None)
