"""Every name stackspray gives a cluster's resources, and every mark that makes one ours.

One function per name (as cluster-api-provider-openstack keeps each in one place), and one
rule of ownership: a resource is the cluster's when it carries the cluster's *exact* mark —
a Neutron tag or description `stackspray-cluster=<name>`, the server/share metadata
`stackspray-cluster: <name>`, a credential's exact name pattern *and* description, a schedule's
exact `# stackspray:<cluster>:<job>` line. A name prefix never decides: cluster `lab` must not
see `lab-k8s`'s credential or `lab-2`'s timers.
"""

from __future__ import annotations

import datetime as dt
import re

OWNER_TAG = "stackspray"
ADOPTED_TAG = "stackspray-adopted"
META_CLUSTER = "stackspray-cluster"
META_GROUP = "stackspray-group"
CONTROL_PLANE = "control-plane"
SECURITY_GROUP_ROLES = ("cluster", "ssh", "api", "nodeport", "ingress")


def cluster_tag(cluster: str) -> str:
    """The Neutron tag (and creation-time description) that marks a resource as the cluster's."""
    return f"{META_CLUSTER}={cluster}"


def owner_tags(cluster: str) -> list[str]:
    return [OWNER_TAG, cluster_tag(cluster)]


# -- resource names ------------------------------------------------------------------------------


def network(cluster: str) -> str:
    return f"{cluster}-net"


def subnet(cluster: str) -> str:
    return f"{cluster}-subnet"


def router(cluster: str) -> str:
    return f"{cluster}-router"


def security_group(cluster: str, role: str) -> str:
    return f"{cluster}-{role}"


def security_groups(cluster: str) -> list[str]:
    return [security_group(cluster, r) for r in SECURITY_GROUP_ROLES]


def server(cluster: str, group: str, index: int) -> str:
    return f"{cluster}-{group}-{index}"


def server_index(cluster: str, group: str, name: str) -> int | None:
    """The index of a server name of this cluster and group (None: not such a name)."""
    m = re.fullmatch(rf"{re.escape(cluster)}-{re.escape(group)}-([1-9][0-9]*)", name)
    return int(m[1]) if m else None


def natural_key(name: str) -> list:
    """Sort key for server names by their numbers as numbers: workers-2 before workers-10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def highest_first(name: str) -> list:
    """Sort key putting the highest-numbered server first (shelved first, so the lowest-numbered
    workers stay up)."""
    return [-x if isinstance(x, int) else x for x in natural_key(name)]


def port(server_name: str) -> str:
    return f"{server_name}-port"


def server_group(cluster: str, group: str, part: int | None = None) -> str:
    """A node group's soft-anti-affinity group; `part` when the group is split over several."""
    return f"{cluster}-{group}" if part is None else f"{cluster}-{group}-{part}"


def is_server_group(cluster: str, group: str, name: str) -> bool:
    """A name `server_group` gives this cluster's group (whole, or one of its parts)."""
    return re.fullmatch(rf"{re.escape(cluster)}-{re.escape(group)}(-[1-9][0-9]*)?", name) is not None


def floating_ip(cluster: str) -> str:
    return f"{cluster}-fip"


def keypair(cluster: str) -> str:
    return f"{cluster}-key"


def share(cluster: str) -> str:
    return f"{cluster}-share"


def share_access_rule(cluster: str) -> str:
    return f"{cluster}-share-rw"


def first_control_plane(cluster: str) -> str:
    return server(cluster, CONTROL_PLANE, 1)


def control_plane_prefix(cluster: str) -> str:
    return f"{cluster}-{CONTROL_PLANE}-"


# -- ownership -----------------------------------------------------------------------------------


def _tags(resource) -> list[str]:
    return list(getattr(resource, "tags", None) or [])


def is_owned(resource, cluster: str) -> bool:
    """A Neutron resource of the cluster: its exact tag, or the description set atomically at
    creation (tags are added by a second call, which a kill can separate from the create)."""
    mark = cluster_tag(cluster)
    return mark in _tags(resource) or (getattr(resource, "description", "") or "") == mark


def is_adopted(resource) -> bool:
    """A floating IP the user brought (spec `floating_ip.address`): released, never deleted."""
    return ADOPTED_TAG in _tags(resource)


def owns_by_metadata(resource, cluster: str) -> bool:
    """A server or share of the cluster: metadata `stackspray-cluster` is exactly the name."""
    return (getattr(resource, "metadata", None) or {}).get(META_CLUSTER) == cluster


# -- what Kubernetes makes in the cloud -------------------------------------------------------------

# Kubespray's `cluster_name` is the cluster id Cinder CSI marks its volumes with
# (cloud-provider-openstack pkg/csi/cinder/controllerserver.go: metadata
# `cinder.csi.openstack.org/cluster`; Kubespray's cinder-csi-controllerplugin.yml.j2 passes
# `--cluster={{ cluster_name }}`) and the cloud controller manager names its load balancers with
# (`--cluster-name={{ cluster_name }}`). Kubespray's default is `cluster.local` on every cluster
# (roles/kubespray_defaults/defaults/main/main.yml), so stackspray sets it to the cluster's name.
CSI_CLUSTER_META = "cinder.csi.openstack.org/cluster"
CSI_PVC_NAME_META = "csi.storage.k8s.io/pvc/name"  # the external-provisioner's --extra-create-metadata
CSI_PVC_NAMESPACE_META = "csi.storage.k8s.io/pvc/namespace"
KUBESPRAY_DEFAULT_CLUSTER_NAME = "cluster.local"


def kube_cluster_name(cluster: str, recorded: str | None, built_before: bool) -> str:
    """The `cluster_name` Kubespray builds (and Kubernetes marks cloud resources with): the one
    the state recorded; for a cluster Kubespray built before stackspray set it, Kubespray's
    default (changing it would orphan the load balancers the cloud controller named with it);
    else the cluster's own name, unique in the project."""
    if recorded:
        return recorded
    return KUBESPRAY_DEFAULT_CLUSTER_NAME if built_before else cluster


def made_by_kubernetes(volume, kube_name: str) -> bool:
    """A Cinder volume Cinder CSI made for the cluster whose Kubespray cluster_name is `kube_name`."""
    return (getattr(volume, "metadata", None) or {}).get(CSI_CLUSTER_META) == kube_name


# openstack-cloud-controller-manager's load balancers for LoadBalancer Services
# (cloud-provider-openstack pkg/openstack/loadbalancer.go, v1.35.0: servicePrefix, lbFormat,
# createOctaviaLoadBalancer's description, ensureFloatingIP's floating IP description).
KUBE_LB_PREFIX = "kube_service_"
KUBE_FIP_MARK = "Floating IP for Kubernetes external service"


def made_for_service(lb, kube_name: str) -> bool:
    """An Octavia load balancer the cloud controller made for a Service of the cluster whose
    Kubespray cluster_name is `kube_name`: named `kube_service_<kube_name>_<ns>_<svc>` AND
    described "Kubernetes external service <ns>/<svc> from cluster <kube_name>" (the name alone
    could be anyone's)."""
    name = getattr(lb, "name", "") or ""
    desc = getattr(lb, "description", "") or ""
    return (
        name.startswith(f"{KUBE_LB_PREFIX}{kube_name}_")
        and desc.startswith("Kubernetes external service ")
        and desc.endswith(f" from cluster {kube_name}")
    )


def service_of_load_balancer(lb) -> str | None:
    """`<namespace>/<name>` of the Service a cloud-controller load balancer serves (its description)."""
    desc = getattr(lb, "description", "") or ""
    m = re.fullmatch(r"Kubernetes external service (\S+/\S+) from cluster \S+", desc)
    return m.group(1) if m else None


def made_for_service_fip(fip, kube_name: str) -> bool:
    """A floating IP the cloud controller made for one of the cluster's Services."""
    desc = getattr(fip, "description", "") or ""
    return desc.startswith(KUBE_FIP_MARK + " ") and desc.endswith(f" from cluster {kube_name}")


# -- the cluster credential ----------------------------------------------------------------------

_STAMP = "%Y%m%dT%H%M%SZ"
_STAMP_RE = r"[0-9]{8}T[0-9]{6}Z"
CREDENTIAL_DESCRIPTION = "stackspray: Kubernetes cluster {cluster} (cloud controller manager, Cinder CSI)"
# Descriptions earlier releases gave (rotation wrote a shorter one): still ours.
_LEGACY_DESCRIPTIONS = ("stackspray: Kubernetes cluster {cluster} (cloud controller, Cinder CSI)",)


def credential(cluster: str, now: dt.datetime | None = None) -> str:
    """`<cluster>-k8s-<UTC time>`: a new cluster credential's name."""
    return f"{cluster}-k8s-{(now or dt.datetime.now(dt.UTC)).strftime(_STAMP)}"


def credential_description(cluster: str) -> str:
    return CREDENTIAL_DESCRIPTION.format(cluster=cluster)


def is_cluster_credential(cred, cluster: str) -> bool:
    """Exactly this cluster's credential: the name is `<cluster>-k8s-<stamp>` to the letter and
    the description is the one stackspray gives (cluster `lab` never matches `lab-k8s-k8s-…`)."""
    name = getattr(cred, "name", "") or ""
    if not re.fullmatch(rf"{re.escape(cluster)}-k8s-{_STAMP_RE}", name):
        return False
    desc = getattr(cred, "description", "") or ""
    return desc in {d.format(cluster=cluster) for d in (CREDENTIAL_DESCRIPTION, *_LEGACY_DESCRIPTIONS)}


# -- scheduled jobs ------------------------------------------------------------------------------

GROUP_LABEL = "stackspray.io/group"  # every Kubernetes Node's label: its node group
GPUS_LABEL = "stackspray.io/gpus"  # a GPU group's Nodes: the GPUs its flavor gives each (gpu.py)

SCHEDULE_MARK = "# stackspray:"
AUTOSCALE_JOB = "autoscale"  # the autoscaler's service / crontab entry


def schedule_mark(cluster: str, job: str) -> str:
    """The line that marks a crontab entry or a systemd unit as this cluster's job."""
    return f"{SCHEDULE_MARK}{cluster}:{job}"


def parse_schedule_mark(line: str) -> tuple[str, str] | None:
    """(cluster, job) of a mark line (or a crontab line ending in one); None when it has none."""
    m = re.search(rf"{re.escape(SCHEDULE_MARK)}([a-z][a-z0-9-]*):(\S+)$", line.strip())
    return (m[1], m[2]) if m else None


def schedule_unit(cluster: str, job: str) -> str:
    """The systemd unit name of a job (without .service/.timer). `_` never occurs in a cluster's
    name, so two clusters' units can never have the same name: with `-` between them, cluster
    `lab`'s window `autoscale-x-scale-0945` and cluster `lab-autoscale-x`'s `scale-0945` did."""
    return f"stackspray-{cluster}_{job}"


def legacy_schedule_unit(cluster: str, job: str) -> str:
    """The name earlier releases gave a job's units (found again, by their mark, to replace them)."""
    return f"stackspray-{cluster}-{job}"
