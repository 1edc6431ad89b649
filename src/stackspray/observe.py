"""Observing the cloud: what exists for a cluster, found by name and by our ownership marks.

Neutron resources carry the tags ``stackspray`` and ``stackspray-cluster=<name>``; servers and
shares carry the metadata ``stackspray-cluster`` (and ``stackspray-group``). A resource with the
right name but without our mark is reported as not owned: the planner refuses to touch it.
List calls are few and wide (one per resource kind, all at once) rather than one per resource;
each kind judges its own part (`resources/<kind>.py`: `observe` for create, `find_owned` for
destroy), over the same listings.
"""

from __future__ import annotations

import re

from .cloudapi import CloudAPI
from .cloudops import concurrently, flavors_by_name, read
from .names import META_CLUSTER, META_GROUP, is_owned, owns_by_metadata
from .resources import DESTROY_ORDER, KINDS, dns_record
from .resources.base import Lookups, Observed, Res
from .resources.server import flavor_name
from .spec import CloudCatalog, ClusterSpec

__all__ = [
    "DESTROY_KINDS",
    "META_CLUSTER",
    "META_GROUP",
    "catalog",
    "flavor_name",
    "floating_by_fixed",
    "is_owned",
    "observe",
    "observe_owned",
    "owned_servers",
]

# Destroy's look-up, beside create's: everything that carries the cluster's exact marks.
DESTROY_KINDS = DESTROY_ORDER


def observe(api: CloudAPI, spec: ClusterSpec, servers: list | None = None) -> Observed:
    """Everything of this cluster that exists in the cloud, looked up by the exact names of
    `names` and judged by the exact marks; more than one owned match is a Conflict. `servers`:
    the listing of the servers named `<cluster>-…`, when the caller has just made it."""
    view = Lookups(api, spec.name, spec)
    if servers is not None:
        view.put("servers", servers)
    view.prefetch(set().union(*(k.needs(spec) for k in KINDS)))
    obs = Observed()
    for kind in KINDS:
        kind.observe(view, spec, obs)
    return obs


def observe_owned(
    api: CloudAPI,
    cluster: str,
    *,
    server_group_ids: set[str] = frozenset(),
    keypair: str | None = None,
    kube_cluster_name: str | None = None,
) -> dict[str, list[Res]]:
    """Every resource of the cluster, by kind (`DESTROY_KINDS`), judged by the marks of `names`.

    Server groups carry no marks: ours are the ones the state recorded (`server_group_ids`) or
    whose members are our servers. Keypairs carry none either: only `keypair`, the one the state
    says stackspray uploaded. Router interfaces are listed for every router holding one of our
    subnets — a router we did not create keeps existing, our subnet is only detached from it.
    Volumes Kubernetes made carry `kube_cluster_name` (the cluster's Kubespray cluster_name; its
    own name when not given)."""
    view = Lookups(api, cluster)
    view.prefetch(set().union(*(k.needs(None) for k in KINDS)))
    known = {
        "server_group_ids": set(server_group_ids),
        "keypair": keypair,
        "kube_cluster_name": kube_cluster_name or cluster,
    }
    found = concurrently({k.KIND: (lambda k=k: k.find_owned(view, cluster, known)) for k in KINDS})
    return {kind: found.get(kind, []) for kind in DESTROY_KINDS}


def floating_by_fixed(api: CloudAPI, cluster: str) -> dict[str, str]:
    """Fixed IP -> floating IP of the cluster's addresses, from Neutron (Nova's cache may lag)."""
    return {
        f.fixed_ip_address: f.floating_ip_address
        for f in read(lambda: api.list("floating_ip"), "list floating IPs")
        if is_owned(f, cluster) and f.fixed_ip_address
    }


def owned_servers(api: CloudAPI, name: str) -> list:
    """The cluster's servers: named for it and carrying its metadata mark."""
    return [
        s
        for s in read(lambda: api.list("server", name=f"^{re.escape(name)}-"), "list servers")
        if owns_by_metadata(s, name)
    ]


def catalog(api: CloudAPI, spec: ClusterSpec) -> CloudCatalog:
    """What the cloud offers that the spec may name (for `spec.check_against_cloud`)."""

    def share_types():
        if not (spec.share and api.has_service("shared-file-system")):
            return None
        return read(api.share_types, "list share types")

    got = concurrently(
        {
            "flavors": lambda: flavors_by_name(api),
            "images": lambda: read(lambda: api.list("image"), "list images"),
            "networks": lambda: read(lambda: api.list("network"), "list networks"),
            "keypairs": lambda: read(lambda: api.list("keypair"), "list keypairs"),
            "fips": lambda: read(lambda: api.list("floating_ip"), "list floating IPs"),
            "dns_zones": lambda: (
                dns_record.zone_names(api)
                if spec.ingress and spec.ingress.dns and api.has_service("dns")
                else None
            ),
            "share_types": share_types,
        }
    )
    networks = got["networks"]
    return CloudCatalog(
        flavors={
            name: {"vcpus": f.vcpus, "ram": f.ram, "extra_specs": dict(getattr(f, "extra_specs", None) or {})}
            for name, f in got["flavors"].items()
        },
        images={i.name for i in got["images"]},
        networks={n.name for n in networks},
        external_networks={n.name for n in networks if n.is_router_external},
        keypairs={k.name for k in got["keypairs"]},
        floating_ips={f.floating_ip_address: f.port_id for f in got["fips"]},
        share_types=got["share_types"],
        dns_zones=got["dns_zones"],
    )
