"""The API stand-in's Cinder CSI (standins/kube_api/cinder_csi.py): what it plans from the
objects, and one pass of the store's loop against an in-memory Cinder/Nova that answers as they
do (the real ones judge it in tests/integration/test_volumes.py)."""

from __future__ import annotations

import copy

import kube_standin
import pytest
from stackspray_sandbox.standins.kube_api import cinder_csi, scheduler

M = {"vcpus": 2, "ram_mb": 6144}
CLASSES = [{"name": "cinder-csi", "is_default": True, "parameters": {"availability": "nova"}}]


class Cloud:
    """Cinder and Nova as the driver meets them: volumes by name, attachments by server, a volume
    in use cannot be deleted."""

    def __init__(self) -> None:
        self.volumes: dict[str, dict] = {}
        self.calls: list[tuple] = []

    def create_volume(self, name, size, metadata, zone):
        self.calls.append(("create", name, size, zone))
        vid = f"vol-{len(self.volumes) + 1}"
        self.volumes[vid] = {"id": vid, "name": name, "size": size, "metadata": metadata, "attachments": []}
        return self.volumes[vid]

    def wait_status(self, vid, want, timeout=120.0):
        return self.volumes[vid]

    def volume(self, vid):
        return self.volumes.get(vid)

    def server_id(self, node):
        return f"server-of-{node}"

    def attach(self, server, vid):
        self.calls.append(("attach", server, vid))
        self.volumes[vid]["attachments"].append({"server_id": server})

    def detach(self, server, vid):
        self.calls.append(("detach", server, vid))
        self.volumes[vid]["attachments"] = [
            a for a in self.volumes[vid]["attachments"] if a["server_id"] != server
        ]

    def delete_volume(self, vid):
        assert not self.volumes[vid]["attachments"], "Cinder refuses to delete a volume in use"
        self.calls.append(("delete", vid))
        del self.volumes[vid]


@pytest.fixture
def api(tmp_path):
    nodes = [
        {"name": "c-control-plane-1", "ip": "127.0.0.1", "control_plane": True, "labels": {}, "machine": M},
        {"name": "c-workers-1", "ip": "127.0.0.2", "labels": {}, "machine": M},
    ]
    apps = {"storage_classes": CLASSES, "expand_persistent_volumes": True}
    standin = kube_standin.start(tmp_path / "api", nodes, {"kubespray_apps": apps, "cluster_name": "lab"})
    standin.store.ready.update(dict.fromkeys((n["name"] for n in nodes), True))
    yield standin
    kube_standin.stop(standin)


def _claim(store, name="data", size="1500Mi"):
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }
    with store.lock:
        return store.put_object(("v1", "persistentvolumeclaims", "default", name), body, None)


def _pod(store, name="writer", claim="data"):
    body = {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "containers": [{"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }
    with store.lock:
        return store.store_pod("default", body)


def _pass(store, cloud):
    with store.lock:
        work = cinder_csi.plan(store.objects, list(store.pods.values()), scheduler.quantity)
    store.csi_pass(cloud, *work)


def test_kubesprays_class_is_the_default_and_a_claim_waits_for_its_first_pod(api):
    store = api.store
    sc = store.objects[("storage.k8s.io/v1", "storageclasses", "", "cinder-csi")]
    assert (
        sc["provisioner"] == "cinder.csi.openstack.org" and sc["volumeBindingMode"] == "WaitForFirstConsumer"
    )
    assert sc["metadata"]["annotations"][cinder_csi.DEFAULT_CLASS] == "true" and sc["allowVolumeExpansion"]
    pvc = _claim(store)
    assert pvc["spec"]["storageClassName"] == "cinder-csi", "the DefaultStorageClass admission"
    provision, wanted, delete, _ = cinder_csi.plan(store.objects, [], scheduler.quantity)
    assert (provision, wanted, delete) == ([], set(), []), "WaitForFirstConsumer: nothing before a pod"


def test_a_pod_without_its_claim_is_unschedulable_with_the_schedulers_message(api):
    store = api.store
    pod = _pod(store, claim="missing")
    with store.lock:
        store.schedule_pending()
    assert not pod["spec"].get("nodeName")
    assert pod["scheduling"]["message"] == 'persistentvolumeclaim "missing" not found'


def test_provision_attach_start_detach_and_delete_as_the_controllers_do(api):
    store, cloud = api.store, Cloud()
    pvc = _claim(store)
    pod = _pod(store)
    with store.lock:
        store.schedule_pending()
    node = pod["spec"]["nodeName"]
    assert pvc["metadata"]["annotations"][cinder_csi.SELECTED_NODE] == node
    assert pod["status"]["phase"] == "Pending", "the kubelet waits for the volume"

    _pass(store, cloud)
    (vol,) = cloud.volumes.values()
    pv_name = f"pvc-{pvc['metadata']['uid']}"
    assert (vol["name"], vol["size"]) == (pv_name, 2), "named after the PV, rounded up to whole GiB"
    assert vol["metadata"] == {
        "cinder.csi.openstack.org/cluster": "lab",
        "csi.storage.k8s.io/pvc/name": "data",
        "csi.storage.k8s.io/pvc/namespace": "default",
        "csi.storage.k8s.io/pv/name": pv_name,
    }
    assert ("create", pv_name, 2, "nova") in cloud.calls, "the class's availability zone"
    pv = store.objects[("v1", "persistentvolumes", "", pv_name)]
    assert pv["spec"]["csi"]["volumeHandle"] == vol["id"] and pv["status"]["phase"] == "Bound"
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"] == pv_name

    _pass(store, cloud)  # the attach-detach controller, then the kubelet
    assert vol["attachments"] == [{"server_id": f"server-of-{node}"}]
    assert pod["status"]["phase"] == "Running"

    with store.lock:
        del store.pods[("default", "writer")]
    _pass(store, cloud)
    assert vol["attachments"] == [], "no pod on the node uses it: detached"
    assert cloud.volumes, "the claim still holds it"

    with store.lock:  # what the API's delete does
        del store.objects[("v1", "persistentvolumeclaims", "default", "data")]
        store.bind_claims()
    assert pv["status"]["phase"] == "Released" and pv["spec"]["claimRef"]["name"] == "data"
    _pass(store, cloud)
    assert not cloud.volumes and ("v1", "persistentvolumes", "", pv_name) not in store.objects, (
        "reclaimPolicy Delete: the released volume is deleted"
    )


def test_a_retained_volume_outlives_its_claim_and_a_static_volume_is_not_ours():
    objects = {
        ("v1", "persistentvolumes", "", "kept"): {
            "metadata": {"name": "kept"},
            "spec": {
                "csi": {"driver": cinder_csi.DRIVER, "volumeHandle": "v1"},
                "persistentVolumeReclaimPolicy": "Retain",
                "claimRef": {"namespace": "default", "name": "gone"},
            },
        },
        ("v1", "persistentvolumes", "", "share"): {
            "metadata": {"name": "share"},
            "spec": {
                "csi": {"driver": "cephfs.csi.ceph.com", "volumeHandle": "s1"},
                "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"namespace": "default", "name": "gone"},
            },
        },
    }
    assert cinder_csi.plan(objects, [], scheduler.quantity)[2] == []
    pod = {"metadata": {"namespace": "default", "name": "p"}, "spec": {"volumes": []}}
    assert not cinder_csi.uses_cinder(pod, objects)


def test_a_static_volume_whose_claim_is_deleted_is_released_and_a_new_claim_waits(api):
    """pv_controller.go: a volume bound to a claim that is deleted turns Released (claimRef kept,
    Retain); a new claim of the same name naming it stays Pending until an admin removes the
    volume's claimRef — then it binds. A volume pre-bound by name (no uid) stays Available."""
    store = api.store
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "share-pv"},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "capacity": {"storage": "10Gi"},
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "csi": {"driver": "cephfs.csi.ceph.com", "volumeHandle": "share-pv"},
        },
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "share", "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "10Gi"}},
            "storageClassName": "",
            "volumeName": "share-pv",
        },
    }
    pv_key, claim_key = (
        ("v1", "persistentvolumes", "", "share-pv"),
        ("v1", "persistentvolumeclaims", "default", "share"),
    )
    with store.lock:
        store.put_object(pv_key, pv, None)
        store.put_object(claim_key, claim, None)
        assert store.objects[pv_key]["status"]["phase"] == "Bound"
        del store.objects[claim_key]
        store.bind_claims()
        assert store.objects[pv_key]["status"]["phase"] == "Released"
        assert store.objects[pv_key]["spec"]["claimRef"]["name"] == "share", "claimRef kept"
        store.put_object(claim_key, claim, None)
        assert store.objects[claim_key]["status"]["phase"] == "Pending", "bound to a deleted claim's uid"
        freed = copy.deepcopy(store.objects[pv_key])
        del freed["spec"]["claimRef"]
        store.put_object(pv_key, freed, store.objects[pv_key])
        assert store.objects[claim_key]["status"]["phase"] == "Bound"
        prebound = copy.deepcopy(pv)
        prebound["metadata"]["name"] = "later"
        prebound["spec"]["claimRef"] = {"namespace": "default", "name": "not-yet"}
        store.put_object(("v1", "persistentvolumes", "", "later"), prebound, None)
        later = store.objects[("v1", "persistentvolumes", "", "later")]
        assert later["status"]["phase"] == "Available" and later["spec"]["claimRef"]["name"] == "not-yet"
