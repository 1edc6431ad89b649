"""The cloud as the engine sees it: one small interface over the OpenStack APIs stackspray calls.

Every resource kind (`resources/`) and every command that changes servers reaches the cloud
through a `CloudAPI`: list, get, find, create, update, delete and a few actions, by kind name.
Two implementations answer it:

- `OpenStackAPI`: openstacksdk's proxies (`conn.network.ports()`, `conn.compute.create_server()`,
  …), a thin mapping from the kind names below to the proxy methods;
- `stackspray_sandbox.fakecloud.FakeCloud`: an in-memory cloud for unit tests that answers as the
  sandbox's upstream services do — typed NotFound/Conflict/BadRequest/Forbidden, quotas, 409 on
  a busy server, states that take a while to change, answers that get lost.
  A contract test runs one scenario on both and compares what is left, so the fake cannot drift
  kinder than the cloud.

Resources come back as objects with the attributes openstacksdk gives them (`.id`, `.name`,
`.tags`, `.description`, `.metadata`, `.status`, `.fixed_ips`, …); the engine reads nothing else.
Errors are raised as openstacksdk/keystoneauth raise them (or, from the fake, as the typed
errors of `errors`); `cloudops.read`/`act`/`ensure` retry and type them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .connection import connect

# kind -> (service attribute on the connection, openstacksdk's resource name in method names)
KINDS: dict[str, tuple[str, str]] = {
    "network": ("network", "network"),
    "subnet": ("network", "subnet"),
    "router": ("network", "router"),
    "port": ("network", "port"),
    "security_group": ("network", "security_group"),
    "security_group_rule": ("network", "security_group_rule"),
    "floating_ip": ("network", "ip"),
    "server": ("compute", "server"),
    "server_group": ("compute", "server_group"),
    "keypair": ("compute", "keypair"),
    "flavor": ("compute", "flavor"),
    "image": ("image", "image"),
    "share": ("shared_file_system", "share"),
    "access_rule": ("shared_file_system", "access_rule"),
    "zone": ("dns", "zone"),
    "recordset": ("dns", "recordset"),
    "application_credential": ("identity", "application_credential"),
    "volume": ("block_storage", "volume"),
    "load_balancer": ("load_balancer", "load_balancer"),
}
# Kinds openstacksdk lists under a parent resource (a positional first argument).
PARENTED = {"access_rule", "recordset", "application_credential"}


class CloudAPI(Protocol):
    """What the engine may ask of a cloud. `parent`: the share of an access rule, the zone of a
    record set, the user of an application credential."""

    project_id: str
    user_id: str

    def has_service(self, service_type: str) -> bool: ...

    def list(self, kind: str, parent: Any = None, **filters: Any) -> list: ...

    def get(self, kind: str, rid: str, parent: Any = None) -> Any: ...

    def find(self, kind: str, name_or_id: str) -> Any | None: ...

    def create(self, kind: str, parent: Any = None, **attrs: Any) -> Any: ...

    def update(self, kind: str, resource: Any, parent: Any = None, **attrs: Any) -> Any: ...

    def delete(self, kind: str, rid: str, parent: Any = None) -> None: ...

    def set_tags(self, kind: str, resource: Any, tags: Iterable[str]) -> None: ...

    def add_router_interface(self, router_id: str, subnet_id: str) -> None: ...

    def remove_router_interface(self, router_id: str, subnet_id: str) -> None: ...

    def server_action(self, server_id: str, action: str) -> None: ...

    def compute_limits(self) -> Any: ...

    def compute_quota(self, usage: bool = False) -> Any: ...

    def network_quota(self) -> Any: ...

    def volume_limits(self) -> Any: ...

    def share_limits(self) -> dict: ...

    def share_types(self) -> set[str]: ...

    def share_exports(self, share_id: str) -> list: ...


class OpenStackAPI:
    """`CloudAPI` over an authenticated openstacksdk connection (`conn` stays reachable for the
    steps that are not the engine's: Kubespray's inventory reads the auth settings from it)."""

    def __init__(self, conn) -> None:
        self.conn = conn

    @property
    def project_id(self) -> str:
        return self.conn.current_project_id

    @property
    def user_id(self) -> str:
        return self.conn.current_user_id

    def _proxy(self, kind: str):
        service, name = KINDS[kind]
        return getattr(self.conn, service), name

    def has_service(self, service_type: str) -> bool:
        return self.conn.has_service(service_type)

    def list(self, kind: str, parent: Any = None, **filters: Any) -> list:
        proxy, name = self._proxy(kind)
        lister = getattr(proxy, f"{name}s")
        if kind in PARENTED:
            return list(lister(parent, **filters))
        if kind == "flavor":
            filters.setdefault("is_public", None)  # private flavors the project may use, too
        return list(lister(**filters))

    def get(self, kind: str, rid: str, parent: Any = None) -> Any:
        proxy, name = self._proxy(kind)
        if kind == "recordset":
            return proxy.get_recordset(rid, parent)
        if kind == "application_credential":
            return proxy.get_application_credential(parent, rid)
        return getattr(proxy, f"get_{name}")(rid)

    def find(self, kind: str, name_or_id: str) -> Any | None:
        proxy, name = self._proxy(kind)
        return getattr(proxy, f"find_{name}")(name_or_id, ignore_missing=True)

    def create(self, kind: str, parent: Any = None, **attrs: Any) -> Any:
        proxy, name = self._proxy(kind)
        creator = getattr(proxy, f"create_{name}")
        if kind in PARENTED:
            return creator(parent, **attrs)
        return creator(**attrs)

    def update(self, kind: str, resource: Any, parent: Any = None, **attrs: Any) -> Any:
        proxy, name = self._proxy(kind)
        if kind == "recordset":
            return proxy.update_recordset(proxy.get_recordset(resource, parent), **attrs)
        return getattr(proxy, f"update_{name}")(resource, **attrs)

    def delete(self, kind: str, rid: str, parent: Any = None) -> None:
        """Delete; already gone is not an error (openstacksdk's ignore_missing)."""
        proxy, name = self._proxy(kind)
        if kind == "recordset":
            proxy.delete_recordset(rid, parent, ignore_missing=True)
        elif kind == "application_credential":
            proxy.delete_application_credential(parent, rid, ignore_missing=True)
        elif kind == "load_balancer":
            # With its listeners, pools and members (Octavia refuses a load balancer with children).
            proxy.delete_load_balancer(rid, ignore_missing=True, cascade=True)
        else:
            getattr(proxy, f"delete_{name}")(rid, ignore_missing=True)

    def set_tags(self, kind: str, resource: Any, tags: Iterable[str]) -> None:
        self.conn.network.set_tags(resource, sorted(tags))

    def add_router_interface(self, router_id: str, subnet_id: str) -> None:
        self.conn.network.add_interface_to_router(router_id, subnet=subnet_id)

    def remove_router_interface(self, router_id: str, subnet_id: str) -> None:
        self.conn.network.remove_interface_from_router(router_id, subnet=subnet_id)

    def server_action(self, server_id: str, action: str) -> None:
        compute = self.conn.compute
        if action in ("shelve", "unshelve"):
            getattr(compute, f"{action}_server")(server_id)
        elif action in ("SOFT", "HARD"):
            compute.reboot_server(server_id, action)
        else:
            raise ValueError(f"unknown server action {action!r}")

    def compute_limits(self) -> Any:
        return self.conn.compute.get_limits().absolute

    def compute_quota(self, usage: bool = False) -> Any:
        return self.conn.compute.get_quota_set(self.project_id, usage=usage)

    def network_quota(self) -> Any:
        return self.conn.network.get_quota(self.project_id, details=True)

    def volume_limits(self) -> Any:
        return self.conn.block_storage.get_limits().absolute

    def share_limits(self) -> dict:
        return self.conn.shared_file_system.get("/limits", microversion="2.7").json()["limits"]["absolute"]

    def share_types(self) -> set[str]:
        resp = self.conn.shared_file_system.get("/types", microversion="2.46")
        return {t["name"] for t in resp.json().get("share_types", [])}

    def share_exports(self, share_id: str) -> list:
        return list(self.conn.shared_file_system.export_locations(share_id))


def connect_api(cloud: str) -> OpenStackAPI:
    """The operator's cloud (a clouds.yaml entry), authenticated, as a `CloudAPI`."""
    return OpenStackAPI(connect(cloud))
