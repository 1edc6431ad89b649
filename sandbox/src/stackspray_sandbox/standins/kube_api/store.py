"""STAND-IN for the Kubernetes API server: its objects (`Store`) and what the controllers and the
scheduler compute from them. The HTTP side is handler.py; what is served, and how, is in server.py's
docstring."""

from __future__ import annotations

import base64
import calendar
import copy
import hashlib
import ipaddress
import json
import math
import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

try:  # modules of the stackspray package (tests, docs) ...
    from . import apimachinery, auth, cinder_csi, cloud_controller, controllers, openapi, persist, scheduler
except ImportError:  # ... or scripts beside their copies on the node
    import apimachinery  # type: ignore[no-redef]
    import auth  # type: ignore[no-redef]
    import cinder_csi  # type: ignore[no-redef]
    import cloud_controller  # type: ignore[no-redef]
    import controllers  # type: ignore[no-redef]
    import openapi  # type: ignore[no-redef]
    import persist  # type: ignore[no-redef]
    import scheduler  # type: ignore[no-redef]

# What Kubespray v2.31.0 installs: kube_version is the newest of kubelet_checksums
# (roles/kubespray_defaults/vars/main/checksums.yml: 1.35.4).
KUBE_VERSION = "v1.35.4"
DAEMONSETS = ("kube-proxy", "calico-node")
# kubeadm's control-plane static pods (Kubespray v2.31.0 runs etcd on the host: etcd_deployment_type
# host, so no etcd pod).
CONTROL_PLANE_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
WORKLOADS = (
    ("daemonsets", "openstack-cloud-controller-manager"),
    ("deployments", "csi-cinder-controllerplugin"),
    ("daemonsets", "csi-cinder-nodeplugin"),
)
FAIL_ROLLOUTS = "stand-in.stackspray.io/fail-next-rollouts"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# Where Kubespray v2.31.0 places the two credential DaemonSets' pods (tolerations, nodeSelector):
# roles/kubernetes-apps/csi_driver/cinder/templates/cinder-csi-nodeplugin.yml.j2 (every taint:
# `operator: Exists`) and roles/kubernetes-apps/external_cloud_controller/openstack/templates/
# external-openstack-cloud-controller-manager-ds.yml.j2 (control-plane nodes only). Neither sets
# a rollingUpdate, so the apps/v1 default applies: maxUnavailable 1.
KUBESPRAY_POD_PLACEMENT = {
    "csi-cinder-nodeplugin": {"tolerations": [{"operator": "Exists"}]},
    "openstack-cloud-controller-manager": {
        "nodeSelector": {CONTROL_PLANE_LABEL: ""},
        "tolerations": [
            {
                "key": "node.cloudprovider.kubernetes.io/uninitialized",
                "value": "true",
                "effect": "NoSchedule",
            },
            {"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"},
        ],
    },
}
# The tolerations the DaemonSet controller adds to every daemon pod
# (pkg/controller/daemon/util/daemonset_util.go, AddOrUpdateDaemonPodTolerations).
DAEMON_POD_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
# The taints the node lifecycle controller puts on a node whose kubelet stopped posting status
# (pkg/controller/nodelifecycle/node_lifecycle_controller.go: UnreachableTaintTemplate and the
# NoSchedule taint of the same key), and on a cordoned node (TaintNodeUnschedulable).
UNREACHABLE_TAINTS = [
    {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
]
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
# NVIDIA's device plugin (NVIDIA/k8s-device-plugin deployments/static/nvidia-device-plugin.yml):
# the image whose pod on a GPU node makes the kubelet advertise nvidia.com/gpu.
DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin"
POD_STARTUP = 1.0  # seconds a new daemon pod takes to become Ready on a Ready node
DAEMONSET_RESYNC = 0.2  # seconds between the DaemonSet controller's passes (run_daemonset_controller)
NODE_MONITOR_GRACE = 40.0  # Kubespray's kube_controller_node_monitor_grace_period (see probe_nodes)
NODE_MONITOR_PERIOD = 5.0  # kube_controller_node_monitor_period
DEFAULT_TOLERATION_SECONDS = 300  # kube-apiserver's --default-*-toleration-seconds (Kubespray: "300")


def requests_from_limits(spec: dict) -> dict:
    """SetDefaults_Pod (pkg/apis/core/v1/defaults.go): a container's limit without a request
    becomes its request too — on Pods only, not on templates. A pod asking `limits:
    {nvidia.com/gpu: 1}` is stored asking `requests: {nvidia.com/gpu: 1}` as well."""
    spec = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            res = c.get("resources") or {}
            limits = res.get("limits") or {}
            if limits:
                requests = res.setdefault("requests", {})
                for name, value in limits.items():
                    requests.setdefault(name, value)
                c["resources"] = res
    return spec


def overwrite_taints(taints: list[dict], wanted: list[str]) -> list[dict]:
    """`kubectl taint node N key=value:Effect … --overwrite` (kubectl's taint.go reorganizeTaints):
    each `key[=value]:Effect` replaces the node's taint of the same key and effect, or is added."""
    out = [dict(t) for t in taints]
    for text in wanted:
        head, _, effect = text.rpartition(":")
        key, _, value = head.partition("=")
        taint = {"key": key, "effect": effect, **({"value": value} if value else {})}
        out = [t for t in out if (t["key"], t["effect"]) != (key, effect)] + [taint]
    return out


def max_unavailable(spec: dict, desired: int) -> int:
    """spec.updateStrategy.rollingUpdate.maxUnavailable (default 1; a percentage rounds up:
    intstr.GetScaledValueFromIntOrPercent with roundUp, as the DaemonSet controller calls it)."""
    value = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * desired / 100)
    return int(value)


# (group, version) -> (plural, kind, namespaced, verbs): what discovery lists.
RW = ["create", "delete", "get", "list", "patch", "update", "watch"]
RESOURCES = {
    ("", "v1"): [
        ("namespaces", "Namespace", False, RW),
        ("nodes", "Node", False, ["get", "list", "patch", "watch"]),
        ("pods", "Pod", True, ["create", "delete", "get", "list", "watch"]),
        ("events", "Event", True, RW),
        ("pods/eviction", "Eviction", True, ["create"]),
        ("secrets", "Secret", True, RW),
        ("configmaps", "ConfigMap", True, RW),
        ("serviceaccounts", "ServiceAccount", True, RW),
        ("persistentvolumes", "PersistentVolume", False, RW),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True, RW),
        ("services", "Service", True, RW),
        ("endpoints", "Endpoints", True, RW),
    ],
    ("apps", "v1"): [
        ("daemonsets", "DaemonSet", True, RW),
        ("deployments", "Deployment", True, RW),
        ("deployments/scale", "Scale", True, ["get", "patch", "update"]),
        ("replicasets", "ReplicaSet", True, RW),
        ("replicasets/scale", "Scale", True, ["get", "patch", "update"]),
        ("statefulsets", "StatefulSet", True, RW),
    ],
    ("batch", "v1"): [("jobs", "Job", True, RW), ("cronjobs", "CronJob", True, RW)],
    ("discovery.k8s.io", "v1"): [("endpointslices", "EndpointSlice", True, RW)],
    ("certificates.k8s.io", "v1"): [("certificatesigningrequests", "CertificateSigningRequest", False, RW)],
    ("policy", "v1"): [("poddisruptionbudgets", "PodDisruptionBudget", True, RW)],
    ("coordination.k8s.io", "v1"): [("leases", "Lease", True, RW)],
    ("authorization.k8s.io", "v1"): [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False, ["create"]),
    ],
    ("rbac.authorization.k8s.io", "v1"): [
        ("clusterroles", "ClusterRole", False, RW),
        ("clusterrolebindings", "ClusterRoleBinding", False, RW),
        ("roles", "Role", True, RW),
        ("rolebindings", "RoleBinding", True, RW),
    ],
    ("storage.k8s.io", "v1"): [
        ("csidrivers", "CSIDriver", False, RW),
        ("storageclasses", "StorageClass", False, RW),
    ],
    ("apiextensions.k8s.io", "v1"): [
        ("customresourcedefinitions", "CustomResourceDefinition", False, RW),
    ],
}
BUILTIN_RESOURCES = {gv: list(rs) for gv, rs in RESOURCES.items()}
CRD_GV = "apiextensions.k8s.io/v1"
# cert-manager's resources, as the CRDs Kubespray v2.31.0 applies with cert_manager_enabled
# (roles/kubernetes-apps/ingress_controller/cert_manager/templates/cert-manager.crds.yml.j2):
# (plural, kind, group, scope). The stand-in runs no cert-manager controller: a ClusterIssuer is
# stored, never made Ready, and no certificate is issued.
CERT_MANAGER_CRDS = [
    ("certificaterequests", "CertificateRequest", "cert-manager.io", "Namespaced"),
    ("certificates", "Certificate", "cert-manager.io", "Namespaced"),
    ("challenges", "Challenge", "acme.cert-manager.io", "Namespaced"),
    ("clusterissuers", "ClusterIssuer", "cert-manager.io", "Cluster"),
    ("issuers", "Issuer", "cert-manager.io", "Namespaced"),
    ("orders", "Order", "acme.cert-manager.io", "Namespaced"),
]


def serve_custom_resources(crds: list[dict]) -> None:
    """Discovery and REST paths for the served versions of each CustomResourceDefinition, as the
    apiextensions-apiserver adds them (staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/
    customresource_discovery_controller.go); a deleted CRD's paths go (404 again)."""
    RESOURCES.clear()
    RESOURCES.update({gv: list(rs) for gv, rs in BUILTIN_RESOURCES.items()})
    for crd in crds:
        spec = crd.get("spec") or {}
        names_ = spec.get("names") or {}
        for v in spec.get("versions") or []:
            if v.get("served"):
                RESOURCES.setdefault((spec["group"], v["name"]), []).append(
                    (names_["plural"], names_["kind"], spec.get("scope") == "Namespaced", RW)
                )


def check_crd(body: dict) -> None:
    """What the API server refuses in a CRD (apiextensions/validation/validation.go
    ValidateCustomResourceDefinition): its name must be <plural>.<group>, one version stored."""
    spec = body.get("spec") or {}
    names_ = spec.get("names") or {}
    name = (body.get("metadata") or {}).get("name", "")
    group, plural = spec.get("group", ""), names_.get("plural", "")
    if not group or not plural or not names_.get("kind"):
        raise ApiError(
            422,
            "Invalid",
            f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: '
            "spec.group, spec.names.plural and spec.names.kind: Required value",
        )
    if name != f"{plural}.{group}":
        raise ApiError(
            422,
            "Invalid",
            f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: metadata.name: '
            f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
        )
    for i, v in enumerate(spec.get("versions") or []):
        if not ((v.get("schema") or {}).get("openAPIV3Schema")):
            raise ApiError(
                422,
                "Invalid",
                f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: '
                f"spec.versions[{i}].schema.openAPIV3Schema: Required value: schemas are required",
            )
    stored = [v for v in spec.get("versions") or [] if v.get("storage")]
    if len(stored) != 1:
        raise ApiError(
            422,
            "Invalid",
            f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: spec.versions: '
            "Invalid value: must have exactly one version marked as storage version",
        )


SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SERVICE_CIDR = "10.233.0.0/18"  # Kubespray's kube_service_addresses (kubespray_defaults main.yml:243)
EVENT_TTL = 3600.0  # kube-apiserver --event-ttl (1h)
POD_CIDR = "10.233.64.0/18"  # Kubespray's kube_pods_subnet (kubespray_defaults main.yml:248)
# Discovery's shortNames and categories, as the real API server lists them (each resource's
# registry: pkg/registry/*/storage/storage.go ShortNames() and Categories()).
SHORT_NAMES = {
    "namespaces": ["ns"],
    "nodes": ["no"],
    "pods": ["po"],
    "events": ["ev"],
    "configmaps": ["cm"],
    "serviceaccounts": ["sa"],
    "persistentvolumes": ["pv"],
    "persistentvolumeclaims": ["pvc"],
    "daemonsets": ["ds"],
    "deployments": ["deploy"],
    "replicasets": ["rs"],
    "poddisruptionbudgets": ["pdb"],
    "storageclasses": ["sc"],
    "services": ["svc"],
    "endpoints": ["ep"],
    "statefulsets": ["sts"],
    "cronjobs": ["cj"],
    "certificatesigningrequests": ["csr"],
    # apiextensions-apiserver pkg/registry/customresourcedefinition/etcd.go ShortNames()
    "customresourcedefinitions": ["crd", "crds"],
}
CATEGORIES = {
    "pods": ["all"],
    "daemonsets": ["all"],
    "deployments": ["all"],
    "replicasets": ["all"],
    "services": ["all"],
    "statefulsets": ["all"],
    "jobs": ["all"],
    "cronjobs": ["all"],
    "customresourcedefinitions": ["api-extensions"],
}


def resource_info(group: str, version: str, plural: str) -> tuple[str, bool] | None:
    for p, kind, namespaced, _verbs in RESOURCES.get((group, version), []):
        if p == plural:
            return kind, namespaced
    return None


def _seconds(value) -> float:
    """A Go duration as Kubespray's variables write them (`40s`, `1m`, `1m30s`) or a number."""
    if isinstance(value, int | float):
        return float(value)
    total, num = 0.0, ""
    for ch in str(value).strip():
        if ch.isdigit() or ch == ".":
            num += ch
        else:
            total += float(num) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
    return total + (float(num) if num else 0.0)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _epoch(stamp: str | None) -> float:
    try:
        return float(calendar.timegm(time.strptime(stamp or "", "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return 0.0


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (what `application/merge-patch+json` means; for the plain maps
    stackspray sends, a strategic merge patch has the same effect)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def keep_server_fields(old: dict, new: dict) -> dict:
    """A patched object's metadata: what the client may change, with the fields the API server
    owns (name, namespace, uid, creationTimestamp, generation, resourceVersion) kept as they were."""
    out = dict(new)
    for k in ("name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"):
        if k in old:
            out[k] = old[k]
    return out


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        # meta/v1 Status, the body of every API error.
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


# coredns_affinity (roles/kubernetes-apps/ansible/defaults/main.yml): CoreDNS's replicas prefer
# nodes without another one.
COREDNS_AFFINITY = {
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {
                        "matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]
                    },
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }
}
# The built-in PriorityClasses (pkg/apis/scheduling/types.go: SystemCriticalPriority; the node's
# one 1000 above) that the Priority admission plugin resolves (plugin/pkg/admission/priority/
# admission.go): a pod naming one gets its value as spec.priority.
SYSTEM_PRIORITY = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}


def with_priority(spec: dict) -> dict:
    """The pod spec as the Priority admission plugin leaves it (built-in classes only)."""
    value = SYSTEM_PRIORITY.get(spec.get("priorityClassName") or "")
    if value is None or spec.get("priority") is not None:
        return spec
    return {**spec, "priority": value}


class Store:
    """The objects, a lock, and the JSON file they are kept in."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.csi_attached: set[str] = set()  # volumes Cinder CSI attached, as it last saw them
        self.csi_warned: dict[tuple, float] = {}
        # Service -> (when to try its load balancer again, the last delay) after a failure.
        self.lb_retry: dict[tuple[str, str], tuple[float, float]] = {}
        self.ready: dict[str, bool] = {}
        # When each Node's Ready condition last changed (its lastTransitionTime, which the node
        # lifecycle controller and the kubelet set only on a change of status).
        self.ready_since: dict[str, str] = {}
        self.rv = 1
        self.nodes: dict[str, dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.pdbs: dict[tuple[str, str], dict] = {}
        self.secrets: dict[tuple[str, str], dict] = {}
        self.workloads: dict[tuple[str, str], dict] = {}  # (kind plural, name) in kube-system
        # Every other object: (group/version, plural, namespace or "", name) -> object.
        self.objects: dict[tuple[str, str, str, str], dict] = {}
        self.applied_cloud_conf: str | None = None
        self.ca_pem: str | None = None
        # The official Kubernetes 1.35 definitions (openapi.py), when the Kubespray stand-in copied
        # them: OpenAPI answers and validation of every write.
        self.schemas = openapi.Schemas.load(config["schemas"]) if config.get("schemas") else None
        self.openapi_v2: bytes | None = None
        self.storage = persist.backend(config)
        saved = self.storage.load()
        if saved is not None:
            self.rv = saved["rv"]
            self.nodes = {n["metadata"]["name"]: n for n in saved["nodes"]}
            self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in saved["pods"]}
            self.pdbs = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in saved["pdbs"]}
            self.secrets = {(x["metadata"]["namespace"], x["metadata"]["name"]): x for x in saved["secrets"]}
            self.workloads = {(w["plural"], w["metadata"]["name"]): w for w in saved["workloads"]}
            self.applied_cloud_conf = saved.get("applied_cloud_conf")
            self.objects = {tuple(k): v for k, v in saved.get("objects", [])}
        for ns in SYSTEM_NAMESPACES:
            key = ("v1", "namespaces", "", ns)
            if key not in self.objects:
                self.objects[key] = {"kind": "Namespace", "apiVersion": "v1", "metadata": self.meta(ns)}
        for ds in DAEMONSETS:
            # The DaemonSets that own every node's kube-proxy and calico-node pods (kubeadm's and
            # Kubespray's manifests: both tolerate every taint), so `kubectl drain
            # --ignore-daemonsets` finds the owners it looks up.
            key = ("apps/v1", "daemonsets", "kube-system", ds)
            if key not in self.objects:
                self.objects[key] = {
                    "kind": "DaemonSet",
                    "apiVersion": "apps/v1",
                    "metadata": dict(self.meta(ds, "kube-system", labels={"k8s-app": ds}), generation=1),
                    "spec": {
                        "selector": {"matchLabels": {"k8s-app": ds}},
                        "template": {
                            "metadata": {"labels": {"k8s-app": ds}},
                            "spec": {
                                "containers": [{"name": ds, "image": "stand-in"}],
                                "tolerations": [{"operator": "Exists"}],
                            },
                        },
                    },
                }
        if config.get("cert_manager"):
            key = ("v1", "namespaces", "", "cert-manager")  # cert_manager_namespace
            self.objects.setdefault(
                key, {"kind": "Namespace", "apiVersion": "v1", "metadata": self.meta(key[3])}
            )
            for plural, kind, group, scope in CERT_MANAGER_CRDS:
                key = (CRD_GV, "customresourcedefinitions", "", f"{plural}.{group}")
                if key not in self.objects:
                    self.objects[key] = {
                        "kind": "CustomResourceDefinition",
                        "apiVersion": CRD_GV,
                        "metadata": dict(self.meta(key[3]), generation=1),
                        "spec": {
                            "group": group,
                            "names": {"plural": plural, "kind": kind, "singular": kind.lower()},
                            "scope": scope,
                            "versions": [{"name": "v1", "served": True, "storage": True}],
                        },
                    }
        self.serve_crds()
        self.reconcile_nodes()
        self.ensure_kubernetes_service()
        self.apply_cloud_config()
        self.apply_kubespray_apps()

    def custom_openapi(self) -> dict[tuple[str, str], dict]:
        """(group, version) -> the OpenAPI v3 document of each served CRD version."""
        kinds: dict[tuple[str, str], list] = {}
        for k, crd in self.objects.items():
            if k[:2] != (CRD_GV, "customresourcedefinitions"):
                continue
            spec = crd.get("spec") or {}
            names_ = spec.get("names") or {}
            for v in spec.get("versions") or []:
                if v.get("served"):
                    schema = (v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
                    kinds.setdefault((spec["group"], v["name"]), []).append(
                        (names_["plural"], names_["kind"], spec.get("scope") == "Namespaced", schema)
                    )
        return {gv: openapi.custom_v3(gv[0], gv[1], ks) for gv, ks in kinds.items()}

    def write(self, key: tuple[str, str, str, str], body: dict, old: dict | None) -> dict:
        """put_object for a client's create, patch or replace; a CustomResourceDefinition is
        validated first and its kinds served (or no longer served) at once."""
        crd = key[:2] == (CRD_GV, "customresourcedefinitions")
        if crd:
            check_crd(body)
        if key[:2] == ("v1", "services"):
            body = self.with_node_ports(self.with_cluster_ip(body, old), old)
        stored = self.put_object(key, body, old)
        if crd:
            self.serve_crds()
        return stored

    def with_node_ports(self, body: dict, old: dict | None) -> dict:
        """NodePort and LoadBalancer Services get a nodePort per port from 30000-32767 when they
        ask for none, and keep the ones they had (pkg/registry/core/service/portallocator; the
        stand-in hands them out in order, not at random). A nodePort in use is refused."""
        spec = body.get("spec") or {}
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            return body
        kept = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
            for p in (old or {}).get("spec", {}).get("ports") or []
        }
        name = body.get("metadata", {}).get("name")
        ns = body.get("metadata", {}).get("namespace", "default")
        used = {
            p.get("nodePort")
            for k, o in self.objects.items()
            if k[:2] == ("v1", "services") and (k[2], k[3]) != (ns, name)
            for p in o.get("spec", {}).get("ports") or []
        } - {None}
        for p in spec.get("ports") or []:
            if p.get("nodePort") in used:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Service "{name}" is invalid: spec.ports[0].nodePort: Invalid value: '
                    f"{p['nodePort']}: provided port is already allocated",
                )
            if not p.get("nodePort"):
                p["nodePort"] = kept.get((p.get("port"), p.get("protocol", "TCP"))) or next(
                    n for n in range(30000, 32768) if n not in used
                )
            used.add(p["nodePort"])
        return body

    def with_cluster_ip(self, body: dict, old: dict | None) -> dict:
        """A Service gets a ClusterIP from the service range when it asks for none (pkg/registry/
        core/service/ipallocator; the stand-in hands them out in order, not at random) and
        keeps the one it had; `None` (headless) and ExternalName get none."""
        spec = body.setdefault("spec", {})
        kept = (old or {}).get("spec", {}).get("clusterIP")
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return body
        if kept or spec.get("clusterIP"):
            spec["clusterIP"] = kept or spec["clusterIP"]
        else:
            used = {
                o.get("spec", {}).get("clusterIP")
                for k, o in self.objects.items()
                if k[:2] == ("v1", "services")
            }
            net = ipaddress.ip_network(SERVICE_CIDR)
            spec["clusterIP"] = next(str(a) for a in list(net.hosts())[9:] if str(a) not in used)
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("type", "ClusterIP")
        return body

    def ensure_kubernetes_service(self) -> None:
        """The `default/kubernetes` Service the API server keeps (pkg/controlplane/controller/
        kubernetesservice): the first address of the service range (Kubespray's
        kube_service_addresses 10.233.0.0/18), port 443 to the API servers' 6443, with its
        Endpoints and EndpointSlice naming every control-plane node."""
        cps = sorted(n["ip"] for n in self.config.get("nodes", []) if n.get("control_plane"))
        first = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
        labels = {"component": "apiserver", "provider": "kubernetes"}
        port = {"name": "https", "port": 6443, "protocol": "TCP"}
        wanted = {
            ("v1", "services", "default", "kubernetes"): {
                "kind": "Service",
                "apiVersion": "v1",
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": first,
                    "clusterIPs": [first],
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                    "sessionAffinity": "None",
                },
                "labels": labels,
            },
            ("v1", "endpoints", "default", "kubernetes"): {
                "kind": "Endpoints",
                "apiVersion": "v1",
                "subsets": [{"addresses": [{"ip": ip} for ip in cps], "ports": [port]}] if cps else [],
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
            },
            ("discovery.k8s.io/v1", "endpointslices", "default", "kubernetes"): {
                "kind": "EndpointSlice",
                "apiVersion": "discovery.k8s.io/v1",
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in cps],
                "ports": [port],
                "labels": {"kubernetes.io/service-name": "kubernetes"},
            },
        }
        for key, obj in wanted.items():
            labels_ = obj.pop("labels")
            current = self.objects.get(key)
            body = {k: v for k, v in obj.items()}
            if current is not None and all(current.get(k) == v for k, v in body.items()):
                continue
            meta = current["metadata"] if current else self.meta(key[3], key[2], labels=labels_)
            self.objects[key] = {**body, "metadata": meta}

    def serve_crds(self) -> None:
        serve_custom_resources(
            [o for k, o in self.objects.items() if k[:2] == (CRD_GV, "customresourcedefinitions")]
        )

    def save(self) -> None:
        self.storage.save(
            {
                "rv": self.rv,
                "nodes": list(self.nodes.values()),
                "pods": list(self.pods.values()),
                "pdbs": list(self.pdbs.values()),
                "secrets": list(self.secrets.values()),
                "workloads": list(self.workloads.values()),
                "applied_cloud_conf": self.applied_cloud_conf,
                "objects": [[list(k), v] for k, v in self.objects.items()],
            }
        )

    def meta(self, name: str, namespace: str | None = None, **extra) -> dict:
        self.rv += 1
        m = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(self.rv),
            "creationTimestamp": now(),
        }
        if namespace:
            m["namespace"] = namespace
        m.update(extra)
        return m

    def touch(self, obj: dict) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def reconcile_nodes(self) -> None:
        """A Node per inventory host (added hosts join, removed ones leave), with its system pods."""
        with self.lock:
            wanted = {n["name"]: n for n in self.config["nodes"]}
            for name in list(self.nodes):
                if name not in wanted:
                    del self.nodes[name]
                    for key in [k for k, p in self.pods.items() if p["spec"].get("nodeName") == name]:
                        del self.pods[key]
            for name, n in wanted.items():
                if name in self.nodes and n.get("labels"):
                    # roles/kubernetes/node-label: `kubectl label --overwrite` of the inventory's
                    # node_labels on every run.
                    self.nodes[name]["metadata"].setdefault("labels", {}).update(n["labels"])
                if name in self.nodes and n.get("taints"):
                    # roles/kubernetes/node-taint: `kubectl taint node … --overwrite=true` of the
                    # inventory's node_taints on every run (a taint no longer listed is kept).
                    self.nodes[name]["spec"]["taints"] = overwrite_taints(
                        self.nodes[name]["spec"].get("taints") or [], n["taints"]
                    )
                if name not in self.nodes:
                    self.nodes[name] = self.new_node(n)
                    for ds in DAEMONSETS:
                        # The DaemonSet controller's pods: generateName `<ds>-` and 5 random
                        # characters (storage/names/generate.go), here random but stable per node.
                        rng = random.Random(f"{ds}/{name}")
                        self.add_system_pod(controllers.pod_name(ds, rng), name, owner=("DaemonSet", ds))
                    if n.get("control_plane"):
                        # kubeadm's static pods, mirrored as `<component>-<node>` (kubelet
                        # pkg/kubelet/config/common.go generatePodName).
                        for component in CONTROL_PLANE_PODS:
                            self.add_system_pod(f"{component}-{name}", name, mirror=True)
            self.save()

    def apply_kubespray_apps(self) -> None:
        """What Kubespray v2.31.0's kubernetes-apps roles apply on every cluster.yml (only what
        is missing here; config `kubespray_apps`): CoreDNS and its dns-autoscaler
        (roles/kubernetes-apps/ansible/templates/coredns-deployment.yml.j2, dns-autoscaler.yml.j2,
        coredns-poddisruptionbudget.yml.j2 when coredns_pod_disruption_budget), NodeLocal DNSCache
        (nodelocaldns-daemonset.yml.j2, when enable_nodelocaldns) and calico-kube-controllers
        (policy_controller/calico/templates/calico-kube-controllers.yml.j2, with Calico), with the
        defaults of roles/kubernetes-apps/ansible/defaults/main.yml and
        policy_controller/calico/defaults/main.yml. CoreDNS gets the replicas the dns-autoscaler
        (cluster-proportional-autoscaler, linear mode) would give it on a small cluster:
        dns_min_replicas, min(2, nodes). Their pods are made, scheduled and moved by the
        controllers and the scheduler like any client's."""
        apps = self.config.get("kubespray_apps")
        if not apps:
            return
        linux = {"kubernetes.io/os": "linux"}
        cp_toleration = {"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}

        def deployment(name: str, app: str, replicas: int, pod: dict, labels: dict | None = None) -> dict:
            return {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": "kube-system", "labels": labels or {"k8s-app": app}},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"k8s-app": app}},
                    "template": {"metadata": {"labels": {"k8s-app": app}}, "spec": pod},
                },
            }

        def container(name: str, cpu: str, memory: str, memory_limit: str | None = None) -> dict:
            res: dict = {"requests": {"cpu": cpu, "memory": memory}}
            if memory_limit:
                res["limits"] = {"memory": memory_limit}
            return {"name": name, "image": "stand-in", "resources": res}

        wanted = [
            deployment(
                "coredns",
                "kube-dns",
                int(apps.get("dns_min_replicas", 2)),
                {
                    "nodeSelector": linux,
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "tolerations": [cp_toleration],
                    "affinity": copy.deepcopy(COREDNS_AFFINITY),
                    "containers": [container("coredns", "100m", "70Mi", "300Mi")],
                },
                labels={"k8s-app": "kube-dns", "kubernetes.io/name": "coredns"},
            ),
            deployment(
                "dns-autoscaler",
                "dns-autoscaler",
                1,
                {
                    "nodeSelector": linux,
                    "priorityClassName": "system-cluster-critical",
                    "tolerations": [cp_toleration],
                    "containers": [container("autoscaler", "20m", "10Mi")],
                },
            ),
        ]
        if apps.get("calico"):
            wanted.append(
                deployment(
                    "calico-kube-controllers",
                    "calico-kube-controllers",
                    1,
                    {
                        "nodeSelector": linux,
                        "serviceAccountName": "calico-kube-controllers",
                        "tolerations": [
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            cp_toleration,
                            {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                        ],
                        "priorityClassName": "system-cluster-critical",
                        "containers": [container("calico-kube-controllers", "30m", "64M")],
                    },
                )
            )
        if apps.get("nodelocaldns"):
            wanted.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "metadata": {
                        "name": "nodelocaldns",
                        "namespace": "kube-system",
                        "labels": {"k8s-app": "kube-dns"},
                    },
                    "spec": {
                        "selector": {"matchLabels": {"k8s-app": "node-local-dns"}},
                        "template": {
                            "metadata": {"labels": {"k8s-app": "node-local-dns"}},
                            "spec": {
                                "nodeSelector": linux,
                                "priorityClassName": "system-node-critical",
                                "serviceAccountName": "nodelocaldns",
                                "hostNetwork": True,
                                "tolerations": [
                                    {"effect": "NoSchedule", "operator": "Exists"},
                                    {"effect": "NoExecute", "operator": "Exists"},
                                ],
                                "containers": [container("node-cache", "100m", "70Mi", "200Mi")],
                            },
                        },
                    },
                }
            )
        with self.lock:
            for obj in wanted:
                plural = obj["kind"].lower() + "s"
                key = ("apps/v1", plural, "kube-system", obj["metadata"]["name"])
                if key not in self.objects:
                    self.put_object(key, obj, None, save=False)
            pdb = ("kube-system", "coredns")
            if apps.get("coredns_pdb") and pdb not in self.pdbs:
                self.pdbs[pdb] = {
                    "kind": "PodDisruptionBudget",
                    "apiVersion": "policy/v1",
                    "metadata": self.meta("coredns", "kube-system"),
                    "spec": {"maxUnavailable": "30%", "selector": {"matchLabels": {"k8s-app": "kube-dns"}}},
                }
            # Turned off later, Kubespray only stops templating it (ansible/vars/main.yml:16): an
            # existing budget stays.
            for cls in apps.get("storage_classes") or []:
                # roles/kubernetes-apps/persistent_volumes/cinder-csi/templates/
                # cinder-csi-storage-class.yml.j2 (with cinder_csi_enabled and persistent_volumes_enabled)
                key = ("storage.k8s.io/v1", "storageclasses", "", cls["name"])
                if key in self.objects:
                    continue
                default = "true" if cls.get("is_default") else "false"
                sc = {
                    "kind": "StorageClass",
                    "apiVersion": "storage.k8s.io/v1",
                    "metadata": {"name": cls["name"], "annotations": {cinder_csi.DEFAULT_CLASS: default}},
                    "provisioner": cinder_csi.DRIVER,
                    "volumeBindingMode": "WaitForFirstConsumer",
                    "parameters": {str(k): str(v) for k, v in (cls.get("parameters") or {}).items()},
                    "allowVolumeExpansion": bool(apps.get("expand_persistent_volumes")),
                    "reclaimPolicy": "Delete",
                }
                self.put_object(key, sc, None, save=False)
            self.save()

    def apply_cloud_config(self) -> None:
        """What Kubespray's manifests do on every cluster.yml: the two Secrets hold the cloud config
        from the inventory, and the three workloads exist. Re-applied only when the config changed
        (a credential rotated since, through the API, is kept until the inventory changes)."""
        conf = self.config.get("cloud_conf")
        if conf is None:
            return
        # The cloud controller's has its [LoadBalancer] section besides (cluster.yml).
        confs = {"external-openstack-cloud-config": self.config.get("ccm_cloud_conf") or conf}
        with self.lock:
            applied = conf + confs["external-openstack-cloud-config"]
            if applied != self.applied_cloud_conf:
                for ns, name in persist.CLOUD_CONFIG_SECRETS:
                    b64 = base64.b64encode(confs.get(name, conf).encode()).decode()
                    old = self.secrets.get((ns, name))
                    sec = old or {
                        "kind": "Secret",
                        "apiVersion": "v1",
                        "metadata": self.meta(name, ns),
                        "type": "Opaque",
                    }
                    sec["data"] = {"cloud.conf": b64}
                    self.touch(sec)
                    self.secrets[(ns, name)] = sec
                self.applied_cloud_conf = applied
            for plural, name in WORKLOADS:
                w = self.workloads.get((plural, name))
                if w is not None and name in KUBESPRAY_POD_PLACEMENT:
                    w["spec"]["template"]["spec"].update(copy.deepcopy(KUBESPRAY_POD_PLACEMENT[name]))
                if (plural, name) not in self.workloads:
                    self.workloads[(plural, name)] = {
                        "plural": plural,
                        "kind": "DaemonSet" if plural == "daemonsets" else "Deployment",
                        "apiVersion": "apps/v1",
                        "metadata": dict(self.meta(name, "kube-system"), generation=1),
                        "spec": dict(
                            {"replicas": 1} if plural == "deployments" else {},
                            selector={"matchLabels": {"app": name}},
                            template={
                                "metadata": {"labels": {"app": name}, "annotations": {}},
                                "spec": dict(
                                    {"containers": [{"name": name, "image": "stand-in"}]},
                                    **KUBESPRAY_POD_PLACEMENT.get(name, {}),
                                ),
                            },
                        ),
                        "rollout": {"generation": 1, "at": 0.0, "fails": False},
                    }
            self.save()

    def workload_view(self, w: dict) -> dict:
        """The object with the status fields `kubectl rollout status` reads."""
        view = {k: copy.deepcopy(v) for k, v in w.items() if k not in ("plural", "rollout", "pods")}
        apimachinery.with_defaults(w["plural"], view)
        gen = w["metadata"]["generation"]
        ro = w["rollout"]
        done = not ro["fails"] and time.time() - ro["at"] >= 1.0
        if w["plural"] == "deployments":
            n = w["spec"].get("replicas", 1)
            view["status"] = {
                "observedGeneration": gen,
                "replicas": n if done else n + 1,
                "updatedReplicas": n if done else 0,
                "readyReplicas": n,
                "availableReplicas": n,
            }
        else:
            with self.lock:
                view["status"] = self.sync_daemonset(w)
        view.pop("pods", None)
        return view

    def patch_workload(self, w: dict, merged: dict) -> None:
        """Store a patched workload (`merged`: its metadata and spec with the patch applied)."""
        before = json.dumps(w["spec"].get("template"), sort_keys=True)
        w["metadata"] = keep_server_fields(w["metadata"], merged.get("metadata") or {})
        w["spec"] = merged.get("spec") or {}
        if json.dumps(w["spec"].get("template"), sort_keys=True) != before:
            # A new template is a new generation, rolled out from now.
            w["metadata"]["generation"] += 1
            ann = w["metadata"].setdefault("annotations", {})
            left = int(ann.get(FAIL_ROLLOUTS, "0") or 0)
            w["rollout"] = {"generation": w["metadata"]["generation"], "at": time.time(), "fails": left > 0}
            if left > 0:
                ann[FAIL_ROLLOUTS] = str(left - 1)
        self.touch(w)
        self.save()

    def new_node(self, n: dict) -> dict:
        labels = {"kubernetes.io/hostname": n["name"], "kubernetes.io/os": "linux", **(n.get("labels") or {})}
        spec: dict = {}
        if n.get("control_plane"):
            labels[CONTROL_PLANE_LABEL] = ""
            # kubeadm's mark-control-plane phase (cmd/kubeadm/app/phases/markcontrolplane).
            labels[cloud_controller.EXCLUDE_LABEL] = ""
            spec["taints"] = [{"key": CONTROL_PLANE_LABEL, "effect": "NoSchedule"}]
        if n.get("taints"):
            spec["taints"] = overwrite_taints(spec.get("taints") or [], n["taints"])
        return {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": self.meta(n["name"], labels=labels),
            "spec": spec,
            "status": {"addresses": [{"type": "InternalIP", "address": n["ip"]}], "conditions": []},
        }

    def add_system_pod(self, name: str, node: str, owner=None, mirror=False) -> None:
        app = owner[1] if owner else next(c for c in CONTROL_PLANE_PODS if name.startswith(c + "-"))
        extra: dict = {"labels": {"k8s-app" if owner else "component": app}}
        if owner:
            ds = self.objects.get(("apps/v1", "daemonsets", "kube-system", owner[1]))
            extra["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner[0],
                    "name": owner[1],
                    "uid": ds["metadata"]["uid"] if ds else str(uuid.uuid4()),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        if mirror:
            extra["annotations"] = {"kubernetes.io/config.mirror": uuid.uuid4().hex}
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": self.meta(name, "kube-system", **extra),
            "spec": {
                "nodeName": node,
                # DaemonSet pods get the DaemonSet controller's tolerations; static pods the
                # kubelet's NoExecute-for-ever one (pkg/kubelet/config/common.go applyDefaults):
                # neither is evicted from a NotReady node.
                "tolerations": copy.deepcopy(DAEMON_POD_TOLERATIONS)
                if owner
                else [{"operator": "Exists", "effect": "NoExecute"}],
                # All of them share the node's network namespace (calico-node, kube-proxy and
                # kubeadm's static pods set hostNetwork: true): their IP is the node's.
                "hostNetwork": True,
                "containers": [
                    {
                        "name": app,
                        "image": "stand-in",
                        # calico-node's requests (roles/network_plugin/calico_defaults/defaults/
                        # main.yml: calico_node_cpu_requests 150m, memory 64M); kube-proxy none.
                        **(
                            {"resources": {"requests": {"cpu": "150m", "memory": "64M"}}}
                            if name.startswith("calico-node")
                            else {}
                        ),
                    }
                ],
            },
            "status": {"phase": "Running"},
        }
        self.pods[("kube-system", name)] = pod

    # -- what the node lifecycle controller would say ----------------------------------------
    def node_view(self, node: dict) -> dict:
        node = copy.deepcopy(node)
        name = node["metadata"]["name"]
        ready = self.ready.get(name)
        cond = {
            "type": "Ready",
            "status": "True" if ready else "Unknown",
            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
            "message": "kubelet is posting ready status" if ready else "Kubelet stopped posting node status.",
            "lastHeartbeatTime": now(),
            "lastTransitionTime": self.ready_since.get(name)
            or node["metadata"].get("creationTimestamp")
            or now(),
        }
        node["status"]["conditions"] = [cond]
        # Every field of core/v1 NodeSystemInfo (all required: the official client refuses a
        # node without them); the ids stable per node.
        stable = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.stand-in.stackspray")
        node["status"]["nodeInfo"] = {
            "machineID": stable.hex,
            "systemUUID": str(stable),
            "bootID": str(uuid.uuid5(stable, "boot")),
            "kubeletVersion": self.kubelet_version(name),
            "kubeProxyVersion": self.kubelet_version(name),
            "osImage": "stand-in (no kubelet runs on the sandbox)",
            "kernelVersion": os.uname().release,
            "containerRuntimeVersion": "stand-in://0",
            "operatingSystem": "linux",
            "architecture": "amd64",
        }
        node["spec"]["taints"] = self.node_taints(node)
        node["status"].update(self.node_resources(name))
        return node

    def node_resources(self, name: str) -> dict:
        """capacity and allocatable as the kubelet of a VM of the node's flavor reports them:
        Kubespray v2.31.0 reserves nothing (kube_reserved and system_reserved false,
        roles/kubernetes/node/defaults/main.yml), so allocatable is capacity less the kubelet's
        default hard eviction threshold, memory.available<100Mi; 110 pods."""
        machine = next((n.get("machine") or {} for n in self.config["nodes"] if n["name"] == name), {})
        if not machine.get("vcpus"):
            return {}
        capacity = {
            "cpu": str(machine["vcpus"]),
            "memory": f"{machine['ram_mb'] * 1024}Ki",
            "pods": "110",
        }
        if machine.get("gpus") and self.device_plugin_on(name):
            # The kubelet adds an extended resource once a device plugin registers it over
            # /var/lib/kubelet/device-plugins/kubelet.sock (pkg/kubelet/cm/devicemanager/manager.go
            # GetCapacity): no plugin pod on the node, no nvidia.com/gpu, whatever the hardware.
            capacity[scheduler.GPU] = str(machine["gpus"])
        allocatable = dict(capacity, memory=f"{machine['ram_mb'] * 1024 - 100 * 1024}Ki")
        return {"capacity": capacity, "allocatable": allocatable}

    def device_plugin_on(self, node: str) -> bool:
        """NVIDIA's device plugin (k8s-device-plugin's image) has a pod on `node`."""
        return any(
            p["spec"].get("nodeName") == node
            and p["status"].get("phase") not in controllers.FINISHED
            and any(DEVICE_PLUGIN_IMAGE in str(c.get("image", "")) for c in p["spec"].get("containers") or [])
            for p in self.pods.values()
        )

    def _version_file(self, name: str) -> str | None:
        folder = self.config.get("versions_dir")
        if not folder:
            return None
        try:
            with open(os.path.join(folder, name)) as fh:
                text = fh.read().strip()
        except OSError:
            return None
        return ("v" + text.lstrip("v")) if text else None

    def server_version(self) -> str:
        """kube-apiserver's version: what the Kubespray stand-in's cluster.yml or upgrade-cluster.yml
        last installed on the control plane (`versions/kube-apiserver` beside the config), else the
        configured `kube_version`, else Kubespray v2.31.0's default."""
        configured = self.config.get("kube_version")
        return self._version_file("kube-apiserver") or (
            "v" + str(configured).lstrip("v") if configured else KUBE_VERSION
        )

    def kubelet_version(self, node: str) -> str:
        """The version the node's kubelet reports (`versions/<node>`, written where Kubespray's
        stand-in installs or upgrades its kubelet), else the API server's."""
        return self._version_file(node) or self.server_version()

    def node_taints(self, node: dict) -> list[dict]:
        """The node's own taints plus those the node lifecycle controller adds (see above)."""
        taints = [
            x for x in node["spec"].get("taints") or [] if not x["key"].startswith("node.kubernetes.io/")
        ]
        if not self.ready.get(node["metadata"]["name"]):
            taints += copy.deepcopy(UNREACHABLE_TAINTS)
        if node["spec"].get("unschedulable"):
            taints.append(dict(UNSCHEDULABLE_TAINT))
        return taints

    # -- the DaemonSet controller for the credential DaemonSets --------------------------------
    def should_run(
        self, template_spec: dict, node: dict, effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
    ) -> bool:
        """NodeShouldRunDaemonPod (pkg/controller/daemon/daemon_controller.go): the node selector
        and required node affinity match and every NoSchedule/NoExecute taint is tolerated, the
        controller's own daemon pod tolerations included. `effects` ("NoExecute" alone): whether a
        pod already on the node continues running there (shouldContinueRunning)."""
        if not scheduler.affinity_matches({"spec": template_spec}, node):
            return False
        tolerations = list(template_spec.get("tolerations") or []) + DAEMON_POD_TOLERATIONS
        return all(
            any(scheduler.tolerates(tol, taint) for tol in tolerations)
            for taint in self.node_taints(node)
            if taint.get("effect") in effects
        )

    def sync_daemonset(self, w: dict) -> dict:
        """One pass of the DaemonSet controller over the credential DaemonSet `w`: a pod on every
        node that should run one (manage), the rolling update of rollingUpdate() in
        pkg/controller/daemon/update.go — old pods that are unavailable are always replaced, old
        available ones only while fewer than maxUnavailable daemon pods are unavailable (so an
        unreachable node, whose pod can never be available, holds the rollout of every other node
        at maxUnavailable 1) — and the status updateDaemonSetStatus reports."""
        gen = w["metadata"]["generation"]
        ro = w["rollout"]
        pods = w.setdefault("pods", {})  # node -> {"generation", "since"}
        t = time.time()
        eligible = [
            m for m, node in self.nodes.items() if self.should_run(w["spec"]["template"]["spec"], node)
        ]
        for m in [m for m in pods if m not in eligible]:
            del pods[m]
        for m in eligible:
            if m not in pods:
                pods[m] = {"generation": gen, "since": t}

        def available(m: str) -> bool:
            pod = pods[m]
            failing = ro["fails"] and pod["generation"] == ro["generation"]
            return bool(self.ready.get(m)) and not failing and t - pod["since"] >= POD_STARTUP

        strategy = (w["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate":
            limit = max_unavailable(w["spec"], len(eligible))
            unavailable = sum(1 for m in eligible if not available(m))
            old = [m for m in eligible if pods[m]["generation"] != gen]
            for m in [m for m in old if not available(m)]:
                pods[m] = {"generation": gen, "since": t}
            for m in sorted(m for m in old if available(m)):
                if unavailable >= limit:
                    break
                pods[m] = {"generation": gen, "since": t}
                unavailable += 1
        ready = [m for m in eligible if available(m)]
        status = {
            "observedGeneration": gen,
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": len(eligible),
            "numberMisscheduled": 0,
            "numberReady": len(ready),
            "updatedNumberScheduled": sum(1 for m in eligible if pods[m]["generation"] == gen),
            "numberAvailable": len(ready),
        }
        if len(eligible) - len(ready):
            status["numberUnavailable"] = len(eligible) - len(ready)
        return status

    def pod_view(self, pod: dict) -> dict:
        pod = copy.deepcopy(pod)
        node = pod["spec"].get("nodeName")
        if not node:
            pod["status"]["phase"] = "Pending"
            pod["status"]["conditions"] = [
                pod.get("scheduling") or {"type": "PodScheduled", "status": "False"}
            ]
            pod.pop("scheduling", None)
            return pod
        pod.pop("scheduling", None)
        ip = self.pod_ip(pod, node)
        if ip:
            pod["status"]["podIP"], pod["status"]["podIPs"] = ip, [{"ip": ip}]
            pod["status"]["hostIP"], pod["status"]["hostIPs"] = (
                self.node_ip(node),
                [{"ip": self.node_ip(node)}],
            )
        ready = bool(self.ready.get(node))
        pod["status"]["conditions"] = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True" if ready else "False"},
        ]
        return pod

    def node_ip(self, node: str) -> str:
        return next((n["ip"] for n in self.config.get("nodes", []) if n["name"] == node), "")

    def pod_ip(self, pod: dict, node: str) -> str:
        """A bound pod's IP: the node's for a hostNetwork pod; else one of the node's block of
        the pod network (Kubespray's kube_pods_subnet 10.233.64.0/18, a /24 per node:
        kube_network_node_prefix), stable for the pod (Calico's IPAM hands out addresses of
        per-node blocks; which one is its choice)."""
        if pod["spec"].get("hostNetwork"):
            return self.node_ip(node)
        names = sorted(n["name"] for n in self.config.get("nodes", []))
        if node not in names:
            return ""
        block = ipaddress.ip_network(POD_CIDR).network_address + 256 * names.index(node)
        uid = pod["metadata"].get("uid") or pod["metadata"]["name"]
        return str(block + 2 + int(hashlib.sha256(uid.encode()).hexdigest(), 16) % 250)

    # -- the scheduler (scheduler.py) ----------------------------------------------------------
    def schedule_pending(self) -> None:
        """One scheduling pass: every pending pod, highest priority and oldest first, bound to a
        node the filters admit, or marked Unschedulable with the scheduler's message."""
        pending = sorted(
            (p for p in self.pods.values() if not p["spec"].get("nodeName")),
            key=lambda p: (-int(p["spec"].get("priority") or 0), p["metadata"]["creationTimestamp"]),
        )
        if not pending:
            return
        nodes = [self.node_view(n) for n in self.nodes.values()]
        bound: dict[str, list[dict]] = {}
        for p in self.pods.values():
            if p["spec"].get("nodeName") and p["status"].get("phase") not in ("Succeeded", "Failed"):
                bound.setdefault(p["spec"]["nodeName"], []).append(p)
        changed = False
        for pod in pending:
            missing, deferred = cinder_csi.pending_claims(pod, self.objects)
            if missing:
                # VolumeBinding's PreFilter (pkg/scheduler/framework/plugins/volumebinding).
                node, message = None, f'persistentvolumeclaim "{missing[0]}" not found'
            else:
                node, message = scheduler.choose(pod, nodes, bound)
            if node:
                pod["spec"]["nodeName"] = node
                for claim in deferred:  # WaitForFirstConsumer: the provisioner makes it for this node
                    pvc = self.objects[("v1", "persistentvolumeclaims", pod["metadata"]["namespace"], claim)]
                    pvc["metadata"].setdefault("annotations", {})[cinder_csi.SELECTED_NODE] = node
                    self.touch(pvc)
                # The kubelet starts it once its Cinder volumes are attached (run_cinder_csi).
                pod["status"] = {
                    "phase": "Pending" if cinder_csi.uses_cinder(pod, self.objects) else "Running"
                }
                pod.pop("scheduling", None)
                bound.setdefault(node, []).append(pod)
                self.touch(pod)
                changed = True
                ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
                self.record_event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}")
            else:
                cond = {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": (pod.get("scheduling") or {}).get("lastTransitionTime") or now(),
                }
                if (pod.get("scheduling") or {}).get("message") != message:
                    pod["scheduling"] = cond
                    self.touch(pod)
                    changed = True
                    self.record_event(pod, "Warning", "FailedScheduling", message)
        if changed:
            self.save()

    def record_event(
        self, obj: dict, type_: str, reason: str, message: str, component: str = "default-scheduler"
    ) -> None:
        """An Event about a pod, as kube-scheduler records it (core/v1 view of its
        events.k8s.io/v1 Event: reportingController default-scheduler, action Binding or
        Scheduling; pkg/scheduler/schedule_one.go). Kept an hour, as the API server's --event-ttl."""
        meta = obj["metadata"]
        ns = meta.get("namespace", "default")
        stamp = now()
        name = f"{meta['name']}.{uuid.uuid4().hex[:16]}"
        self.objects[("v1", "events", ns, name)] = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": self.meta(name, ns),
            "involvedObject": {
                "kind": obj.get("kind", "Pod"),
                "namespace": ns,
                "name": meta["name"],
                "uid": meta.get("uid"),
                "apiVersion": obj.get("apiVersion", "v1"),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "action": {"Scheduled": "Binding", "TaintManagerEviction": "Delete"}.get(reason, "Scheduling"),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        horizon = time.time() - EVENT_TTL
        for key in [
            k
            for k, o in self.objects.items()
            if k[1] == "events" and _epoch(o.get("lastTimestamp")) < horizon
        ]:
            del self.objects[key]

    # -- Cinder CSI and the controllers that drive it (cinder_csi.py) ----------------------------
    def run_cinder_csi(self) -> None:
        """Cinder CSI's passes, once a second, its cloud calls made outside the lock."""
        client: cinder_csi.OpenStack | None = None
        while True:
            time.sleep(float(self.config.get("tick", 1.0)))
            with self.lock:
                if not any(k[1] == "storageclasses" for k in self.objects):
                    continue
                work = cinder_csi.plan(self.objects, list(self.pods.values()), scheduler.quantity)
                secret = self.secrets.get(("kube-system", "cloud-config"))
                conf = base64.b64decode(secret["data"]["cloud.conf"]).decode() if secret else None
            provision, wanted, delete, waiting = work
            if not (provision or wanted or delete or self.csi_attached) or conf is None:
                continue
            if client is None or client.conf != conf:
                client = cinder_csi.OpenStack(conf)
            try:
                self.csi_pass(client, provision, wanted, delete, waiting)
            except (cinder_csi.CSIError, OSError) as exc:
                with self.lock:
                    self.csi_warning(None, "CinderCSIError", str(exc))

    # -- the service controller with the OpenStack cloud provider (cloud_controller.py) ---------
    def run_cloud_controller(self) -> None:
        """The service controller's passes, once a second, its cloud calls outside the lock."""
        client: cloud_controller.OpenStack | None = None
        while True:
            time.sleep(float(self.config.get("tick", 1.0)))
            with self.lock:
                cluster = str(self.config.get("cluster_name") or "cluster.local")
                ensure, delete = cloud_controller.plan(self.objects, list(self.nodes.values()), cluster)
                secret = self.secrets.get(("kube-system", "external-openstack-cloud-config"))
                conf = base64.b64decode(secret["data"]["cloud.conf"]).decode() if secret else None
            if not (ensure or delete) or conf is None:
                continue
            settings = cloud_controller.lb_settings(conf)
            if settings["enabled"].lower() != "true":
                continue  # the provider offers no load balancers: Services stay <pending>
            if client is None or client.conf != conf:
                client = cloud_controller.OpenStack(conf)
            for item in ensure + delete:
                if time.monotonic() < self.lb_retry.get((item["namespace"], item["name"]), (0.0, 0.0))[0]:
                    continue  # the service controller's backoff after a failure
                if item in ensure:
                    self.ensure_load_balancer(client, item, settings)
                else:
                    self.delete_load_balancer(client, item)

    def _service(self, item: dict) -> dict | None:
        return self.objects.get(("v1", "services", item["namespace"], item["name"]))

    def _load_balancer_failed(self, item: dict, verb: str, exc: Exception) -> None:
        """The service controller's answer to a provider error: a Warning event on the Service
        and a retry after a backoff (5 s, doubling, at most 5 min)."""
        key = (item["namespace"], item["name"])
        delay = min(2 * self.lb_retry.get(key, (0.0, 2.5))[1], 300.0)
        self.lb_retry[key] = (time.monotonic() + delay, delay)
        with self.lock:
            svc = self._service(item)
            if svc is not None:
                self.record_event(
                    svc,
                    "Warning",
                    "SyncLoadBalancerFailed",
                    f"Error syncing load balancer: failed to {verb} load balancer: {exc}",
                    component=cloud_controller.COMPONENT,
                )
                self.save()

    def ensure_load_balancer(self, client, item: dict, settings: dict[str, str]) -> None:
        with self.lock:
            svc = self._service(item)
            if svc is None:
                return
            finalizers = svc["metadata"].setdefault("finalizers", [])
            if cloud_controller.FINALIZER not in finalizers:
                finalizers.append(cloud_controller.FINALIZER)
                self.touch(svc)
            self.record_event(
                svc,
                "Normal",
                "EnsuringLoadBalancer",
                "Ensuring load balancer",
                component=cloud_controller.COMPONENT,
            )
            self.save()
        try:
            lb, address = cloud_controller.ensure(client, item, settings)
        except (cloud_controller.CloudError, OSError) as exc:
            self._load_balancer_failed(item, "ensure", exc)
            return
        self.lb_retry.pop((item["namespace"], item["name"]), None)
        with self.lock:
            svc = self._service(item)
            if svc is None:
                return
            svc["metadata"].setdefault("annotations", {})[cloud_controller.LB_ID] = lb["id"]
            svc["status"] = {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}
            self.touch(svc)
            self.record_event(
                svc,
                "Normal",
                "EnsuredLoadBalancer",
                "Ensured load balancer",
                component=cloud_controller.COMPONENT,
            )
            self.save()

    def delete_load_balancer(self, client, item: dict) -> None:
        with self.lock:
            svc = self._service(item)
            if svc is None:
                return
            self.record_event(
                svc,
                "Normal",
                "DeletingLoadBalancer",
                "Deleting load balancer",
                component=cloud_controller.COMPONENT,
            )
        try:
            cloud_controller.ensure_deleted(client, item)
        except (cloud_controller.CloudError, OSError) as exc:
            self._load_balancer_failed(item, "delete", exc)
            return
        self.lb_retry.pop((item["namespace"], item["name"]), None)
        with self.lock:
            key = ("v1", "services", item["namespace"], item["name"])
            svc = self.objects.get(key)
            if svc is None:
                return
            self.record_event(
                svc,
                "Normal",
                "DeletedLoadBalancer",
                "Deleted load balancer",
                component=cloud_controller.COMPONENT,
            )
            new = copy.deepcopy(svc)
            new["metadata"]["finalizers"] = [
                f for f in new["metadata"].get("finalizers") or [] if f != cloud_controller.FINALIZER
            ]
            if not new["metadata"]["finalizers"]:
                del new["metadata"]["finalizers"]
            if (new.get("spec") or {}).get("type") != "LoadBalancer":
                new["metadata"].get("annotations", {}).pop(cloud_controller.LB_ID, None)
            stored = self.put_object(key, new, svc)
            if (stored.get("spec") or {}).get("type") != "LoadBalancer" and key in self.objects:
                stored.pop("status", None)

    def csi_warning(self, obj: dict | None, reason: str, message: str) -> None:
        """An event, at most one per object and reason every 30 s (as the sidecars' backoff)."""
        key = ((obj or {}).get("metadata", {}).get("uid"), reason)
        if time.monotonic() - self.csi_warned.get(key, -1e9) < 30:
            return
        self.csi_warned[key] = time.monotonic()
        target = obj or {"kind": "Namespace", "metadata": {"name": "kube-system", "namespace": "kube-system"}}
        self.record_event(target, "Warning", reason, message, component=cinder_csi.DRIVER)
        self.save()

    def csi_pass(self, client, provision, wanted, delete, waiting) -> None:
        cluster = str(self.config.get("cluster_name") or "cluster.local")
        for item in provision:  # external-provisioner + CreateVolume
            key = ("v1", "persistentvolumeclaims", item["namespace"], item["claim"])
            with self.lock:
                pvc = self.objects.get(key)
            if pvc is None:
                continue
            meta = {
                cinder_csi.CLUSTER_META: cluster,
                "csi.storage.k8s.io/pvc/name": item["claim"],
                "csi.storage.k8s.io/pvc/namespace": item["namespace"],
                "csi.storage.k8s.io/pv/name": item["pv"],
            }
            try:
                vol = client.create_volume(
                    item["pv"], item["size_gb"], meta, item["parameters"].get("availability")
                )
                vol = client.wait_status(vol["id"], "available")
            except cinder_csi.CSIError as exc:
                with self.lock:
                    self.csi_warning(
                        pvc,
                        "ProvisioningFailed",
                        f'failed to provision volume with StorageClass "{item["class"]}": {exc}',
                    )
                continue
            with self.lock:
                pvc = self.objects.get(key)
                if pvc is None:
                    continue
                pv = cinder_csi.persistent_volume(item, vol, pvc["metadata"]["uid"])
                self.put_object(("v1", "persistentvolumes", "", item["pv"]), pv, None, save=False)
                pvc["spec"]["volumeName"] = item["pv"]
                pvc["metadata"].setdefault("annotations", {}).update(
                    {
                        "pv.kubernetes.io/bind-completed": "yes",
                        "volume.kubernetes.io/storage-provisioner": cinder_csi.DRIVER,
                    }
                )
                self.touch(pvc)
                self.bind_claims()
                self.record_event(
                    pvc,
                    "Normal",
                    "ProvisioningSucceeded",
                    f"Successfully provisioned volume {item['pv']}",
                    component=cinder_csi.DRIVER,
                )
                self.save()
        # What is attached where, as Cinder says (a restart of the stand-in loses nothing).
        with self.lock:
            handles = {
                (o["spec"].get("csi") or {}).get("volumeHandle")
                for k, o in self.objects.items()
                if k[1] == "persistentvolumes"
                and (o["spec"].get("csi") or {}).get("driver") == cinder_csi.DRIVER
            } - {None}
        actual: dict[str, set[str]] = {}
        for vid in handles | {d["volume"] for d in delete} | set(self.csi_attached):
            vol = client.volume(vid)
            if vol is not None:
                actual[vid] = {a["server_id"] for a in vol.get("attachments") or []}
        by_server = {}
        for _, node in wanted:
            by_server[node] = client.server_id(node)
        want = {(vid, by_server[node]) for vid, node in wanted}
        for vid, servers in actual.items():  # ControllerUnpublishVolume where no pod needs it
            for server in servers - {s for v, s in want if v == vid}:
                client.detach(server, vid)
                client.wait_status(vid, "available")
                servers.discard(server)
        for vid, server in sorted(want):  # ControllerPublishVolume
            if server in actual.get(vid, set()):
                continue
            if actual.get(vid):
                continue  # attached to another node still (Multi-Attach): next pass
            client.attach(server, vid)
            client.wait_status(vid, "in-use")
            actual.setdefault(vid, set()).add(server)
        self.csi_attached = {vid for vid, servers in actual.items() if servers}
        with self.lock:  # the kubelet starts pods whose volumes are all attached to their node
            for (ns, name), ids in waiting.items():
                pod = self.pods.get((ns, name))
                if pod is None or pod["status"].get("phase") != "Pending":
                    continue
                server = by_server.get(pod["spec"].get("nodeName"))
                if all(server in actual.get(vid, set()) for vid in ids):
                    pod["status"] = {"phase": "Running"}
                    self.touch(pod)
                    self.record_event(
                        pod,
                        "Normal",
                        "SuccessfulAttachVolume",
                        f"AttachVolume.Attach succeeded for volume(s) {', '.join(ids)}",
                        component="attachdetach-controller",
                    )
            self.save()
        for item in delete:  # the PV controller's Delete reclaim: DeleteVolume once detached
            if actual.get(item["volume"]):
                continue
            client.delete_volume(item["volume"])
            with self.lock:
                self.objects.pop(("v1", "persistentvolumes", "", item["pv"]), None)
                self.rv += 1
                self.save()

    def run_daemonset_controller(self) -> None:
        """The DaemonSet controller works on its own, not when a client looks: it is woken by
        every pod and node change (its informers' handlers enqueue the DaemonSet,
        pkg/controller/daemon/daemon_controller.go addPod/updatePod/updateNode) and requeues a
        DaemonSet whose pods are not yet available (enqueueDaemonSetAfter). Here: a pass over
        the credential DaemonSets every DAEMONSET_RESYNC seconds, so a rollout advances at the
        same pace whether a client polls every 0.2 s or every 5 s."""
        while True:
            time.sleep(DAEMONSET_RESYNC)
            with self.lock:
                for w in self.workloads.values():
                    if w["plural"] == "daemonsets":
                        self.sync_daemonset(w)

    def run_scheduler(self) -> None:
        while True:
            time.sleep(float(self.config.get("tick", 1.0)))  # the controllers' pass: once a second
            with self.lock:
                self.evict_from_unreachable_nodes()
                self.sync_controllers()
                self.schedule_pending()
                self.sync_tokens()

    def sync_tokens(self) -> None:
        """The ServiceAccount token controller (auth.py sync_tokens); the cluster CA is the
        stand-in's own certificate, as its kubeconfigs name it."""
        if self.ca_pem is None:
            try:
                with open(self.config["cert"]) as fh:
                    self.ca_pem = fh.read()
            except (KeyError, OSError):
                self.ca_pem = ""
        if auth.sync_tokens(self.objects, self.ca_pem, self.touch):
            self.rv += 1
            self.save()

    # -- the Deployment and ReplicaSet controllers (controllers.py) ----------------------------
    def owned(self, plural: str, ns: str, uid: str) -> list[tuple[tuple[str, str, str, str], dict]]:
        return [
            (k, o)
            for k, o in self.objects.items()
            if k[0] == "apps/v1" and k[1] == plural and k[2] == ns and controllers.controller_uid(o) == uid
        ]

    def pods_of(self, ns: str, uid: str) -> list[dict]:
        return [
            p
            for (pns, _), p in self.pods.items()
            if pns == ns
            and controllers.controller_uid(p) == uid
            and p["status"].get("phase") not in controllers.FINISHED
        ]

    def store_pod(self, ns: str, body: dict) -> dict:
        """A created pod (by a client or a controller): the metadata the client may set, the
        server's own, `Running` when it names its node (the kubelet's part), else `Pending`."""
        md = body["metadata"]
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": self.meta(
                md["name"],
                ns,
                **{k: v for k, v in md.items() if k in ("labels", "annotations", "ownerReferences")},
            ),
            "spec": self.default_tolerations(with_priority(requests_from_limits(body["spec"]))),
            "status": {"phase": "Running" if body["spec"].get("nodeName") else "Pending"},
        }
        self.pods[(ns, md["name"])] = pod
        return pod

    def default_tolerations(self, spec: dict) -> dict:
        """The DefaultTolerationSeconds admission plugin
        (plugin/pkg/admission/defaulttolerationseconds/admission.go): a pod that tolerates neither
        node.kubernetes.io/not-ready:NoExecute nor …/unreachable:NoExecute gets each for the API
        server's --default-not-ready-toleration-seconds / --default-unreachable-toleration-seconds
        (300; Kubespray's kube_apiserver_pod_eviction_not_ready_timeout_seconds and
        …_unreachable_timeout_seconds, roles/kubernetes/control-plane/defaults/main/main.yml)."""
        tolerations = list(spec.get("tolerations") or [])
        for key, setting in (
            ("node.kubernetes.io/not-ready", "default_not_ready_toleration_seconds"),
            ("node.kubernetes.io/unreachable", "default_unreachable_toleration_seconds"),
        ):
            taint = {"key": key, "effect": "NoExecute"}
            if not any(scheduler.tolerates(t, taint) for t in tolerations):
                tolerations.append(
                    {
                        "key": key,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": int(self.config.get(setting, DEFAULT_TOLERATION_SECONDS)),
                    }
                )
        return {**spec, "tolerations": tolerations}

    def evict_from_unreachable_nodes(self, t: float | None = None) -> None:
        """The taint eviction controller (pkg/controller/tainteviction/taint_eviction.go): a pod
        on a node with the unreachable NoExecute taint is deleted at once when it does not
        tolerate it, else when its shortest tolerationSeconds has passed since the taint came
        (never for a toleration without tolerationSeconds: DaemonSet pods); its controller then
        makes a new one, which waits Pending for a node. The stand-in deletes the pod outright
        where Kubernetes marks it Terminating until its node answers or the pod GC removes it:
        either way it no longer counts for its ReplicaSet."""
        t = time.time() if t is None else t
        evicted = False
        for (ns, name), pod in list(self.pods.items()):
            node = pod["spec"].get("nodeName")
            if not node or node not in self.ready or self.ready[node]:
                continue
            tainted_at = _epoch(self.ready_since.get(node))
            taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
            matching = [x for x in pod["spec"].get("tolerations") or [] if scheduler.tolerates(x, taint)]
            if matching and any(x.get("tolerationSeconds") is None for x in matching):
                continue
            grace = min((float(x["tolerationSeconds"]) for x in matching), default=0.0)
            if t < tainted_at + max(grace, 0.0):
                continue
            del self.pods[(ns, name)]
            self.record_event(
                pod,
                "Normal",
                "TaintManagerEviction",
                f"Marking for deletion Pod {ns}/{name}",
                component="taint-eviction-controller",
            )
            evicted = True
        if evicted:
            self.save()

    def sync_controllers(self) -> None:
        """One pass of the Deployment controller (pkg/controller/deployment/deployment_controller.go
        syncDeployment: the current template's ReplicaSet at spec.replicas, older ones at 0) and
        of the ReplicaSet controller (pkg/controller/replicaset/replica_set.go manageReplicas:
        create the missing pods, delete the extra ones)."""
        changed = False
        for key, d in list(self.objects.items()):
            if key[:2] != ("apps/v1", "deployments"):
                continue
            want = controllers.replica_set_for(d)
            rs_key = ("apps/v1", "replicasets", key[2], want["metadata"]["name"])
            current = self.objects.get(rs_key)
            if current is None:
                revision = 1 + max(
                    [
                        int((o["metadata"].get("annotations") or {}).get(controllers.REVISION, "0"))
                        for _, o in self.owned("replicasets", key[2], d["metadata"]["uid"])
                    ]
                    or [0]
                )
                want["metadata"]["annotations"] = {controllers.REVISION: str(revision)}
                self.put_object(rs_key, want, None, save=False)
                changed = True
            elif current["spec"].get("replicas") != want["spec"]["replicas"]:
                current["spec"]["replicas"] = want["spec"]["replicas"]
                self.touch(current)
                changed = True
            for k, old in self.owned("replicasets", key[2], d["metadata"]["uid"]):
                if k != rs_key and old["spec"].get("replicas", 1) != 0:
                    old["spec"]["replicas"] = 0
                    self.touch(old)
                    changed = True
        changed = self.sync_daemon_pods() or changed
        for key, rs in list(self.objects.items()):
            if key[:2] != ("apps/v1", "replicasets"):
                continue
            pods = self.pods_of(key[2], rs["metadata"]["uid"])
            diff = rs["spec"].get("replicas", 1) - len(pods)
            for _ in range(diff):
                name = controllers.pod_name(key[3])
                while (key[2], name) in self.pods:
                    name = controllers.pod_name(key[3])
                self.store_pod(key[2], controllers.new_pod(rs, name))
                changed = True
            for p in controllers.pods_to_delete(pods, -diff, self.ready) if diff < 0 else []:
                del self.pods[(key[2], p["metadata"]["name"])]
                changed = True
        if changed:
            self.save()

    def sync_daemon_pods(self) -> bool:
        """The DaemonSet controller's manage() (pkg/controller/daemon/daemon_controller.go
        podsShouldBeOnNode) for the DaemonSets clients create — NVIDIA's device plugin among them;
        kube-proxy's and calico-node's pods are the nodes' own (reconcile_nodes): a pod on every
        node that should run one, none on the others. The real controller has the scheduler bind
        each pod through a node affinity on its node's name; here it is bound at once, so a daemon
        pod that would not fit its node's free resources still runs (the stand-in's daemon pods
        request nothing that a node could refuse). True when a pod was made or deleted."""
        changed = False
        for key, ds in list(self.objects.items()):
            if key[:2] != ("apps/v1", "daemonsets") or (key[2] == "kube-system" and key[3] in DAEMONSETS):
                continue
            ns, uid = key[2], ds["metadata"]["uid"]
            template = (ds.get("spec") or {}).get("template") or {}
            tspec = template.get("spec") or {}
            eligible = {m for m, node in self.nodes.items() if self.should_run(tspec, node)}
            # shouldContinueRunning: a pod already there stays unless a NoExecute taint it does not
            # tolerate came (a NotReady node's unreachable NoSchedule taint does not remove it).
            staying = {m for m, node in self.nodes.items() if self.should_run(tspec, node, ("NoExecute",))}
            have: dict[str, dict] = {}
            for p in self.pods_of(ns, uid):
                node = p["spec"].get("nodeName")
                if node in staying and node not in have:
                    have[node] = p
                else:
                    del self.pods[(ns, p["metadata"]["name"])]
                    changed = True
            for node in sorted(eligible - set(have)):
                name = controllers.pod_name(key[3])
                while (ns, name) in self.pods:
                    name = controllers.pod_name(key[3])
                tmeta = template.get("metadata") or {}
                spec = copy.deepcopy(template.get("spec") or {})
                spec["nodeName"] = node
                tolerations = list(spec.get("tolerations") or [])
                spec["tolerations"] = tolerations + [
                    t for t in DAEMON_POD_TOLERATIONS if t not in tolerations
                ]
                body = {
                    "metadata": {
                        "name": name,
                        "labels": dict(tmeta.get("labels") or {}),
                        "ownerReferences": [controllers.owner_reference(ds, "DaemonSet")],
                    },
                    "spec": spec,
                }
                self.store_pod(ns, body)
                changed = True
        return changed

    def cascade(self, uid: str, ns: str, orphan: bool) -> None:
        """The garbage collector on an owner's deletion (pkg/controller/garbagecollector):
        background propagation deletes the dependents (and theirs); Orphan removes the references."""
        dependents = [
            (k, o) for k, o in self.objects.items() if k[2] == ns and controllers.controller_uid(o) == uid
        ]
        pods = [(k, p) for k, p in self.pods.items() if k[0] == ns and controllers.controller_uid(p) == uid]
        for store, key, obj in [(self.objects, k, o) for k, o in dependents] + [
            (self.pods, k, p) for k, p in pods
        ]:
            if orphan:
                refs = obj["metadata"].get("ownerReferences") or []
                obj["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                self.touch(obj)
            else:
                del store[key]
                if store is self.objects:
                    self.cascade(obj["metadata"]["uid"], ns, orphan)

    def probe_nodes(self) -> None:
        """The kubelet posts status while its host answers (SSH), and the node lifecycle
        controller marks a node Unknown only when it has heard nothing for the grace period:
        Kubespray v2.31.0 sets --node-monitor-grace-period 40s and --node-monitor-period 5s
        (roles/kubernetes/control-plane/defaults/main/main.yml kube_controller_node_monitor_*;
        pkg/controller/nodelifecycle/node_lifecycle_controller.go tryUpdateNodeHealth). So a
        shelved node stays Ready for 40-45 s; a node that answers again is Ready at once."""

        def answers(ip: str) -> bool:
            try:
                with socket.create_connection((ip, 22), timeout=1.0):
                    return True
            except OSError:
                return False

        grace = _seconds(self.config.get("node_monitor_grace_period", NODE_MONITOR_GRACE))
        heard: dict[str, float] = {}
        last_check = 0.0
        with ThreadPoolExecutor(max_workers=16) as pool:
            while True:
                hosts = {n["name"]: n["ip"] for n in self.config["nodes"]}
                results = dict(zip(hosts, pool.map(answers, hosts.values()), strict=True))
                t = time.monotonic()
                for name, ok in results.items():
                    if ok:
                        heard[name] = t
                ready = dict(self.ready)
                for name in hosts:
                    if results[name]:
                        ready[name] = True  # the kubelet posts Ready as soon as it runs
                    elif t - last_check >= NODE_MONITOR_PERIOD or name not in ready:
                        ready[name] = name in heard and t - heard[name] < grace
                if t - last_check >= NODE_MONITOR_PERIOD:
                    last_check = t
                new = {n: ready.get(n, False) for n in hosts}
                for n, ok in new.items():
                    if self.ready.get(n) != ok or n not in self.ready_since:
                        self.ready_since[n] = now()
                self.ready = new
                time.sleep(1.0)

    # -- PodDisruptionBudget arithmetic (policy/v1 PodDisruptionBudgetSpec) ---------------------
    def budget(self, pdb: dict) -> tuple[int, int, int]:
        """(expected, desired healthy, currently healthy) for the pods the budget selects."""
        ns = pdb["metadata"]["namespace"]
        want = (pdb["spec"].get("selector") or {}).get("matchLabels") or {}
        selected = [
            p
            for (pns, _), p in self.pods.items()
            if pns == ns and all(p["metadata"].get("labels", {}).get(k) == v for k, v in want.items())
        ]
        expected = len(selected)
        healthy = sum(1 for p in selected if self.ready.get(p["spec"].get("nodeName")))

        def scaled(value) -> int:
            if isinstance(value, str) and value.endswith("%"):
                return math.ceil(expected * int(value[:-1]) / 100)
            return int(value)

        spec = pdb["spec"]
        if "minAvailable" in spec:
            desired = scaled(spec["minAvailable"])
        elif "maxUnavailable" in spec:
            desired = expected - scaled(spec["maxUnavailable"])
        else:
            desired = 0
        return expected, desired, healthy

    def evict(self, ns: str, name: str) -> None:
        with self.lock:
            pod = self.pods.get((ns, name))
            if pod is None:
                raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
            labels = pod["metadata"].get("labels", {})
            budgets = [
                b
                for (bns, _), b in self.pdbs.items()
                if bns == ns
                and all(
                    labels.get(k) == v
                    for k, v in ((b["spec"].get("selector") or {}).get("matchLabels") or {}).items()
                )
            ]
            if len(budgets) > 1:
                raise ApiError(
                    500,
                    "InternalError",
                    "This pod has more than one PodDisruptionBudget, "
                    "which the eviction subresource does not support.",
                )
            if budgets:
                _, desired, healthy = self.budget(budgets[0])
                # A healthy pod may go while disruptions are allowed; an unhealthy one while the
                # budget is met (unhealthyPodEvictionPolicy IfHealthyBudget, the default).
                pod_healthy = bool(self.ready.get(pod["spec"].get("nodeName")))
                if (healthy - desired <= 0) if pod_healthy else (healthy < desired):
                    bname = budgets[0]["metadata"]["name"]
                    raise ApiError(
                        429,
                        "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        {
                            "causes": [
                                {
                                    "reason": "DisruptionBudget",
                                    "message": f"The disruption budget {bname} needs {desired} healthy "
                                    f"pods and has {healthy} currently",
                                }
                            ]
                        },
                    )
            del self.pods[(ns, name)]
            self.save()

    def pdb_view(self, b: dict) -> dict:
        b = copy.deepcopy(b)
        expected, desired, healthy = self.budget(b)
        b["status"] = {
            "expectedPods": expected,
            "desiredHealthy": desired,
            "currentHealthy": healthy,
            "disruptionsAllowed": max(0, healthy - desired),
            "observedGeneration": 1,
        }
        return b

    def list_view(self, group: str, version: str, plural: str, ns: str | None) -> list[dict]:
        """Every object of a resource (in one namespace or all), as a GET of each would show it,
        wherever the stand-in keeps it: one list for every list and watch request."""
        gv = f"{group}/{version}" if group else version
        if gv == "v1" and plural == "nodes":
            items = [self.node_view(n) for n in self.nodes.values()]
        elif gv == "v1" and plural == "pods":
            items = [self.pod_view(p) for (pns, _), p in self.pods.items() if not ns or pns == ns]
        elif gv == "policy/v1" and plural == "poddisruptionbudgets":
            items = [self.pdb_view(b) for (bns, _), b in self.pdbs.items() if not ns or bns == ns]
        else:
            items = [
                self.object_view(gv, plural, o)
                for k, o in self.objects.items()
                if k[0] == gv and k[1] == plural and (not ns or k[2] == ns)
            ]
            if gv == "v1" and plural == "secrets":
                items += [copy.deepcopy(x) for (sns, _), x in self.secrets.items() if not ns or sns == ns]
            if gv == "apps/v1" and (not ns or ns == "kube-system"):
                items += [self.workload_view(w) for (p, _), w in self.workloads.items() if p == plural]
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    # -- every other object (see RESOURCES) --------------------------------------------------
    def object_view(self, gv: str, plural: str, obj: dict) -> dict:
        """The object with the status its controller would report."""
        view = apimachinery.with_defaults(plural, copy.deepcopy(obj))
        gen = view["metadata"].get("generation", 1)
        if plural == "daemonsets":
            # Counted over the nodes that should run the pods (NodeShouldRunDaemonPod, as for the
            # credential DaemonSets): a node selector or an untolerated taint leaves a node out.
            template = ((view.get("spec") or {}).get("template") or {}).get("spec") or {}
            eligible = [m for m, node in self.nodes.items() if self.should_run(template, node)]
            n = len(eligible)
            ready = len([m for m in eligible if self.ready.get(m)])
            view["status"] = {
                "observedGeneration": gen,
                "desiredNumberScheduled": n,
                "currentNumberScheduled": n,
                "numberMisscheduled": 0,
                "numberReady": ready,
                "updatedNumberScheduled": n,
                "numberAvailable": ready,
            }
            if n - ready:
                view["status"]["numberUnavailable"] = n - ready
        elif plural == "deployments":
            ns, uid = view["metadata"].get("namespace", ""), view["metadata"]["uid"]
            sets = self.owned("replicasets", ns, uid)
            current_name = controllers.replica_set_for(obj)["metadata"]["name"]
            current = next((o for k, o in sets if k[3] == current_name), None)
            pods = {o["metadata"]["uid"]: self.pods_of(ns, o["metadata"]["uid"]) for _, o in sets}
            view["status"] = controllers.deployment_status(view, current, pods, self.ready)
        elif plural == "replicasets":
            ns, uid = view["metadata"].get("namespace", ""), view["metadata"]["uid"]
            view["status"] = controllers.replica_set_status(view, self.pods_of(ns, uid), self.ready)
        elif plural == "namespaces":
            view["status"] = {"phase": "Active"}
        elif plural == "customresourcedefinitions":
            spec = view.get("spec") or {}
            view["status"] = {
                "acceptedNames": spec.get("names") or {},
                "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
                "conditions": [
                    {
                        "type": t,
                        "status": "True",
                        "reason": r,
                        "lastTransitionTime": view["metadata"]["creationTimestamp"],
                    }
                    for t, r in (("NamesAccepted", "NoConflicts"), ("Established", "InitialNamesAccepted"))
                ],
            }
        return view

    def bind_claims(self) -> None:
        """The PV controller's static binding: a claim naming a volume is bound to it when the
        volume offers the claim's access modes and at least the requested storage."""
        volumes = {k[3]: v for k, v in self.objects.items() if k[1] == "persistentvolumes"}
        bound: set[str] = set()
        for key, pvc in self.objects.items():
            if key[1] != "persistentvolumeclaims":
                continue
            spec = pvc.get("spec", {})
            pv = volumes.get(spec.get("volumeName") or "")
            status = {"phase": "Pending"}
            if pv is not None:
                ref = pv["spec"].get("claimRef")
                # A volume pre-bound to this claim (no uid yet) or bound to it; one whose claimRef
                # holds another uid was bound to a claim of the same name that was deleted: it is
                # Released and this claim stays Pending (pv_controller.go syncUnboundClaim:
                # "volume already bound to a different claim").
                mine = not ref or (
                    (ref.get("namespace"), ref.get("name")) == (key[2], key[3])
                    and ref.get("uid") in (None, "", pvc["metadata"]["uid"])
                )
                want = scheduler.quantity(spec.get("resources", {}).get("requests", {}).get("storage", 0))
                have = scheduler.quantity(pv["spec"].get("capacity", {}).get("storage", 0))
                modes_ok = set(spec.get("accessModes", [])) <= set(pv["spec"].get("accessModes", []))
                if mine and modes_ok and have >= want:
                    pv["spec"]["claimRef"] = {
                        "kind": "PersistentVolumeClaim",
                        "apiVersion": "v1",
                        "namespace": key[2],
                        "name": key[3],
                        "uid": pvc["metadata"]["uid"],
                    }
                    status = {
                        "phase": "Bound",
                        "accessModes": pv["spec"].get("accessModes", []),
                        "capacity": pv["spec"].get("capacity", {}),
                    }
                    bound.add(pv["metadata"]["name"])
            pvc["status"] = status
        claims = {
            (k[2], k[3]): o["metadata"].get("uid")
            for k, o in self.objects.items()
            if k[1] == "persistentvolumeclaims"
        }
        for name, pv in volumes.items():
            ref = pv["spec"].get("claimRef") or {}
            if name in bound:
                pv["status"] = {"phase": "Bound"}
            elif ref.get("uid") and claims.get((ref.get("namespace"), ref.get("name"))) != ref["uid"]:
                # The PV controller (pkg/controller/volume/persistentvolume/pv_controller.go
                # syncVolume): the claim it was bound to is gone — Released, claimRef kept, until
                # the reclaim policy acts (Delete: the provisioner's DeleteVolume; Retain: the
                # admin, by deleting the volume or removing its claimRef).
                pv["status"] = {"phase": "Released"}
            else:
                # No claimRef, or pre-bound by name to a claim not made yet: kept, Available.
                pv["status"] = {"phase": "Available"}

    def put_object(
        self, key: tuple[str, str, str, str], obj: dict, old: dict | None, save: bool = True
    ) -> dict:
        """Store a created, patched or replaced object: metadata kept by the server, Secret
        stringData folded into data, a new generation when spec changed, nothing new when
        nothing changed."""
        obj = copy.deepcopy(obj)
        obj.pop("status", None)
        if key[1] == "secrets" and "stringData" in obj:
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        meta = obj.setdefault("metadata", {})
        if old is None:
            fresh = self.meta(key[3], key[2] or None)
            meta.update({k: fresh[k] for k in ("uid", "resourceVersion", "creationTimestamp")})
            meta["name"] = key[3]
            if key[2]:
                meta["namespace"] = key[2]
            if "spec" in obj:
                meta["generation"] = 1
            if key[1] == "persistentvolumeclaims" and obj.get("spec", {}).get("storageClassName") is None:
                # The DefaultStorageClass admission plugin (plugin/pkg/admission/storage/storageclass/
                # setdefault/admission.go): a claim that names no class gets the default one.
                classes = {k[3]: o for k, o in self.objects.items() if k[1] == "storageclasses"}
                default = cinder_csi.class_of({"spec": {}}, classes)
                if default is not None and not obj["spec"].get("volumeName"):
                    obj["spec"]["storageClassName"] = default["metadata"]["name"]
        else:
            # Set by the server only; a client's update cannot change them.
            for k in (
                "uid",
                "creationTimestamp",
                "resourceVersion",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            if "status" in old:
                obj["status"] = old["status"]
            if json.dumps(obj, sort_keys=True) == json.dumps(old, sort_keys=True):
                return old  # a no-op keeps the resourceVersion, as the API server does
            if json.dumps(obj.get("spec"), sort_keys=True) != json.dumps(old.get("spec"), sort_keys=True):
                meta["generation"] = meta.get("generation", 1) + 1
            self.touch(obj)
        self.objects[key] = obj
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # The update that takes the last finalizer off an object being deleted deletes it
            # (staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go).
            del self.objects[key]
            self.cascade(meta["uid"], key[2], orphan=False)
        self.bind_claims()
        if save:
            self.save()
        return obj
