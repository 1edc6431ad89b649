"""STAND-IN: Cinder CSI's controller as Kubespray v2.31.0 runs it, with the parts of Kubernetes
that drive it — against the cloud's real Cinder and Nova, through the cluster's credential.

On a real cluster, a claim on a Cinder class goes through: the scheduler (VolumeBinding: a
WaitForFirstConsumer claim gets `volume.kubernetes.io/selected-node` once its first pod is
placed), the external-provisioner sidecar (a PersistentVolume `pvc-<claim uid>`,
--extra-create-metadata) calling the driver's CreateVolume (cloud-provider-openstack
pkg/csi/cinder/controllerserver.go: a volume named after the PV, sized up to whole GiB, metadata
`cinder.csi.openstack.org/cluster` = `--cluster`, Kubespray's `cluster_name`), the attach-detach
controller and external-attacher calling ControllerPublishVolume (Nova's os-volume_attachments on
the node's instance, waited for until the volume is in-use) and ControllerUnpublishVolume when no
pod on that node uses it any more, the kubelet starting the pod once its volumes are attached, and
the PV controller deleting a released volume whose reclaim policy is Delete (DeleteVolume).

The stand-in does all of that in one loop (`Store.run_cinder_csi`): `plan` (pure, here) says what
to provision, attach, detach and delete from the objects; `OpenStack` makes the calls with the
`kube-system/cloud-config` Secret's credential, as the driver reads it (a rotated credential is
used from the next pass). Differences from the real thing, named: the node's instance is found by
its name through Nova (the cloud controller manager's lookup, pkg/openstack/instances.go), not by
the node plugin's metadata-service read; a pod waits `Pending` (the kubelet's ContainerCreating)
until its volumes are attached, where Kubernetes also waits for the mount; no VolumeAttachment
objects are served; a claim's deletion is not held by the pvc-protection finalizer while a pod
uses it.
"""

from __future__ import annotations

import configparser
import json
import math
import time
import urllib.error
import urllib.request

DRIVER = "cinder.csi.openstack.org"
CLUSTER_META = "cinder.csi.openstack.org/cluster"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
GIB = 1024**3


class CSIError(Exception):
    """A call the driver made failed; the message is what the cloud answered."""


def claims_of(pod: dict) -> list[str]:
    return [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("spec", {}).get("volumes") or []
        if v.get("persistentVolumeClaim", {}).get("claimName")
    ]


def class_of(pvc: dict, classes: dict[str, dict]) -> dict | None:
    """The claim's StorageClass: its storageClassName, else the default class (the
    DefaultStorageClass admission plugin fills it in at creation)."""
    name = pvc.get("spec", {}).get("storageClassName")
    if name is None:
        name = next(
            (
                n
                for n, c in classes.items()
                if c["metadata"].get("annotations", {}).get(DEFAULT_CLASS) == "true"
            ),
            None,
        )
    return classes.get(name or "")


def size_gb(pvc: dict, quantity) -> int:
    """util.RoundUpSize(requiredBytes, GiB), at least 1 GiB (CreateVolume's default)."""
    want = quantity(pvc.get("spec", {}).get("resources", {}).get("requests", {}).get("storage", 0))
    return max(1, math.ceil(want / GIB))


def plan(
    objects: dict, pods: list[dict], quantity
) -> tuple[list[dict], set[tuple[str, str]], list[dict], dict[tuple[str, str], list[str]]]:
    """What the controllers would do now (pure): claims to provision, the (volume id, node)
    attachments pods need, released volumes to delete, and each pod's (namespace, name) -> the
    volume ids it waits for."""
    classes = {k[3]: o for k, o in objects.items() if k[1] == "storageclasses"}
    pvs = {k[3]: o for k, o in objects.items() if k[1] == "persistentvolumes"}
    pvcs = {(k[2], k[3]): o for k, o in objects.items() if k[1] == "persistentvolumeclaims"}
    provision = []
    for (ns, name), pvc in sorted(pvcs.items()):
        sc = class_of(pvc, classes)
        if sc is None or sc.get("provisioner") != DRIVER or pvc["spec"].get("volumeName"):
            continue
        waits = sc.get("volumeBindingMode", "Immediate") == "WaitForFirstConsumer"
        node = pvc["metadata"].get("annotations", {}).get(SELECTED_NODE)
        if waits and not node:
            continue
        provision.append(
            {
                "namespace": ns,
                "claim": name,
                "pv": f"pvc-{pvc['metadata']['uid']}",
                "size_gb": size_gb(pvc, quantity),
                "class": sc["metadata"]["name"],
                "parameters": dict(sc.get("parameters") or {}),
                "reclaim": sc.get("reclaimPolicy", "Delete"),
                "access_modes": pvc["spec"].get("accessModes") or ["ReadWriteOnce"],
            }
        )
    wanted: set[tuple[str, str]] = set()
    waiting: dict[tuple[str, str], list[str]] = {}
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        if not node or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        ids = []
        for claim in claims_of(pod):
            pvc = pvcs.get((pod["metadata"]["namespace"], claim))
            pv = pvs.get((pvc or {}).get("spec", {}).get("volumeName") or "")
            csi = (pv or {}).get("spec", {}).get("csi") or {}
            if csi.get("driver") == DRIVER:
                wanted.add((csi["volumeHandle"], node))
                ids.append(csi["volumeHandle"])
        if ids:
            waiting[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = ids
    delete = []
    for name, pv in sorted(pvs.items()):
        csi = pv["spec"].get("csi") or {}
        ref = pv["spec"].get("claimRef") or {}
        if csi.get("driver") != DRIVER or pv["spec"].get("persistentVolumeReclaimPolicy") != "Delete":
            continue
        if ref and (ref.get("namespace"), ref.get("name")) not in pvcs:
            delete.append({"pv": name, "volume": csi["volumeHandle"]})
    return provision, wanted, delete, waiting


def pending_claims(pod: dict, objects: dict) -> tuple[list[str], list[str]]:
    """For the scheduler: the pod's claims that do not exist, and its unbound claims of a
    WaitForFirstConsumer class (which get the chosen node as `selected-node`)."""
    classes = {k[3]: o for k, o in objects.items() if k[1] == "storageclasses"}
    ns = pod["metadata"]["namespace"]
    missing, deferred = [], []
    for claim in claims_of(pod):
        pvc = objects.get(("v1", "persistentvolumeclaims", ns, claim))
        if pvc is None:
            missing.append(claim)
            continue
        sc = class_of(pvc, classes)
        if (
            sc is not None
            and not pvc["spec"].get("volumeName")
            and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        ):
            deferred.append(claim)
    return missing, deferred


def uses_cinder(pod: dict, objects: dict) -> bool:
    """The pod has a claim on a Cinder class or bound to a Cinder CSI volume (it starts once
    they are attached)."""
    classes = {k[3]: o for k, o in objects.items() if k[1] == "storageclasses"}
    ns = pod["metadata"]["namespace"]
    for claim in claims_of(pod):
        pvc = objects.get(("v1", "persistentvolumeclaims", ns, claim))
        if pvc is None:
            continue
        pv = objects.get(("v1", "persistentvolumes", "", pvc["spec"].get("volumeName") or ""))
        if pv is not None:
            if (pv["spec"].get("csi") or {}).get("driver") == DRIVER:
                return True
        elif (class_of(pvc, classes) or {}).get("provisioner") == DRIVER:
            return True
    return False


def persistent_volume(item: dict, volume: dict, claim_uid: str) -> dict:
    """The PV the external-provisioner makes for a provisioned volume (controller.go
    ProvisionExt: name, capacity, the driver's handle and fsType, the class's reclaim policy)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": item["pv"], "annotations": {PROVISIONED_BY: DRIVER}},
        "spec": {
            "capacity": {"storage": f"{volume['size']}Gi"},
            "accessModes": item["access_modes"],
            "persistentVolumeReclaimPolicy": item["reclaim"],
            "storageClassName": item["class"],
            "volumeMode": "Filesystem",
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "apiVersion": "v1",
                "namespace": item["namespace"],
                "name": item["claim"],
                "uid": claim_uid,
            },
            "csi": {"driver": DRIVER, "volumeHandle": volume["id"], "fsType": "ext4"},
        },
    }


class OpenStack:
    """The driver's calls (gophercloud in pkg/csi/cinder/openstack/), over HTTP with the cluster's
    application credential from cloud.conf's [Global] section."""

    def __init__(self, cloud_conf: str, timeout: float = 30.0) -> None:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(cloud_conf)
        g = parser["Global"]
        self.auth_url = g.get("auth-url", "").strip('"').rstrip("/")
        self.cred_id = g.get("application-credential-id", "").strip('"')
        self.cred_secret = g.get("application-credential-secret", "").strip('"')
        self.region = g.get("region", "").strip('"')
        self.timeout = timeout
        self.conf = cloud_conf
        self.token: str | None = None
        self.endpoints: dict[str, str] = {}
        self.servers: dict[str, str] = {}

    def _http(self, method: str, url: str, body: dict | None = None, token: bool = True):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        if token:
            req.add_header("X-Auth-Token", self.token or "")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return resp.status, dict(resp.headers), json.loads(raw) if raw else {}
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                doc = json.loads(raw) if raw else {}
            except ValueError:
                doc = {"message": raw.decode(errors="replace")}
            return exc.code, dict(exc.headers), doc

    def _login(self) -> None:
        body = {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"id": self.cred_id, "secret": self.cred_secret},
                }
            }
        }
        status, headers, doc = self._http("POST", f"{self.auth_url}/auth/tokens", body, token=False)
        if status != 201:
            raise CSIError(f"authentication failed ({status}): {_message(doc)}")
        self.token = headers.get("X-Subject-Token") or headers.get("x-subject-token")
        for svc in doc["token"].get("catalog", []):
            for ep in svc.get("endpoints", []):
                if ep.get("interface") == "public" and (
                    not self.region or ep.get("region_id") == self.region
                ):
                    self.endpoints.setdefault(svc["type"], ep["url"].rstrip("/"))

    def call(self, service: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        if self.token is None:
            self._login()
        base = self.endpoints.get(service) or (
            self.endpoints.get("volumev3") if service == "block-storage" else None
        )
        if base is None:
            raise CSIError(f"the catalog has no public {service} endpoint")
        status, _, doc = self._http(method, base + path, body)
        if status == 401:
            self.token = None
            self._login()
            status, _, doc = self._http(method, base + path, body)
        return status, doc

    def _ok(self, got: tuple[int, dict], what: str) -> dict:
        status, doc = got
        if status >= 400:
            raise CSIError(f"{what} failed ({status}): {_message(doc)}")
        return doc

    def volumes_named(self, name: str) -> list[dict]:
        doc = self._ok(self.call("block-storage", "GET", f"/volumes/detail?name={name}"), "list volumes")
        return [v for v in doc.get("volumes", []) if v.get("name") == name]

    def volume(self, vid: str) -> dict | None:
        status, doc = self.call("block-storage", "GET", f"/volumes/{vid}")
        if status == 404:
            return None
        return self._ok((status, doc), f"get volume {vid}")["volume"]

    def create_volume(self, name: str, size: int, metadata: dict, zone: str | None) -> dict:
        """CreateVolume: the one named so if it exists (same size, else AlreadyExists), else new."""
        found = self.volumes_named(name)
        if len(found) > 1:
            raise CSIError("Multiple volumes reported by Cinder with same name")
        if found:
            if found[0]["size"] != size:
                raise CSIError("Volume Already exists with same name and different capacity")
            return found[0]
        body: dict = {"name": name, "size": size, "metadata": metadata}
        if zone:
            body["availability_zone"] = zone
        return self._ok(self.call("block-storage", "POST", "/volumes", {"volume": body}), "create volume")[
            "volume"
        ]

    def delete_volume(self, vid: str) -> None:
        status, doc = self.call("block-storage", "DELETE", f"/volumes/{vid}")
        if status not in (202, 204, 404):
            raise CSIError(f"delete volume {vid} failed ({status}): {_message(doc)}")

    def server_id(self, node: str) -> str:
        if node not in self.servers:
            doc = self._ok(self.call("compute", "GET", f"/servers?name=^{node}$"), "find the node's server")
            found = [s["id"] for s in doc.get("servers", []) if s.get("name") == node]
            if len(found) != 1:
                raise CSIError(f"{len(found)} servers are named {node}")
            self.servers[node] = found[0]
        return self.servers[node]

    def attach(self, server: str, vid: str) -> None:
        body = {"volumeAttachment": {"volumeId": vid}}
        self._ok(
            self.call("compute", "POST", f"/servers/{server}/os-volume_attachments", body), "attach volume"
        )

    def detach(self, server: str, vid: str) -> None:
        status, doc = self.call("compute", "DELETE", f"/servers/{server}/os-volume_attachments/{vid}")
        if status not in (202, 204, 404):
            raise CSIError(f"detach volume {vid} failed ({status}): {_message(doc)}")

    def wait_status(self, vid: str, want: str, timeout: float = 120.0) -> dict:
        """WaitDiskAttached / WaitDiskDetached / the create's wait: poll with backoff."""
        deadline, delay = time.monotonic() + timeout, 0.5
        while True:
            vol = self.volume(vid)
            if vol is None:
                raise CSIError(f"volume {vid} is gone")
            if vol["status"] == want:
                return vol
            if vol["status"].startswith("error"):
                raise CSIError(f"volume {vid} is {vol['status']}")
            if time.monotonic() > deadline:
                raise CSIError(f"volume {vid} not {want} after {timeout:.0f}s (it is {vol['status']})")
            time.sleep(delay)
            delay = min(delay * 1.5, 3.0)


def _message(doc: dict) -> str:
    for value in doc.values():
        if isinstance(value, dict) and "message" in value:
            return str(value["message"])
    return str(doc.get("message") or doc)[:300]
