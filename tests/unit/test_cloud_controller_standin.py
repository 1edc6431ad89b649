"""The API stand-in's cloud controller (standins/kube_api/cloud_controller.py): what the service
controller plans for LoadBalancer Services, and its calls against an in-memory Octavia and Neutron
that answer as they do (the real ones judge it in tests/integration/test_volumes.py)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import kube_standin
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from stackspray_sandbox.standins.kube_api import cloud_controller as ccm

M = {"vcpus": 2, "ram_mb": 6144}
SUBNET = "subnet-of-the-cluster"
PUBLIC = "net-public"
CLOUD_CONF = '[Global]\nauth-url="http://keystone/v3"\n\n[LoadBalancer]\nenabled=true\n'


class Cloud:
    """Octavia and Neutron as the provider meets them: a new load balancer is PENDING_CREATE and
    ACTIVE on the next read, its VIP is a port on the subnet; a cascade delete removes it."""

    def __init__(self) -> None:
        self.lbs: dict[str, dict] = {}
        self.fips: dict[str, dict] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.created: list[dict] = []

    def server_id(self, node: str) -> str:
        return f"server-of-{node}"

    def call(self, service: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        self.calls.append((service, method, path))
        url = urlsplit(path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        if service == "load-balancer" and parts[:3] == ["v2", "lbaas", "loadbalancers"]:
            if len(parts) == 3 and method == "GET":
                return 200, {"loadbalancers": [lb for lb in self.lbs.values() if lb["name"] == q.get("name")]}
            if len(parts) == 3 and method == "POST":
                self.created.append(body)
                lid = f"lb-{len(self.lbs) + 1}"
                lb = {
                    **body["loadbalancer"],
                    "id": lid,
                    "provisioning_status": "PENDING_CREATE",
                    "vip_address": "10.1.0.50",
                    "vip_port_id": f"port-{lid}",
                }
                self.lbs[lid] = lb
                return 201, {"loadbalancer": lb}
            lb = self.lbs.get(parts[3])
            if lb is None:
                return 404, {"faultstring": f"Load Balancer {parts[3]} not found."}
            if method == "GET":
                if lb["provisioning_status"] == "PENDING_CREATE":
                    lb["provisioning_status"] = "ACTIVE"
                    return 200, {"loadbalancer": {**lb, "provisioning_status": "PENDING_CREATE"}}
                return 200, {"loadbalancer": lb}
            if method == "DELETE":
                assert q.get("cascade") == "true", "the provider deletes with cascade"
                del self.lbs[parts[3]]
                return 204, {}
        if service == "network":
            if url.path == "/v2.0/ports":
                ip = "10.1.0.11" if q["device_id"].endswith("workers-1") else "10.1.0.10"
                return 200, {"ports": [{"fixed_ips": [{"subnet_id": SUBNET, "ip_address": ip}]}]}
            if url.path == "/v2.0/networks":
                assert q == {"router:external": "true"}
                return 200, {"networks": [{"id": PUBLIC}]}
            if url.path == "/v2.0/floatingips" and method == "GET":
                return 200, {"floatingips": [f for f in self.fips.values() if f["port_id"] == q["port_id"]]}
            if url.path == "/v2.0/floatingips" and method == "POST":
                fid = f"fip-{len(self.fips) + 1}"
                self.fips[fid] = {**body["floatingip"], "id": fid, "floating_ip_address": "172.24.4.77"}
                return 201, {"floatingip": self.fips[fid]}
            if url.path.startswith("/v2.0/floatingips/") and method == "DELETE":
                return (204, {}) if self.fips.pop(parts[-1], None) else (404, {})
        raise AssertionError(f"unexpected call {service} {method} {path}")


@pytest.fixture
def api(tmp_path):
    nodes = [
        {"name": "lab-control-plane-1", "ip": "10.1.0.10", "control_plane": True, "labels": {}, "machine": M},
        {"name": "lab-workers-1", "ip": "10.1.0.11", "labels": {}, "machine": M},
    ]
    standin = kube_standin.start(tmp_path / "api", nodes, {"cluster_name": "lab"})
    yield standin
    kube_standin.stop(standin)


@pytest.fixture
def core(api):
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(api.kubeconfig)))


def _service(core, name="web", annotations=None, type_="LoadBalancer"):
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"type": type_, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    return core.create_namespaced_service("default", body)


def _ensure_all(store, cloud):
    with store.lock:
        ensure, _ = ccm.plan(store.objects, list(store.nodes.values()), "lab")
    for item in ensure:
        store.ensure_load_balancer(cloud, item, ccm.lb_settings(CLOUD_CONF))
    return ensure


def _delete_all(store, cloud):
    with store.lock:
        _, delete = ccm.plan(store.objects, list(store.nodes.values()), "lab")
    for item in delete:
        store.delete_load_balancer(cloud, item)
    return delete


def test_load_balancer_services_get_node_ports_and_a_taken_one_is_refused(core):
    first = _service(core, "web")
    second = _service(core, "api")
    assert first.spec.ports[0].node_port == 30000 and second.spec.ports[0].node_port == 30001
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "clash"},
        "spec": {"type": "NodePort", "ports": [{"port": 81, "nodePort": 30000}]},
    }
    with pytest.raises(k8s.ApiException) as err:
        core.create_namespaced_service("default", body)
    assert err.value.status == 422 and "provided port is already allocated" in err.value.body


def test_the_plan_names_the_load_balancer_as_the_provider_and_leaves_out_the_control_plane(api, core):
    _service(core, "web")
    _service(core, "inside", type_="ClusterIP")
    with api.store.lock:
        ensure, delete = ccm.plan(api.store.objects, list(api.store.nodes.values()), "lab")
    assert delete == [] and [i["name"] for i in ensure] == ["web"]
    item = ensure[0]
    assert item["lb_name"] == "kube_service_lab_default_web"
    assert item["description"] == "Kubernetes external service default/web from cluster lab"
    # kubeadm labels control-plane nodes node.kubernetes.io/exclude-from-external-load-balancers.
    assert item["nodes"] == [{"name": "lab-workers-1", "ip": "10.1.0.11"}]
    assert item["ports"] == [{"index": 0, "protocol": "TCP", "port": 80, "node_port": 30000}]


def test_a_service_gets_a_load_balancer_with_a_floating_ip_and_deleting_it_cleans_up(api, core):
    store, cloud = api.store, Cloud()
    _service(core, "web")
    assert len(_ensure_all(store, cloud)) == 1
    body = cloud.created[0]["loadbalancer"]
    assert body["name"] == "kube_service_lab_default_web" and body["tags"] == [body["name"]]
    assert body["vip_subnet_id"] == SUBNET, "the subnet of the first node's port"
    listener = body["listeners"][0]
    assert listener["name"] == "listener_0_kube_service_lab_default_web" and listener["protocol_port"] == 80
    assert listener["default_pool"]["members"] == [
        {"name": "lab-workers-1", "address": "10.1.0.11", "protocol_port": 30000, "subnet_id": SUBNET}
    ]
    (fip,) = cloud.fips.values()
    assert fip["port_id"] == "port-lb-1" and fip["floating_network_id"] == PUBLIC
    assert fip["description"] == "Floating IP for Kubernetes external service default/web from cluster lab"
    svc = core.read_namespaced_service("web", "default")
    assert svc.status.load_balancer.ingress[0].ip == "172.24.4.77"
    assert svc.metadata.annotations[ccm.LB_ID] == "lb-1"
    assert svc.metadata.finalizers == [ccm.FINALIZER]
    assert _ensure_all(store, cloud) == [], "an ensured Service is not ensured again"

    # kubectl delete: the API marks it (the finalizer holds it) until the controller cleaned up.
    core.delete_namespaced_service("web", "default")
    held = core.read_namespaced_service("web", "default")
    assert held.metadata.deletion_timestamp is not None
    assert len(_delete_all(store, cloud)) == 1
    assert cloud.lbs == {} and cloud.fips == {}
    with pytest.raises(k8s.ApiException) as err:
        core.read_namespaced_service("web", "default")
    assert err.value.status == 404


def test_a_kept_floating_ip_stays_and_an_internal_service_gets_none(api, core):
    store, cloud = api.store, Cloud()
    _service(core, "kept", annotations={ccm.KEEP_FLOATING_IP: "true"})
    _service(core, "inner", annotations={ccm.INTERNAL: "true"})
    _ensure_all(store, cloud)
    assert len(cloud.fips) == 1, "only the external Service has a floating IP"
    assert core.read_namespaced_service("inner", "default").status.load_balancer.ingress[0].ip == "10.1.0.50"
    core.delete_namespaced_service("kept", "default")
    core.delete_namespaced_service("inner", "default")
    _delete_all(store, cloud)
    assert cloud.lbs == {}
    assert len(cloud.fips) == 1, "keep-floatingip: the address stays in the project"


def test_without_nodes_the_service_stays_pending_with_the_providers_error(api, core):
    store, cloud = api.store, Cloud()
    with store.lock:
        for node in store.nodes.values():
            node["metadata"]["labels"][ccm.EXCLUDE_LABEL] = ""
    _service(core, "web")
    _ensure_all(store, cloud)
    assert cloud.created == []
    assert not core.read_namespaced_service("web", "default").status.load_balancer.ingress
    events = core.list_namespaced_event("default").items
    assert any(
        e.reason == "SyncLoadBalancerFailed" and "there are no available nodes" in e.message for e in events
    )


def test_the_cloud_config_secret_of_the_controller_has_the_load_balancer_section(tmp_path):
    standin = kube_standin.start(
        tmp_path / "api",
        [],
        {"cloud_conf": '[Global]\nregion="r"\n', "ccm_cloud_conf": CLOUD_CONF},
    )
    try:
        standin.store.apply_cloud_config()
        secrets = standin.store.secrets
        ccm_conf = base64.b64decode(
            secrets[("kube-system", "external-openstack-cloud-config")]["data"]["cloud.conf"]
        )
        csi_conf = base64.b64decode(secrets[("kube-system", "cloud-config")]["data"]["cloud.conf"])
        assert ccm.lb_settings(ccm_conf.decode())["enabled"] == "true" and b"[LoadBalancer]" in ccm_conf
        assert b"[LoadBalancer]" not in csi_conf
    finally:
        kube_standin.stop(standin)


def test_lb_settings_defaults_follow_the_provider():
    assert ccm.lb_settings("[Global]\n") == {
        "enabled": "true",
        "lb-provider": "amphora",
        "internal-lb": "false",
    }
    assert json.dumps(ccm.lb_settings("[Global]\n[LoadBalancer]\nenabled=false\n")).count('"false"') == 2


def test_a_failed_delete_is_reported_by_the_service_controller_and_retried_after_a_backoff(api, core):
    store, cloud = api.store, Cloud()
    _service(core, "web")
    _ensure_all(store, cloud)
    core.delete_namespaced_service("web", "default")
    cloud.lbs["lb-1"]["provisioning_status"] = "PENDING_UPDATE"  # Octavia: immutable for now
    _delete_all(store, cloud)
    assert "lb-1" in cloud.lbs and core.read_namespaced_service("web", "default").metadata.deletion_timestamp
    (event,) = [
        e for e in core.list_namespaced_event("default").items if e.reason == "SyncLoadBalancerFailed"
    ]
    assert "failed to delete load balancer" in event.message and "immutable" in event.message
    assert event.source.component == ccm.COMPONENT
    assert store.lb_retry[("default", "web")][1] == 5.0, "retried after 5 s, then doubling"
    cloud.lbs["lb-1"]["provisioning_status"] = "ACTIVE"
    _delete_all(store, cloud)
    assert cloud.lbs == {} and ("default", "web") not in store.lb_retry
