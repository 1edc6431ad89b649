"""Access rules for the cluster's application credential: only the API calls its users make.

Without rules a restricted application credential still carries every role the operator has in
the project, so a root shell on any node can create servers, read images and shares, or delete
the project's volumes. With rules (Keystone's access rules, enforced by keystonemiddleware in
each service when its ``[keystone_authtoken] service_type`` is set) the credential can make only
the calls listed here, in the services the cloud has.

Who calls what, read from kubernetes/cloud-provider-openstack (the images Kubespray v2.31.0
deploys, v1.35.0), and stackspray's autoscaler agent (AGENT_COMPUTE):
- the cloud controller manager (pkg/openstack/instancesv2.go, instances.go, loadbalancer.go,
  routes.go): reads servers, their interfaces and flavors, ports, networks, subnets and floating
  IPs; with LoadBalancer Services (Kubespray's default `external_openstack_lbaas_enabled: true`)
  it manages Octavia load balancers and their floating IPs;
- Cinder CSI (pkg/csi/cinder/openstack/openstack_volumes.go, openstack_snapshots.go,
  openstack_instances.go): volumes, snapshots and their actions (extend, attach state) in Cinder,
  volume attachments of servers in Nova, availability zones.

Paths use Keystone's syntax: ``*`` is one path segment (a project or resource id), ``**`` any
number (keystonemiddleware auth_token/__init__.py `_path_matches`). Issuing a token
(POST /v3/auth/tokens) is never subject to the rules.
"""

from __future__ import annotations

# service type -> (method, path) pairs
_RULES: dict[str, list[tuple[str, str]]] = {
    "compute": [
        ("GET", "/v2.1"),
        ("GET", "/v2.1/"),
        ("GET", "/v2.1/servers"),
        ("GET", "/v2.1/servers/detail"),
        ("GET", "/v2.1/servers/*"),
        ("GET", "/v2.1/servers/*/os-interface"),
        ("GET", "/v2.1/servers/*/os-volume_attachments"),
        ("GET", "/v2.1/servers/*/os-volume_attachments/*"),
        ("POST", "/v2.1/servers/*/os-volume_attachments"),
        ("DELETE", "/v2.1/servers/*/os-volume_attachments/*"),
        ("GET", "/v2.1/flavors/*"),
        ("GET", "/v2.1/flavors/*/os-extra_specs"),
        ("GET", "/v2.1/os-availability-zone"),
    ],
    "network": [
        ("GET", "/v2.0"),
        ("GET", "/v2.0/"),
        ("GET", "/v2.0/extensions"),
        ("GET", "/v2.0/networks"),
        ("GET", "/v2.0/networks/*"),
        ("GET", "/v2.0/subnets"),
        ("GET", "/v2.0/subnets/*"),
        ("GET", "/v2.0/ports"),
        ("GET", "/v2.0/ports/*"),
        ("GET", "/v2.0/floatingips"),
        ("GET", "/v2.0/floatingips/*"),
    ],
    # Only where the cloud has Octavia: LoadBalancer Services.
    "load-balancer": [
        (method, path)
        for method in ("GET", "POST", "PUT", "DELETE")
        for path in ("/v2/lbaas/**", "/v2.0/lbaas/**", "/v2/octavia/**")
    ]
    + [("GET", "/"), ("GET", "/v2"), ("GET", "/v2/")],
    "block-storage": [
        ("GET", "/v3"),
        ("GET", "/v3/"),
        ("GET", "/v3/*/volumes"),
        ("GET", "/v3/*/volumes/detail"),
        ("POST", "/v3/*/volumes"),
        ("GET", "/v3/*/volumes/*"),
        ("PUT", "/v3/*/volumes/*"),
        ("DELETE", "/v3/*/volumes/*"),
        ("POST", "/v3/*/volumes/*/action"),
        ("GET", "/v3/*/volumes/*/metadata"),
        ("POST", "/v3/*/volumes/*/metadata"),
        ("GET", "/v3/*/snapshots"),
        ("GET", "/v3/*/snapshots/detail"),
        ("POST", "/v3/*/snapshots"),
        ("GET", "/v3/*/snapshots/*"),
        ("DELETE", "/v3/*/snapshots/*"),
        ("GET", "/v3/*/os-availability-zone"),
        ("GET", "/v3/*/types"),
    ],
}

# The autoscaler's agent on the cluster (autoscale_agent.py) runs with the cluster credential: it
# lists the flavors (their vCPUs size a woken worker) and shelves and unshelves workers. Keystone
# matches method and path, not the body, so POST .../action also allows the other server actions
# (reboot, resize, ...); creating or deleting a server stays refused. The rules are fixed when a
# credential is made, so every credential with rules carries these: enabling the agent later
# needs no new credential.
AGENT_COMPUTE: list[tuple[str, str]] = [
    ("GET", "/v2.1/flavors"),
    ("GET", "/v2.1/flavors/detail"),
    ("POST", "/v2.1/servers/*/action"),
]

# LoadBalancer Services also need floating IPs (ensureFloatingIP: create one on the VIP, or move
# an existing one with a PUT; delete it with its Service). The cloud controller reads the
# Service's security group on every delete (ensureSecurityGroupDeleted, "even if
# manage-security-groups is disabled") but creates security groups and rules, and updates node
# ports, only with `manage-security-groups` — off in Kubespray's defaults, and the spec cannot
# set it (external_openstack_* is stackspray's): no security-group or port writes.
_NETWORK_FOR_LOAD_BALANCERS: list[tuple[str, str]] = [
    ("POST", "/v2.0/floatingips"),
    ("PUT", "/v2.0/floatingips/*"),
    ("DELETE", "/v2.0/floatingips/*"),
    ("GET", "/v2.0/security-groups"),
    ("GET", "/v2.0/security-groups/*"),
]

# The services whose calls the cluster credential's users make (the others it never needs).
SERVICES = tuple(_RULES)


def rules_for(service_types: set[str] | frozenset[str]) -> list[dict[str, str]]:
    """Keystone access rules for the cluster credential on a cloud with these service types."""
    rules: list[tuple[str, str, str]] = []
    for service, pairs in _RULES.items():
        if service in service_types:
            rules += [(service, m, p) for m, p in pairs]
    if "load-balancer" in service_types:
        rules += [("network", m, p) for m, p in _NETWORK_FOR_LOAD_BALANCERS]
    if "compute" in service_types:
        rules += [("compute", m, p) for m, p in AGENT_COMPUTE]
    return [{"service": s, "method": m, "path": p} for s, m, p in rules]


def summary(rules: list[dict[str, str]]) -> str:
    """One line: how many calls in which services."""
    per: dict[str, int] = {}
    for r in rules:
        per[r["service"]] = per.get(r["service"], 0) + 1
    return ", ".join(f"{n} {s}" for s, n in per.items()) or "none"
