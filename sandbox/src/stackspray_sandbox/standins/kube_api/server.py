#!/usr/bin/env python3
"""STAND-IN for the Kubernetes API server (tests and the sandbox only; no Kubernetes runs here).

Kubernetes cannot run on the sandbox's node hosts, so the Kubespray stand-in starts this small
HTTPS server on the first control-plane node, where the real API server would listen (:6443).
stackspray talks to it only through the official `kubernetes` Python client and the cluster's
kubeconfig, exactly as it talks to a real cluster. It implements only the REST calls stackspray
makes, each following the Kubernetes API reference (https://kubernetes.io/docs/reference/
kubernetes-api/) as cited below, and keeps its objects in etcd (persist.py) so a restart keeps them.

- Nodes (core/v1 Node): get, list, patch (JSON, merge or strategic merge; cordon =
  `spec.unschedulable`). One Node per inventory host, named like the host, labelled with the
  inventory's `node_labels` (as roles/kubernetes/node-label does on every run). Its `Ready`
  condition follows the node host: "True" while the host answers on SSH (port 22), "Unknown"
  (reason NodeStatusUnknown, what the node lifecycle controller sets when the kubelet stops
  posting status) when it does not, e.g. shelved.
- Pods (core/v1 Pod): create (bound by the scheduler, scheduler.py, when no `spec.nodeName` is
  given), get, list and watch (apimachinery.py: field and label selectors, Tables), delete.
  Each node gets DaemonSet-owned pods (kube-proxy, calico-node, whose DaemonSets exist) and
  control-plane nodes a mirror pod, as a Kubespray cluster has.
- Eviction (policy/v1 Eviction, POST pods/{name}/eviction): 201 and the pod is deleted, or 429
  "Cannot evict pod as it would violate the pod's disruption budget." with a DisruptionBudget
  cause when a PodDisruptionBudget allows no disruption; 404 for a missing pod; 500 when
  several budgets select the pod ("API-initiated eviction" in the Kubernetes docs).
- PodDisruptionBudgets (policy/v1): create, get, list, delete; `minAvailable` or
  `maxUnavailable` (integer or percentage), `selector.matchLabels`.
- Secrets (core/v1 Secret): get and patch (every patch type). `kube-system/external-openstack-cloud-config`
  and `kube-system/cloud-config` (key `cloud.conf`) hold the cloud config the Kubespray stand-in
  passes in, as Kubespray's manifests would; a restart with a different one re-applies it.
- The credential's three workloads (apps/v1): DaemonSet `openstack-cloud-controller-manager`,
  Deployment `csi-cinder-controllerplugin`, DaemonSet `csi-cinder-nodeplugin`, in kube-system:
  get and merge-patch. A change of `spec.template` (what `kubectl rollout restart` makes) is a new
  generation. The two DaemonSets are placed as Kubespray v2.31.0 places them (the node plugin
  tolerates every taint, the cloud controller runs on control-plane nodes) and rolled out as the
  DaemonSet controller does (pkg/controller/daemon/update.go, rollingUpdate): one pod per node
  that should run it — a NotReady (shelved) node too, since its `node.kubernetes.io/unreachable`
  taints are tolerated — Ready about a second after it is created on a Ready node and never on a
  NotReady one; old pods replaced within `maxUnavailable` (default 1), so while a node is
  NotReady the rollout of the other nodes waits unless maxUnavailable allows for it, and
  `kubectl rollout status` never returns. The Deployment's rollout completes after about a
  second. Stand-in-only control, for fault tests: the annotation
  `stand-in.stackspray.io/fail-next-rollouts: "N"` on a workload makes its next N rollouts
  never complete.
- Nodes carry the taints the node lifecycle controller adds: `node.kubernetes.io/unreachable`
  (NoSchedule and NoExecute) while NotReady, `node.kubernetes.io/unschedulable` while cordoned.
- Discovery (`/version` v1.35.4, `/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`:
  APIVersions, APIGroupList, APIResourceList with short names and categories) for the resources
  in RESOURCES, as the dynamic client of
  Ansible's `kubernetes.core.k8s` module reads them (playbooks/manila-share.yml).
- Any other object of those resources (Namespaces, ServiceAccounts, ConfigMaps, Secrets, RBAC,
  CSIDriver, DaemonSets, Deployments, PersistentVolumes and Claims): create (409 AlreadyExists),
  get, list, patch (merge; a strategic merge patch of a whole object has the same result),
  replace, delete; a namespaced object needs its Namespace (404 otherwise, as the API server's
  NamespaceLifecycle admission says). `stringData` of a Secret is folded into `data`. A patch
  that changes nothing keeps the resourceVersion; a change of `spec` is a new generation.
  Computed status, what the controllers would report: a DaemonSet is scheduled on every Node
  and ready on the Ready ones; a Deployment has a ReplicaSet that keeps its pods (controllers.py:
  the Deployment, ReplicaSet and garbage-collector controllers, run once a second with the
  scheduler), its status counted from them; a claim naming a
  PersistentVolume (`spec.volumeName`) is Bound to it when the volume exists, offers the claim's
  access modes and at least its requested size (the PV controller's static binding), else
  Pending; a volume is Bound (with `claimRef`) or Available.

Run: server.py --config standin.json (nodes, listen address, TLS cert/key, bearer token, state).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import threading
import time
from http.server import ThreadingHTTPServer

try:  # modules of the stackspray_sandbox package (tests, docs) ...
    from .handler import Handler
    from .store import ApiError, Store, check_crd, resource_info
except ImportError:  # ... or scripts beside their copies on the node
    from handler import Handler  # type: ignore[no-redef]
    from store import ApiError, Store, check_crd, resource_info  # type: ignore[no-redef]


__all__ = ["ApiError", "Handler", "Store", "check_crd", "main", "resource_info"]


def run_as_static_pod(manifest: str) -> None:
    """Serve only while kube-apiserver's static pod manifest exists, as the kubelet runs it: wait
    for it, then exit when it goes (systemd starts the process again, to wait)."""
    while not os.path.exists(manifest):
        time.sleep(0.5)

    def exit_when_gone() -> None:
        while os.path.exists(manifest):
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=exit_when_gone, daemon=True).start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    config = json.load(open(ap.parse_args().config))  # noqa: SIM115
    if config.get("manifest"):
        run_as_static_pod(config["manifest"])
    store = Store(config)
    threading.Thread(target=store.probe_nodes, daemon=True).start()
    threading.Thread(target=store.run_scheduler, daemon=True).start()
    threading.Thread(target=store.run_daemonset_controller, daemon=True).start()
    threading.Thread(target=store.run_cinder_csi, daemon=True).start()
    threading.Thread(target=store.run_cloud_controller, daemon=True).start()
    Handler.store = store
    server = ThreadingHTTPServer((config.get("listen", "0.0.0.0"), int(config.get("port", 6443))), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(config["cert"], config["key"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
