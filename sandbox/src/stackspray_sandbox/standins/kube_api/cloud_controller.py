"""STAND-IN: the service controller with openstack-cloud-controller-manager's load balancers, as
Kubespray v2.31.0 runs it (image v1.35.0) — against the cloud's real Octavia and Neutron, through
the cluster's credential in `kube-system/external-openstack-cloud-config`.

On a real cluster, a Service of type LoadBalancer goes through Kubernetes' service controller
(k8s.io/cloud-provider controllers/service: the `service.kubernetes.io/load-balancer-cleanup`
finalizer first, then EnsureLoadBalancer with the nodes not labelled
`node.kubernetes.io/exclude-from-external-load-balancers`, which kubeadm puts on control-plane
nodes; on deletion EnsureLoadBalancerDeleted, then the finalizer goes) and the OpenStack provider
(cloud-provider-openstack pkg/openstack/loadbalancer.go, v1.35.0):
- the load balancer is named `kube_service_<cluster>_<namespace>_<name>` (GetLoadBalancerName,
  lbFormat; Kubespray's `cluster_name` is `--cluster-name`), described "Kubernetes external service
  <ns>/<name> from cluster <cluster>", tagged with its name (Octavia API ≥ 2.5), and created fully
  populated: one listener `listener_<i>_<lb>` and pool `pool_<i>_<lb>` per Service port, a member
  per node at its InternalIP and the port's nodePort (createOctaviaLoadBalancer);
- its VIP on the `[LoadBalancer] subnet-id`, else the subnet of the first node's port
  (getSubnetIDForLB); the provider `lb-provider`, default amphora; waited until ACTIVE;
- unless internal, a floating IP from `floating-network-id`, else the first external network
  (GetFloatingNetworkID), on the VIP port, described "Floating IP for Kubernetes external service
  <ns>/<name> from cluster <cluster>" (ensureFloatingIP); the Service's
  status.loadBalancer.ingress is that address, and the Service is annotated with
  `loadbalancer.openstack.org/load-balancer-id`;
- on deletion: the floating IP, only when its description says the provider made it and the
  Service does not ask to keep it (`loadbalancer.openstack.org/keep-floatingip`), then the load
  balancer with cascade (ensureLoadBalancerDeleted), waited gone.

`plan` (pure, here) says which Services to ensure and which to clean up; `Store.run_cloud_controller`
makes the calls outside the store's lock. Differences from the real thing, named: Services are
ensured once (a later change of their ports or of the nodes does not update the pools); no
security groups (`manage-security-groups` is off in Kubespray's defaults); shared load balancers,
load-balancer classes and the other annotations are not read.
"""

from __future__ import annotations

import configparser
import time

try:  # modules of the stackspray package (tests, docs) ...
    from .cinder_csi import CSIError as CloudError
    from .cinder_csi import OpenStack
except ImportError:  # ... or scripts beside their copies on the node
    from cinder_csi import CSIError as CloudError  # type: ignore[no-redef]
    from cinder_csi import OpenStack  # type: ignore[no-redef]

__all__ = ["CloudError", "OpenStack"]

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
LB_ID = "loadbalancer.openstack.org/load-balancer-id"
KEEP_FLOATING_IP = "loadbalancer.openstack.org/keep-floatingip"
INTERNAL = "service.beta.kubernetes.io/openstack-internal-load-balancer"
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
SERVICE_PREFIX = "kube_service_"
FIP_MARK = "Floating IP for Kubernetes external service"
COMPONENT = "service-controller"


def lb_name(cluster: str, namespace: str, name: str) -> str:
    """GetLoadBalancerName: cpoutil.Sprintf255(lbFormat, servicePrefix, cluster, ns, name)."""
    return f"{SERVICE_PREFIX}{cluster}_{namespace}_{name}"[:255]


def lb_description(cluster: str, namespace: str, name: str) -> str:
    return f"Kubernetes external service {namespace}/{name} from cluster {cluster}"


def fip_description(cluster: str, namespace: str, name: str) -> str:
    return f"{FIP_MARK} {namespace}/{name} from cluster {cluster}"


def lb_settings(cloud_conf: str) -> dict[str, str]:
    """The `[LoadBalancer]` section Kubespray writes (external-openstack-cloud-config.j2), with the
    provider's defaults (pkg/openstack/openstack.go ReadConfig: enabled, lb-provider amphora)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(cloud_conf)
    section = parser["LoadBalancer"] if parser.has_section("LoadBalancer") else {}
    out = {"enabled": "true", "lb-provider": "amphora", "internal-lb": "false"}
    out.update({k: str(v).strip('"') for k, v in section.items()})
    return out


def _is_lb(svc: dict) -> bool:
    return (svc.get("spec") or {}).get("type") == "LoadBalancer"


def member_nodes(nodes: list[dict]) -> list[dict]:
    """The nodes the service controller gives the provider (not the excluded ones), by name."""
    kept = [n for n in nodes if EXCLUDE_LABEL not in (n["metadata"].get("labels") or {})]
    return sorted(kept, key=lambda n: n["metadata"]["name"])


def internal_ip(node: dict) -> str | None:
    return next(
        (
            a["address"]
            for a in node.get("status", {}).get("addresses") or []
            if a.get("type") == "InternalIP"
        ),
        None,
    )


def plan(objects: dict, nodes: list[dict], cluster: str) -> tuple[list[dict], list[dict]]:
    """What the service controller would do now (pure): Services whose load balancer to ensure,
    and Services whose load balancer to delete (being deleted, or no longer LoadBalancer, with
    the cleanup finalizer still on)."""
    ensure, delete = [], []
    for key, svc in sorted(objects.items()):
        if key[:2] != ("v1", "services"):
            continue
        meta = svc["metadata"]
        ns, name = meta.get("namespace", "default"), meta["name"]
        item = {
            "namespace": ns,
            "name": name,
            "lb_name": lb_name(cluster, ns, name),
            "description": lb_description(cluster, ns, name),
            "fip_description": fip_description(cluster, ns, name),
            "annotations": dict(meta.get("annotations") or {}),
        }
        has_finalizer = FINALIZER in (meta.get("finalizers") or [])
        if meta.get("deletionTimestamp") or not _is_lb(svc):
            if has_finalizer:
                delete.append(item)
            continue
        if (svc.get("status") or {}).get("loadBalancer", {}).get("ingress"):
            continue  # ensured once (see the module's docstring)
        item["ports"] = [
            {
                "index": i,
                "protocol": p.get("protocol", "TCP"),
                "port": p["port"],
                "node_port": p.get("nodePort"),
            }
            for i, p in enumerate((svc.get("spec") or {}).get("ports") or [])
        ]
        item["nodes"] = [
            {"name": n["metadata"]["name"], "ip": internal_ip(n)}
            for n in member_nodes(nodes)
            if internal_ip(n)
        ]
        item["internal"] = item["annotations"].get(INTERNAL, "false").lower() == "true"
        ensure.append(item)
    return ensure, delete


def create_body(item: dict, settings: dict[str, str], subnet_id: str) -> dict:
    """createOctaviaLoadBalancer's fully populated request."""
    name = item["lb_name"]
    listeners = []
    for p in item["ports"]:
        members = [
            {"name": n["name"], "address": n["ip"], "protocol_port": p["node_port"], "subnet_id": subnet_id}
            for n in item["nodes"]
        ]
        listeners.append(
            {
                "name": f"listener_{p['index']}_{name}"[:255],
                "protocol": p["protocol"],
                "protocol_port": p["port"],
                "tags": [name],
                "default_pool": {
                    "name": f"pool_{p['index']}_{name}"[:255],
                    "protocol": p["protocol"],
                    "lb_algorithm": settings.get("lb-method", "ROUND_ROBIN"),
                    "members": members,
                },
            }
        )
    return {
        "loadbalancer": {
            "name": name,
            "description": item["description"],
            "provider": settings["lb-provider"],
            "tags": [name],
            "vip_subnet_id": subnet_id,
            "listeners": listeners,
        }
    }


# -- the provider's calls (gophercloud), through the cluster credential ------------------------


def _ok(got: tuple[int, dict], what: str) -> dict:
    status, doc = got
    if status >= 400:
        raise CloudError(f"{what} failed ({status}): {doc}"[:400])
    return doc


def find_lb(client: OpenStack, name: str) -> dict | None:
    """getLoadbalancerByName: the one not being deleted; more than one is an error."""
    doc = _ok(
        client.call("load-balancer", "GET", f"/v2/lbaas/loadbalancers?name={name}"), "list load balancers"
    )
    found = [
        lb
        for lb in doc.get("loadbalancers", [])
        if lb.get("name") == name and lb.get("provisioning_status") not in ("DELETED", "PENDING_DELETE")
    ]
    if len(found) > 1:
        raise CloudError(f"more than one load balancer is named {name}")
    return found[0] if found else None


def wait_lb(client: OpenStack, lb_id: str, gone: bool = False, timeout: float = 300.0) -> dict | None:
    """waitLoadbalancerActive / waitLoadbalancerDeleted: poll with backoff."""
    deadline, delay = time.monotonic() + timeout, 0.5
    while True:
        status, doc = client.call("load-balancer", "GET", f"/v2/lbaas/loadbalancers/{lb_id}")
        if status == 404 and gone:
            return None
        lb = _ok((status, doc), f"get load balancer {lb_id}")["loadbalancer"]
        if not gone and lb["provisioning_status"] == "ACTIVE":
            return lb
        if not gone and lb["provisioning_status"] == "ERROR":
            raise CloudError(f"load balancer {lb_id} is in ERROR")
        if time.monotonic() > deadline:
            raise CloudError(
                f"load balancer {lb_id} is still {lb['provisioning_status']} after {timeout:.0f}s"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 3.0)


def node_subnet(client: OpenStack, node: dict) -> str:
    """getSubnetIDForLB: the subnet of the node's port that holds its InternalIP."""
    server = client.server_id(node["name"])
    doc = _ok(client.call("network", "GET", f"/v2.0/ports?device_id={server}"), "list the node's ports")
    for port in doc.get("ports", []):
        for ip in port.get("fixed_ips") or []:
            if ip.get("ip_address") == node["ip"]:
                return ip["subnet_id"]
    raise CloudError(f"no port of {node['name']} holds {node['ip']}")


def floating_network(client: OpenStack, settings: dict[str, str]) -> str:
    if settings.get("floating-network-id"):
        return settings["floating-network-id"]
    doc = _ok(client.call("network", "GET", "/v2.0/networks?router:external=true"), "list external networks")
    nets = doc.get("networks", [])
    if not nets:
        raise CloudError("no external network for a floating IP")
    return nets[0]["id"]


def ensure(client: OpenStack, item: dict, settings: dict[str, str]) -> tuple[dict, str]:
    """EnsureLoadBalancer: the load balancer ACTIVE, and its address (floating IP unless internal)."""
    if not item["nodes"]:
        raise CloudError(
            f"there are no available nodes for LoadBalancer service {item['namespace']}/{item['name']}"
        )
    if any(p["node_port"] is None for p in item["ports"]):
        raise CloudError("a port of the Service has no nodePort")
    lb = find_lb(client, item["lb_name"])
    if lb is None:
        subnet = settings.get("subnet-id") or node_subnet(client, item["nodes"][0])
        body = create_body(item, settings, subnet)
        lb = _ok(
            client.call("load-balancer", "POST", "/v2/lbaas/loadbalancers", body), "create load balancer"
        )["loadbalancer"]
    lb = wait_lb(client, lb["id"])
    internal = item["internal"] or settings.get("internal-lb", "false").lower() == "true"
    if internal:
        return lb, lb["vip_address"]
    port = lb["vip_port_id"]
    doc = _ok(client.call("network", "GET", f"/v2.0/floatingips?port_id={port}"), "list floating IPs")
    fips = doc.get("floatingips", [])
    if fips:
        return lb, fips[0]["floating_ip_address"]
    body = {
        "floatingip": {
            "floating_network_id": floating_network(client, settings),
            "port_id": port,
            "description": item["fip_description"],
        }
    }
    fip = _ok(client.call("network", "POST", "/v2.0/floatingips", body), "create floating IP")["floatingip"]
    return lb, fip["floating_ip_address"]


def ensure_deleted(client: OpenStack, item: dict) -> None:
    """EnsureLoadBalancerDeleted: the provider's floating IP (unless kept), then the load balancer
    with everything in it, waited gone."""
    lb_id = item["annotations"].get(LB_ID)
    lb = None
    if lb_id:
        status, doc = client.call("load-balancer", "GET", f"/v2/lbaas/loadbalancers/{lb_id}")
        lb = None if status == 404 else _ok((status, doc), "get load balancer")["loadbalancer"]
    else:
        lb = find_lb(client, item["lb_name"])
    if lb is None:
        return
    if lb["provisioning_status"] not in ("ACTIVE", "ERROR"):
        raise CloudError(
            f"load balancer {lb['id']} is in immutable status, current provisioning status: "
            f"{lb['provisioning_status']}"
        )
    if not lb["name"].startswith(SERVICE_PREFIX):
        return  # not made by the provider: never deleted
    keep = item["annotations"].get(KEEP_FLOATING_IP, "false").lower() == "true"
    if not keep and lb.get("vip_port_id"):
        doc = _ok(
            client.call("network", "GET", f"/v2.0/floatingips?port_id={lb['vip_port_id']}"),
            "list floating IPs",
        )
        for fip in doc.get("floatingips", []):
            if FIP_MARK in (fip.get("description") or ""):
                status, body = client.call("network", "DELETE", f"/v2.0/floatingips/{fip['id']}")
                if status not in (204, 404):
                    _ok((status, body), "delete floating IP")
    status, body = client.call("load-balancer", "DELETE", f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true")
    if status not in (204, 404):
        _ok((status, body), "delete load balancer")
    wait_lb(client, lb["id"], gone=True)
