"""Octavia load balancers Kubernetes made for the cluster: one per Service of type LoadBalancer,
made by the cloud controller manager (openstack-cloud-controller-manager) with the cluster
credential, with a floating IP on its VIP port unless the Service is internal.

stackspray never creates them; destroy-cluster finds them by the marks the cloud controller
gives them (names.made_for_service: the name `kube_service_<cluster_name>_<ns>_<svc>` and the
description "Kubernetes external service <ns>/<svc> from cluster <cluster_name>", both with the
cluster's Kubespray `cluster_name`) and deletes them before the network: the VIP port holds an
address of the cluster's subnet, so while a load balancer exists the subnet and network cannot
be deleted. Each goes as the cloud controller deletes it when its Service goes
(ensureLoadBalancerDeleted): first the floating IP it made on the VIP port (only one whose
description says the cloud controller made it), then the load balancer with its listeners, pools
and members (cascade), waited gone. A cluster Kubespray built with its default `cluster_name`
(`cluster.local`) shares that mark with every other such cluster: its load balancers count as its
own only when their VIP is on the cluster's own subnet; the others are listed and kept."""

from __future__ import annotations

from ..cloudops import act, read, wait_gone
from ..names import (
    KUBESPRAY_DEFAULT_CLUSTER_NAME,
    is_owned,
    made_for_service,
    made_for_service_fip,
    service_of_load_balancer,
)
from ..spec import ClusterSpec
from .base import Action, ApplyContext, Lookups, Observed, Res

KIND = "load-balancer"
DEPENDS_ON: tuple[str, ...] = ("subnet",)  # its VIP port is on the cluster's subnet


def needs(spec: ClusterSpec | None) -> set[str]:
    return {"load_balancers", "floating_ips", "subnets"} if spec is None else set()


def observe(view: Lookups, spec: ClusterSpec, obs: Observed) -> None:
    """Nothing to make: create-cluster leaves Kubernetes' load balancers to Kubernetes."""


def plan(spec: ClusterSpec, obs: Observed) -> list[Action]:
    return []


def apply(ctx: ApplyContext, actions: list[Action]) -> None:
    return None


def describe(lb, fips: list) -> dict:
    """What a plan and status say of one load balancer: its Service, state, VIP and the floating
    IP on it."""
    on_vip = [f for f in fips if getattr(f, "port_id", None) and f.port_id == lb.vip_port_id]
    return {
        "service": service_of_load_balancer(lb),
        "status": getattr(lb, "provisioning_status", "") or "",
        "vip_address": getattr(lb, "vip_address", None),
        "vip_subnet_id": getattr(lb, "vip_subnet_id", None),
        "vip_port_id": getattr(lb, "vip_port_id", None),
        "floating_ip": on_vip[0].floating_ip_address if on_vip else None,
    }


def find_owned(view: Lookups, cluster: str, known: dict) -> list[Res]:
    """The load balancers the cloud controller made for the cluster's Services (`known`'s
    `kube_cluster_name`). With Kubespray's shared default mark, one whose VIP is not on the
    cluster's own subnet carries `ambiguous` and is never deleted."""
    mark = known.get("kube_cluster_name") or cluster
    fips = view.get("floating_ips")
    out = []
    for lb in view.get("load_balancers"):
        if not made_for_service(lb, mark):
            continue
        detail = describe(lb, fips)
        detail["fip_ids"] = [
            f.id
            for f in fips
            if getattr(f, "port_id", None) == lb.vip_port_id and made_for_service_fip(f, mark)
        ]
        if mark == KUBESPRAY_DEFAULT_CLUSTER_NAME and detail["vip_subnet_id"] not in _own_subnets(
            view, cluster
        ):
            detail["ambiguous"] = True
        out.append(Res(lb.id, lb.name, True, detail["status"], detail))
    return out


def _own_subnets(view: Lookups, cluster: str) -> set[str]:
    return {s.id for s in view.get("subnets") if is_owned(s, cluster)}


def plan_delete(cluster: str, r: Res) -> Action:
    """destroy-cluster's action for one of Kubernetes' load balancers."""
    d = r.detail
    what = f"Service {d.get('service') or '?'}, VIP {d.get('vip_address')}" + (
        f", floating IP {d['floating_ip']}" if d.get("floating_ip") else ""
    )
    detail = {"id": r.id, **d}
    if d.get("ambiguous"):
        return Action(
            "noop",
            KIND,
            r.name,
            f"kept ({what}): named with cluster_name={KUBESPRAY_DEFAULT_CLUSTER_NAME}, Kubespray's default "
            "that every cluster built with it shares, and not on this cluster's subnet — check it "
            f"(`openstack loadbalancer show {r.id}`) and delete it yourself",
            detail,
        )
    return Action("delete", KIND, r.name, f"made by Kubernetes for cluster {cluster} ({what})", detail)


def delete(api, a: Action) -> None:
    """As the cloud controller does when its Service goes: the floating IP it made, then the
    load balancer with everything in it (cascade), waited gone (its VIP port goes with it)."""
    for fid in a.detail.get("fip_ids") or []:
        act(lambda fid=fid: api.delete("floating_ip", fid), f"delete the floating IP of {a.name}")
    lid = a.detail["id"]
    act(lambda: api.delete("load_balancer", lid), f"delete load balancer {a.name}")
    wait_gone(lambda: _get(api, lid), f"load balancer {a.name} deleted", timeout=600)


def _get(api, lid: str):
    return next(
        (lb for lb in read(lambda: api.list("load_balancer"), "list load balancers") if lb.id == lid), None
    )
