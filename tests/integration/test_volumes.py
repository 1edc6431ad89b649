"""What Kubernetes makes in the cloud, as a user meets it (docs/cloud-resources.md): a claim on the
cluster's default class becomes a real Cinder volume (through the API stand-in's Cinder CSI, with
the cluster's credential), attached to the pod's node; `status` counts it; `destroy-cluster`
lists it, keeps it detached, and deletes it only with `--delete-volumes`. Commands run as the
docs say: kubectl with the kubeconfig create-cluster wrote, `invoke` from another folder with
OS_CLOUD exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from helpers import ROOT, built_cluster, eventually, kube_tools

MANIFEST = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {claim}, namespace: default}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1500Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: {pod}, namespace: default}}
spec:
  containers:
  - name: app
    image: busybox
    command: [sleep, infinity]
    resources: {{requests: {{cpu: 100m}}}}
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim}}}
"""


def test_a_claim_is_a_real_cinder_volume_on_its_pods_node_kept_by_destroy_until_asked(
    sandbox, ssh_key, tmp_path, conn
):
    with built_cluster(sandbox, ssh_key, tmp_path, "vol", "10.73.0.0/24", workers=1) as (
        name,
        inv,
        result,
        _,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "KUBE"))}
        env.update(
            OS_CLIENT_CONFIG_FILE=os.environ["OS_CLIENT_CONFIG_FILE"],
            OS_CLOUD="sandbox",
            STACKSPRAY_INVENTORIES=str(inv),
            KUBECONFIG=result.kubeconfig,
        )
        kubectl = str(kube_tools()["kubectl"])

        def k(*args: str, stdin: str | None = None) -> str:
            out = subprocess.run(
                [kubectl, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
            )
            assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stdout}{out.stderr}"
            return out.stdout

        def invoke(*args: str) -> dict:
            out = subprocess.run(
                [sys.executable, "-m", "invoke", "-r", str(ROOT), *args, "--json"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert out.returncode == 0, out.stdout + out.stderr
            return json.loads(out.stdout)

        def ours():
            return [
                v
                for v in conn.block_storage.volumes()
                if (v.metadata or {}).get("cinder.csi.openstack.org/cluster") == name
            ]

        try:
            k("apply", "-f", "-", stdin=MANIFEST.format(claim="data", pod="writer"))
            phase = eventually(
                lambda: k("get", "pod", "writer", "-o", "jsonpath={.status.phase}") == "Running", 120
            )
            assert phase, k("describe", "pod", "writer") + k("get", "events", "-A")
            pv = k("get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}")
            uid = k("get", "pvc", "data", "-o", "jsonpath={.metadata.uid}")
            assert pv == f"pvc-{uid}", "the external-provisioner names the PV after the claim's uid"
            assert k("get", "pvc", "data", "-o", "jsonpath={.status.phase}") == "Bound"

            (volume,) = ours()
            assert volume.name == pv and volume.size == 2, (
                "named after the PV, 1500Mi rounded up to whole GiB"
            )
            assert volume.metadata["csi.storage.k8s.io/pvc/name"] == "data"
            assert volume.metadata["csi.storage.k8s.io/pvc/namespace"] == "default"
            node = k("get", "pod", "writer", "-o", "jsonpath={.spec.nodeName}")
            server = conn.compute.find_server(node)
            assert volume.status == "in-use" and [a["server_id"] for a in volume.attachments] == [server.id]
            handle = k("get", "pv", pv, "-o", "jsonpath={.spec.csi.volumeHandle}")
            assert handle == volume.id

            status = invoke("status", "--cluster", name)["volumes"]
            assert (status["count"], status["gb"], status["in_use"]) == (1, 2, 1), status
            assert status["items"][0]["claim"] == "default/data"

            # The pod goes: detached; the claim goes: deleted (the class's reclaim policy).
            k("delete", "pod", "writer", "--wait=false")
            assert eventually(lambda: conn.block_storage.get_volume(volume.id).status == "available", 90)
            k("delete", "pvc", "data", "--wait=false")
            assert eventually(lambda: not ours(), 90), "a released volume is deleted (reclaimPolicy Delete)"
            assert eventually(lambda: pv not in k("get", "pv", "-o", "name"), 30)

            # Another claim in use when the cluster is destroyed: listed, kept, detached.
            k("apply", "-f", "-", stdin=MANIFEST.format(claim="home", pod="hub"))
            assert eventually(
                lambda: k("get", "pod", "hub", "-o", "jsonpath={.status.phase}") == "Running", 120
            )
            (home,) = ours()
            dry = invoke("destroy-cluster", "--cluster", name, "--dry-run")
            (kept,) = [a for a in dry["actions"] if a["resource"] == "volume"]
            assert kept["kind"] == "noop" and kept["detail"]["id"] == home.id
            assert "claim default/home" in kept["reason"] and "--delete-volumes" in kept["reason"]
            gone = invoke("destroy-cluster", "--cluster", name, "--yes")
            assert any(home.id in line for line in gone["left"]), gone["left"]
            left = conn.block_storage.get_volume(home.id)
            assert left.status == "available" and left.attachments == [], "kept, detached"
            assert not conn.compute.find_server(node), "the rest is gone"
            deleted = invoke("destroy-cluster", "--cluster", name, "--yes", "--delete-volumes")
            assert deleted["deleted"] == {"volume": 1}
            assert not ours()
        finally:
            for v in ours():  # what a failed assertion left
                if v.attachments:
                    for a in v.attachments:
                        conn.compute.delete_volume_attachment(a["server_id"], v.id, ignore_missing=True)
                    conn.block_storage.wait_for_status(v, "available", wait=60)
                conn.block_storage.delete_volume(v, ignore_missing=True)
            deadline = time.monotonic() + 60
            while ours() and time.monotonic() < deadline:
                time.sleep(1)
