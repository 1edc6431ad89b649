"""The Cinder CSI controller may run on the control plane (csi_placement.py), on the API stand-in
holding Kubespray's csi-cinder-controllerplugin Deployment as Kubespray deploys it."""

from __future__ import annotations

import kube_standin

from stackspray import csi_placement
from stackspray.kube import Kube, KubeWorkloads


def test_the_controller_gets_the_control_plane_toleration_once_and_keeps_the_others(tmp_path):
    standin = kube_standin.start(tmp_path / "api", [], {"cloud_conf": '[Global]\nregion="r"\n'})
    try:
        workloads = KubeWorkloads(Kube(standin.kubeconfig))
        before = workloads.get("deployments", csi_placement.DEPLOYMENT)
        assert not before["spec"]["template"]["spec"].get("tolerations"), "Kubespray's has none"
        said: list[str] = []
        assert csi_placement.allow_on_control_plane(str(standin.kubeconfig), said.append) is True
        assert csi_placement.allow_on_control_plane(str(standin.kubeconfig), said.append) is False
        assert len(said) == 1 and "control plane" in said[0]
        after = workloads.get("deployments", csi_placement.DEPLOYMENT)
        assert after["spec"]["template"]["spec"]["tolerations"] == [csi_placement.CONTROL_PLANE_TOLERATION]
        # A toleration someone added is kept beside ours.
        other = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
        assert workloads.ensure_toleration("deployments", csi_placement.DEPLOYMENT, other)
        again = workloads.get("deployments", csi_placement.DEPLOYMENT)["spec"]["template"]["spec"][
            "tolerations"
        ]
        assert again == [csi_placement.CONTROL_PLANE_TOLERATION, other]
        # Kubespray re-applying its manifests (cluster.yml again) keeps what it did not set.
        standin.store.apply_cloud_config()
        kept = workloads.get("deployments", csi_placement.DEPLOYMENT)["spec"]["template"]["spec"][
            "tolerations"
        ]
        assert kept == again
    finally:
        kube_standin.stop(standin)
