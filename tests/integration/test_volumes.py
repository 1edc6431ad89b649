"""What Kubernetes makes in the cloud, as a user meets it (docs/cloud-resources.md): a claim on the
cluster's default class becomes a real Cinder volume (through the API stand-in's Cinder CSI, with
the cluster's credential), attached to the pod's node; a LoadBalancer Service becomes a real
Octavia load balancer with a floating IP (through the stand-in's cloud controller); `status`
counts both; `destroy-cluster` lists both, deletes the load balancer before the network, keeps
the volume detached, and deletes it only with `--delete-volumes`. Commands run as the docs say:
kubectl with the kubeconfig create-cluster wrote, `invoke` and `openstack` from another folder
with OS_CLOUD exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from helpers import ROOT, built_cluster, eventually, kube_tools

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  type: LoadBalancer
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

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

        def openstack(*args: str) -> list[dict]:
            exe = os.path.join(os.path.dirname(sys.executable), "openstack")
            out = subprocess.run(
                [exe, *args, "-f", "json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert out.returncode == 0, out.stderr
            return json.loads(out.stdout)

        def our_lbs():
            prefix = f"kube_service_{name}_"
            return [lb for lb in conn.load_balancer.load_balancers() if lb.name.startswith(prefix)]

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

            # A LoadBalancer Service: a real Octavia load balancer named as the cloud controller
            # names it, its VIP on the cluster's subnet, a floating IP on it; deleting the Service
            # deletes both (the cleanup finalizer holds the Service until then).
            k("apply", "-f", "-", stdin=SERVICE.format(name="api"))
            assert eventually(
                lambda: k("get", "svc", "api", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"), 180
            ), k("describe", "svc", "api") + k("get", "events", "-A")
            (api_lb,) = our_lbs()
            k("delete", "svc", "api", "--timeout=120s")
            assert eventually(lambda: not our_lbs(), 120)
            assert not [f for f in conn.network.ips() if f.port_id == api_lb.vip_port_id]

            k("apply", "-f", "-", stdin=SERVICE.format(name="web"))
            ip = eventually(
                lambda: k("get", "svc", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"), 180
            )
            assert ip, k("describe", "svc", "web") + k("get", "events", "-A")
            (lb,) = our_lbs()
            assert lb.name == f"kube_service_{name}_default_web" and lb.provisioning_status == "ACTIVE"
            assert lb.description == f"Kubernetes external service default/web from cluster {name}"
            vip = conn.network.get_port(lb.vip_port_id)
            (cluster_subnet,) = [s for s in conn.network.subnets() if s.name.startswith(name)]
            assert vip.fixed_ips[0]["subnet_id"] == cluster_subnet.id, "the VIP is on the cluster's subnet"
            (fip,) = [f for f in conn.network.ips() if f.port_id == vip.id]
            assert fip.floating_ip_address == ip and "from cluster " + name in fip.description
            assert lb.id == k(
                "get",
                "svc",
                "web",
                "-o",
                "jsonpath={.metadata.annotations.loadbalancer\\.openstack\\.org/load-balancer-id}",
            )
            listed = invoke("status", "--cluster", name)["load_balancers"]
            assert [(i["service"], i["floating_ip"]) for i in listed["items"]] == [("default/web", ip)], (
                listed
            )

            dry = invoke("destroy-cluster", "--cluster", name, "--dry-run")
            doomed = [(a["kind"], a["resource"]) for a in dry["actions"]]
            assert doomed.index(("delete", "load-balancer")) < doomed.index(("delete", "network")), doomed
            (kept,) = [a for a in dry["actions"] if a["resource"] == "volume"]
            assert kept["kind"] == "noop" and kept["detail"]["id"] == home.id
            assert "claim default/home" in kept["reason"] and "--delete-volumes" in kept["reason"]
            gone = invoke("destroy-cluster", "--cluster", name, "--yes")
            assert any(home.id in line for line in gone["left"]), gone["left"]
            left = conn.block_storage.get_volume(home.id)
            assert left.status == "available" and left.attachments == [], "kept, detached"
            assert not conn.compute.find_server(node), "the rest is gone"
            assert not our_lbs() and not conn.network.find_port(vip.id), "the load balancer and its VIP port"
            assert not [f for f in conn.network.ips() if f.floating_ip_address == ip], "and its floating IP"
            deleted = invoke("destroy-cluster", "--cluster", name, "--yes", "--delete-volumes")
            assert deleted["deleted"] == {"volume": 1}
            assert not ours()
            # As a user checks with the openstack CLI: nothing of the cluster is left.
            assert not [r for r in openstack("server", "list") if r["Name"].startswith(f"{name}-")]
            assert not [r for r in openstack("volume", "list") if r["ID"] in (volume.id, home.id)]
            assert not [r for r in openstack("loadbalancer", "list") if r["id"] in (lb.id, api_lb.id)]
            assert not [r for r in openstack("port", "list") if r["ID"] == vip.id]
            assert not [r for r in openstack("floating", "ip", "list") if r["Floating IP Address"] == ip]
            assert not [r for r in openstack("network", "list") if r["Name"].startswith(name)]
        finally:
            for lb in our_lbs():  # what a failed assertion left
                for f in conn.network.ips(port_id=lb.vip_port_id):
                    conn.network.delete_ip(f)
                conn.load_balancer.delete_load_balancer(lb, cascade=True, ignore_missing=True)
            for v in ours():  # what a failed assertion left
                if v.attachments:
                    for a in v.attachments:
                        conn.compute.delete_volume_attachment(a["server_id"], v.id, ignore_missing=True)
                    conn.block_storage.wait_for_status(v, "available", wait=60)
                conn.block_storage.delete_volume(v, ignore_missing=True)
            deadline = time.monotonic() + 60
            while ours() and time.monotonic() < deadline:
                time.sleep(1)
