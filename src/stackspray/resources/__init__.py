"""The cloud resource kinds of a cluster, one module each, and the ordered registry that
create-cluster, destroy-cluster and `--dry-run` all walk.

`KINDS` is in creation order: each kind after the kinds it depends on (`DEPENDS_ON`), which is
also the order of the printed plan. `DESTROY_ORDER` is the order destroy-cluster deletes in:
each kind before every kind it depends on. Adding a kind is one module (see `base`) and one line
here; docs/architecture.md walks through the DNS record as the worked example.
"""

from __future__ import annotations

from types import ModuleType

from . import (
    access_rule,
    application_credential,
    dns_record,
    floating_ip,
    keypair,
    load_balancer,
    network,
    port,
    router,
    router_interface,
    security_group,
    server,
    server_group,
    share,
    subnet,
    volume,
)

KINDS: tuple[ModuleType, ...] = (
    network,
    subnet,
    router,
    router_interface,
    security_group,
    keypair,
    server_group,
    port,
    server,
    floating_ip,
    dns_record,
    share,
    access_rule,
    application_credential,
    volume,
    load_balancer,
)
BY_KIND: dict[str, ModuleType] = {k.KIND: k for k in KINDS}

# The order resources go in: each only after everything that uses it.
DESTROY_ORDER: tuple[str, ...] = (
    "dns-record",
    # Kubernetes' load balancers first: their VIP ports hold addresses of the cluster's subnet.
    "load-balancer",
    "server",
    "volume",
    "floating-ip",
    "port",
    "router-interface",
    "router",
    "subnet",
    "network",
    "security-group",
    "server-group",
    "share",
    "keypair",
    "application-credential",
)
