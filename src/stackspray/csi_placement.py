"""Where Kubespray's Cinder CSI controller may run: on the control plane too.

Kubespray v2.31.0's `csi-cinder-controllerplugin` Deployment is the one add-on it deploys with
no control-plane toleration (roles/kubernetes-apps/csi_driver/cinder/templates/
cinder-csi-controllerplugin.yml.j2 has none; coredns, dns-autoscaler, metrics-server and
calico-kube-controllers all tolerate `node-role.kubernetes.io/control-plane:NoSchedule`), and it
has no variable for one (`cinder_tolerations` goes to the node plugin only). So its pod always
runs on a worker, and the autoscaler can never shelve the last one: there is nowhere for the
controller to go. stackspray adds that one toleration after Kubespray has run; Kubespray's own
re-apply (`kubectl apply`, a three-way merge) keeps it, as it keeps any field it did not set.
"""

from __future__ import annotations

from .kube import Kube, KubeWorkloads

DEPLOYMENT = "csi-cinder-controllerplugin"
CONTROL_PLANE_TOLERATION = {
    "key": "node-role.kubernetes.io/control-plane",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def allow_on_control_plane(kubeconfig: str, say) -> bool:
    """Add the control-plane toleration to the Cinder CSI controller; True when it was added."""
    added = KubeWorkloads(Kube(kubeconfig)).ensure_toleration(
        "deployments", DEPLOYMENT, CONTROL_PLANE_TOLERATION
    )
    if added:
        say(f"{DEPLOYMENT}: may run on the control plane too (so the last worker can be shelved)")
    return added
