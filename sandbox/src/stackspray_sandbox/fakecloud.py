"""An in-memory cloud behind stackspray's `CloudAPI`, for unit tests of the engine: create, re-run,
add and remove nodes, shelve and unshelve, destroy — and a kill after any call, then a re-run —
in seconds instead of the sandbox's minutes.

It answers as the sandbox's upstream services do (Neutron 29, Nova 34, Manila 23, Designate 23,
Keystone 30), unfriendly answers included, each naming the upstream rule it follows:

- typed errors with the upstream status: 404 for what does not exist, 409 for what is in use or
  already there (Neutron's NetworkInUse, SubnetInUse, SecurityGroupInUse, RouterInUse,
  SecurityGroupRuleExists, PortInUse; Nova's InstanceInvalidState "Cannot 'shelve' instance …
  while it is in task_state …"), 400 for a request the API refuses (Nova's "Invalid key_name
  provided.", Neutron's "Router already has a port on subnet"), 403 for a quota (Nova's
  "Quota exceeded for instances"; Neutron's OverQuota is 409);
- states that take a while: a server is BUILD for `settle` calls before ACTIVE, a shelve goes
  through task_state shelving before SHELVED_OFFLOADED, a deleted server is gone only later,
  a share is `creating` and an access rule `queued_to_apply` before they are ready, a DNS record
  PENDING before ACTIVE — "a while" is counted in API calls, so tests are fast and repeatable;
- answers that get lost: `lose(op, kind, times)` makes the next such calls take effect but raise
  a `Transient` error instead of answering (what a client sees when the connection drops);
- a kill: `kill_after(n)` lets n more calls happen, then every call raises `Killed` (a
  BaseException, as SIGKILL is not an error the engine can catch): nothing after it takes effect.

`calls` records every call as (op, kind) for tests that count them.
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import re
import threading
from collections.abc import Iterable
from typing import Any

from stackspray.errors import BadRequest, Conflict, Forbidden, NotFound, Transient


class Killed(BaseException):
    """The process was killed: no call after this one reaches the cloud."""


# Each kind's attributes and their defaults, as openstacksdk's resource classes define them (the
# names the engine reads); an attribute not listed is an AttributeError, as on a real resource.
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "network": {
        "name": "",
        "description": "",
        "tags": [],
        "is_router_external": False,
        "mtu": 1450,
        "project_id": None,
        "status": "ACTIVE",
    },
    "subnet": {
        "name": "",
        "description": "",
        "tags": [],
        "network_id": None,
        "cidr": None,
        "ip_version": 4,
        "dns_nameservers": [],
        "gateway_ip": None,
        "project_id": None,
    },
    "router": {
        "name": "",
        "description": "",
        "tags": [],
        "external_gateway_info": None,
        "project_id": None,
        "status": "ACTIVE",
    },
    "port": {
        "name": "",
        "description": "",
        "tags": [],
        "network_id": None,
        "fixed_ips": [],
        "security_group_ids": [],
        "allowed_address_pairs": [],
        "device_id": "",
        "device_owner": "",
        "status": "DOWN",
        "project_id": None,
    },
    "security_group": {
        "name": "",
        "description": "",
        "tags": [],
        "security_group_rules": [],
        "project_id": None,
    },
    "security_group_rule": {
        "security_group_id": None,
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": None,
        "port_range_min": None,
        "port_range_max": None,
        "remote_ip_prefix": None,
        "remote_group_id": None,
    },
    "floating_ip": {
        "name": None,
        "description": "",
        "tags": [],
        "floating_ip_address": None,
        "floating_network_id": None,
        "port_id": None,
        "fixed_ip_address": None,
        "status": "DOWN",
        "project_id": None,
    },
    "server": {
        "name": "",
        "status": "BUILD",
        "task_state": None,
        "metadata": {},
        "flavor": {},
        "addresses": {},
        "fault": None,
        "key_name": None,
        "image": {},
        "vm_state": "building",
    },
    "server_group": {"name": "", "policy": None, "policies": [], "member_ids": []},
    "keypair": {"name": "", "public_key": "", "fingerprint": ""},
    "flavor": {"name": "", "vcpus": 1, "ram": 1024, "disk": 10, "extra_specs": {}},
    "image": {"name": "", "status": "active", "properties": {}},
    "volume": {
        "name": "",
        "status": "creating",
        "size": 1,
        "metadata": {},
        "attachments": [],
        "is_bootable": False,
    },
    "load_balancer": {
        "name": "",
        "description": "",
        "tags": [],
        "provisioning_status": "PENDING_CREATE",
        "operating_status": "OFFLINE",
        "vip_address": None,
        "vip_subnet_id": None,
        "vip_network_id": None,
        "vip_port_id": None,
        "project_id": None,
    },
    "share": {
        "name": "",
        "status": "creating",
        "size": 1,
        "share_protocol": "CEPHFS",
        "share_type": None,
        "metadata": {},
    },
    "access_rule": {
        "share_id": None,
        "access_to": "",
        "access_type": "cephx",
        "access_level": "rw",
        "state": "queued_to_apply",
        "access_key": None,
    },
    "zone": {"name": "", "status": "ACTIVE"},
    "recordset": {
        "name": "",
        "type": "A",
        "records": [],
        "ttl": 300,
        "description": "",
        "status": "PENDING",
        "zone_id": None,
    },
    "application_credential": {"name": "", "description": "", "expires_at": None},
}


class Record:
    """One resource: the attributes of its kind, read as attributes (as openstacksdk's)."""

    __slots__ = ("_kind", "_values")

    def __init__(self, kind: str, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"{object.__getattribute__(self, '_kind')} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a resource read from the cloud is a snapshot: change it through the API")

    def __repr__(self) -> str:
        return f"<{self._kind} {self._values.get('name') or self._values.get('id')}>"

    def to_dict(self) -> dict:
        return copy.deepcopy(self._values)


DEFAULT_QUOTAS = {
    # As the sandbox sets them (Jetstream2's research-allocation defaults: 150 cores, 585 GB RAM,
    # 10 floating IPs, one router; 100 instances), the rest at the upstream services' defaults
    # (nova: server_groups 10, server_group_members 10; neutron: networks 100, ports 500,
    # security_groups 10; manila: shares 50, gigabytes 1000).
    "instances": 100,
    "cores": 150,
    "ram": 585 * 1024,
    "server_groups": 10,
    "server_group_members": 10,
    "networks": 100,
    "subnets": 100,
    "routers": 1,
    "ports": 500,
    "security_groups": 10,
    "floating_ips": 10,
    "shares": 50,
    "share_gigabytes": 1000,
    # cinder/quota.py's defaults; gigabytes as Jetstream2's 1 TB (the sandbox sets both).
    "volumes": 10,
    "volume_gigabytes": 1000,
}


class FakeCloud:
    """An in-memory project of one cloud (see the module's docstring)."""

    conn = None  # no openstacksdk connection: steps that need one (Kubespray) do not run here

    def __init__(
        self,
        *,
        quotas: dict[str, int] | None = None,
        settle: int = 2,
        services: Iterable[str] = ("compute", "network", "image", "identity", "shared-file-system", "dns"),
        flavors: dict[str, tuple[int, int]] | None = None,
        images: Iterable[str] = ("Featured-Ubuntu24",),
        zones: Iterable[str] = (),
        external_network: str = "public",
        project_router: bool = True,
    ) -> None:
        self.project_id = "project-1"
        self.user_id = "user-1"
        self.quotas = {**DEFAULT_QUOTAS, **(quotas or {})}
        self.settle = settle
        self.services = set(services)
        self.store: dict[str, dict[str, dict]] = {k: {} for k in ATTRIBUTES}
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._tick = 0
        self._due: list[tuple[int, str, str, dict]] = []  # (tick, kind, id, changes or {"__gone__": 1})
        self._lock = threading.RLock()
        self._lost: dict[tuple[str, str], int] = {}
        self._kill_in: int | None = None
        self.killed = False
        for name, (vcpus, ram) in (flavors or {"m3.small": (2, 6144), "m3.medium": (8, 30720)}).items():
            self._put("flavor", {"name": name, "vcpus": vcpus, "ram": ram})
        for name in images:
            self._put("image", {"name": name})
        for name in zones:
            self._put("zone", {"name": name})
        self._put(
            "network",
            {"name": external_network, "is_router_external": True, "project_id": "admin"},
        )
        ext = self._by_name("network", external_network)
        self._put(
            "subnet",
            {
                "name": f"{external_network}-subnet",
                "network_id": ext["id"],
                "cidr": "203.0.113.0/24",
                "project_id": "admin",
            },
        )
        if project_router:
            # What Exosphere's `auto allocated topology` leaves in a Jetstream2 project.
            net = self._put("network", {"name": "auto_allocated_network", "project_id": self.project_id})
            sub = self._put(
                "subnet",
                {
                    "name": "auto_allocated_subnet_v4",
                    "network_id": net["id"],
                    "cidr": "10.1.0.0/24",
                    "project_id": self.project_id,
                },
            )
            router = self._put(
                "router",
                {
                    "name": "auto_allocated_router",
                    "external_gateway_info": {"network_id": ext["id"]},
                    "project_id": self.project_id,
                },
            )
            self._attach(router["id"], sub["id"])

    # -- test controls ---------------------------------------------------------------------------

    def lose(self, op: str, kind: str, times: int = 1) -> None:
        """The next `times` calls `op` on `kind` take effect, but their answers are lost."""
        self._lost[(op, kind)] = self._lost.get((op, kind), 0) + times

    def kill_after(self, n: int | None) -> None:
        """Let `n` more calls happen, then the process is dead (None: never)."""
        self._kill_in = n
        self.killed = False

    def revive(self) -> None:
        """A new process starts (the cloud kept everything)."""
        self._kill_in = None
        self.killed = False

    def resources(self, kind: str) -> list[dict]:
        """Every resource of a kind as stored (for assertions)."""
        with self._lock:
            self._settle()
            return [copy.deepcopy(v) for v in self.store[kind].values()]

    def break_server(self, name: str, fault: str = "No valid host was found.") -> None:
        """Put a server into ERROR (what a failed hypervisor leaves)."""
        with self._lock:
            s = self._by_name("server", name)
            s.update(status="ERROR", task_state=None, fault={"message": fault, "code": 500})

    # -- the machinery ---------------------------------------------------------------------------

    def _call(self, op: str, kind: str) -> bool:
        """Count the call, settle what is due; True when its answer is to be lost."""
        self.calls.append((op, kind))
        if self.killed:
            raise Killed(f"{op} {kind}: the process was killed")
        if self._kill_in is not None:
            if self._kill_in <= 0:
                self.killed = True
                raise Killed(f"{op} {kind}: the process was killed")
            self._kill_in -= 1
        self._tick += 1
        self._settle()
        key = (op, kind)
        if self._lost.get(key):
            self._lost[key] -= 1
            return True
        return False

    def _settle(self) -> None:
        due = [d for d in self._due if d[0] <= self._tick]
        self._due = [d for d in self._due if d[0] > self._tick]
        for _, kind, rid, changes in due:
            if rid not in self.store[kind]:
                continue
            if changes.get("__gone__"):
                self._forget(kind, rid)
            else:
                self.store[kind][rid].update(changes)

    def _later(self, kind: str, rid: str, changes: dict, ticks: int | None = None) -> None:
        self._due.append((self._tick + (self.settle if ticks is None else ticks), kind, rid, changes))

    def _new_id(self, kind: str) -> str:
        return f"{kind.replace('_', '-')}-{next(self._ids)}"

    def _put(self, kind: str, values: dict) -> dict:
        rid = values.get("id") or self._new_id(kind)
        item = copy.deepcopy(ATTRIBUTES[kind])
        item.update(copy.deepcopy(values))
        item["id"] = rid
        self.store[kind][rid] = item
        return item

    def _by_name(self, kind: str, name: str) -> dict:
        return next(v for v in self.store[kind].values() if v.get("name") == name)

    def _get(self, kind: str, rid: str) -> dict:
        item = self.store[kind].get(rid) if isinstance(rid, str) else None
        if item is None:
            raise NotFound(f"{_title(kind)} {rid} could not be found.")
        return item

    def _record(self, kind: str, item: dict) -> Record:
        return Record(kind, copy.deepcopy(item))

    def _answer(self, lost: bool, op: str, kind: str, value: Any = None) -> Any:
        if lost:
            raise Transient(f"{op} {kind}: connection reset by peer (the call may have been carried out)")
        return value

    def _forget(self, kind: str, rid: str) -> None:
        item = self.store[kind].pop(rid, None)
        if item is None:
            return
        if kind == "server":
            # Nova detaches the server's volumes (deleted with it: none of ours use
            # delete_on_termination through this fake).
            for v in self.store["volume"].values():
                if any(a.get("server_id") == rid for a in v["attachments"]):
                    v.update(status="available", attachments=[])
            for p in self.store["port"].values():
                if p["device_id"] == rid and p["device_owner"].startswith("compute:"):
                    p.update(device_id="", device_owner="", status="DOWN")
            for g in self.store["server_group"].values():
                if rid in g["member_ids"]:
                    g["member_ids"] = [m for m in g["member_ids"] if m != rid]

    def _count(self, kind: str, **match: Any) -> int:
        return sum(1 for v in self.store[kind].values() if all(v.get(k) == w for k, w in match.items()))

    def _over_quota(self, resource: str, used: int, adding: int = 1) -> bool:
        limit = self.quotas.get(resource, -1)
        return limit >= 0 and used + adding > limit

    # -- CloudAPI --------------------------------------------------------------------------------

    def has_service(self, service_type: str) -> bool:
        return service_type in self.services

    def list(self, kind: str, parent: Any = None, **filters: Any) -> list:
        with self._lock:
            lost = self._call("list", kind)
            items = list(self.store[kind].values())
            if kind in ("network", "subnet", "router", "port", "security_group", "floating_ip"):
                # Neutron lists the project's resources (and shared/external networks).
                items = [
                    i
                    for i in items
                    if i.get("project_id") in (self.project_id, None) or i.get("is_router_external")
                ]
            if kind == "access_rule":
                items = [i for i in items if i["share_id"] == _id(parent)]
            if kind == "recordset":
                items = [i for i in items if parent is None or i["zone_id"] == _id(parent)]
            for key, want in filters.items():
                if key in ("details", "is_public"):
                    continue
                if kind == "server" and key == "name":
                    # Nova filters names by regular expression.
                    items = [i for i in items if re.search(want, i["name"])]
                else:
                    items = [i for i in items if i.get(key) == want]
            return self._answer(lost, "list", kind, [self._record(kind, i) for i in items])

    def get(self, kind: str, rid: str, parent: Any = None) -> Any:
        with self._lock:
            lost = self._call("get", kind)
            return self._answer(lost, "get", kind, self._record(kind, self._get(kind, _id(rid))))

    def find(self, kind: str, name_or_id: str) -> Any | None:
        with self._lock:
            lost = self._call("find", kind)
            found = self.store[kind].get(name_or_id)
            if found is None:
                named = [v for v in self.store[kind].values() if v.get("name") == name_or_id]
                if len(named) > 1:
                    # openstacksdk's DuplicateResource
                    raise Conflict(f"More than one {_title(kind)} exists with the name '{name_or_id}'.")
                found = named[0] if named else None
            return self._answer(lost, "find", kind, self._record(kind, found) if found else None)

    def create(self, kind: str, parent: Any = None, **attrs: Any) -> Any:
        with self._lock:
            lost = self._call("create", kind)
            item = getattr(self, f"_create_{kind}")(parent, **attrs)
            return self._answer(lost, "create", kind, self._record(kind, item))

    def update(self, kind: str, resource: Any, parent: Any = None, **attrs: Any) -> Any:
        with self._lock:
            lost = self._call("update", kind)
            item = self._get(kind, _id(resource))
            if kind == "floating_ip" and "port_id" in attrs:
                self._associate(item, attrs.pop("port_id"))
            if kind == "port" and "security_group_ids" in attrs:
                for sg in attrs["security_group_ids"]:
                    self._get("security_group", sg)
            if kind == "recordset":
                attrs = {**attrs, "status": "PENDING"}
                self._later("recordset", item["id"], {"status": "ACTIVE"})
            item.update(copy.deepcopy(attrs))
            return self._answer(lost, "update", kind, self._record(kind, item))

    def delete(self, kind: str, rid: str, parent: Any = None) -> None:
        """Delete; already gone is fine (openstacksdk's ignore_missing)."""
        with self._lock:
            lost = self._call("delete", kind)
            rid = _id(rid)
            if rid in self.store[kind]:
                getattr(self, f"_delete_{kind}", self._delete_plain)(kind, rid)
            return self._answer(lost, "delete", kind)

    def set_tags(self, kind: str, resource: Any, tags: Iterable[str]) -> None:
        with self._lock:
            lost = self._call("set_tags", kind)
            self._get(kind, _id(resource))["tags"] = sorted(set(tags))
            return self._answer(lost, "set_tags", kind)

    def add_router_interface(self, router_id: str, subnet_id: str) -> None:
        with self._lock:
            lost = self._call("add_interface", "router")
            self._get("router", router_id)
            self._get("subnet", subnet_id)
            if any(subnet_id in _subnets(p) for p in self._interfaces(router_id)):
                # neutron/db/l3_db.py _check_for_dup_router_subnets
                raise BadRequest(f"Router {router_id} already has a port on subnet {subnet_id}.")
            self._attach(router_id, subnet_id)
            return self._answer(lost, "add_interface", "router")

    def remove_router_interface(self, router_id: str, subnet_id: str) -> None:
        with self._lock:
            lost = self._call("remove_interface", "router")
            ports = [p for p in self._interfaces(router_id) if subnet_id in _subnets(p)]
            if not ports:
                # neutron/db/l3_db.py RouterInterfaceNotFoundForSubnet
                raise NotFound(f"Router {router_id} has no interface on subnet {subnet_id}")
            net = self._get("subnet", subnet_id)["network_id"]
            if any(
                f["port_id"] and self.store["port"].get(f["port_id"], {}).get("network_id") == net
                for f in self.store["floating_ip"].values()
            ):
                # neutron/db/l3_db.py RouterInterfaceInUseByFloatingIP (409)
                raise Conflict(
                    f"Router interface for subnet {subnet_id} on router {router_id} cannot be deleted, "
                    "as it is required by one or more floating IPs."
                )
            for p in ports:
                self.store["port"].pop(p["id"])
            return self._answer(lost, "remove_interface", "router")

    def server_action(self, server_id: str, action: str) -> None:
        with self._lock:
            lost = self._call(action, "server")
            s = self._get("server", server_id)
            allowed = {
                "shelve": ("ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"),
                "unshelve": ("SHELVED", "SHELVED_OFFLOADED"),
                "SOFT": ("ACTIVE",),
                "HARD": ("ACTIVE", "SHUTOFF", "ERROR"),
            }[action]
            if s["task_state"] is not None or s["status"] not in allowed:
                # nova/compute/api.py check_instance_state -> InstanceInvalidState (409)
                what = (
                    f"task_state {s['task_state']}" if s["task_state"] else f"vm_state {s['status'].lower()}"
                )
                raise Conflict(f"Cannot '{action.lower()}' instance {server_id} while it is in {what}")
            if action == "shelve":
                s.update(task_state="shelving")
                self._later("server", server_id, {"status": "SHELVED_OFFLOADED", "task_state": None})
            elif action == "unshelve":
                s.update(task_state="unshelving")
                self._later("server", server_id, {"status": "ACTIVE", "task_state": None})
            else:
                s.update(task_state="rebooting" if action == "SOFT" else "rebooting_hard")
                self._later("server", server_id, {"status": "ACTIVE", "task_state": None})
            return self._answer(lost, action, "server")

    def compute_limits(self) -> Any:
        with self._lock:
            lost = self._call("limits", "compute")
            servers = list(self.store["server"].values())
            flavors = {f["name"]: f for f in self.store["flavor"].values()}
            cores = sum(flavors[s["flavor"]["original_name"]]["vcpus"] for s in servers)
            ram = sum(flavors[s["flavor"]["original_name"]]["ram"] for s in servers)
            limits = Record(
                "limits",
                {
                    "instances": self.quotas["instances"],
                    "instances_used": len(servers),
                    "total_cores": self.quotas["cores"],
                    "total_cores_used": cores,
                    "total_ram": self.quotas["ram"],
                    "total_ram_used": ram,
                },
            )
            return self._answer(lost, "limits", "compute", limits)

    def compute_quota(self, usage: bool = False) -> Any:
        with self._lock:
            lost = self._call("quota", "compute")
            values = {
                "server_groups": self.quotas["server_groups"],
                "server_group_members": self.quotas["server_group_members"],
                "usage": {"server_groups": len(self.store["server_group"])} if usage else {},
            }
            return self._answer(lost, "quota", "compute", Record("quota", values))

    def network_quota(self) -> Any:
        with self._lock:
            lost = self._call("quota", "network")
            mine = {"project_id": self.project_id}

            def row(resource: str, kind: str) -> dict:
                return {"limit": self.quotas[resource], "used": self._count(kind, **mine)}

            values = {
                "floating_ips": row("floating_ips", "floating_ip"),
                "security_groups": row("security_groups", "security_group"),
                "networks": row("networks", "network"),
                "routers": row("routers", "router"),
                "ports": row("ports", "port"),
            }
            return self._answer(lost, "quota", "network", Record("quota", values))

    def volume_limits(self) -> Any:
        with self._lock:
            lost = self._call("limits", "volume")
            if "block-storage" not in self.services:
                raise NotFound("public endpoint for block-storage service not found")
            vols = list(self.store["volume"].values())
            values = {
                "max_total_volumes": self.quotas["volumes"],
                "total_volumes_used": len(vols),
                "max_total_volume_gigabytes": self.quotas["volume_gigabytes"],
                "total_gigabytes_used": sum(v["size"] for v in vols),
            }
            return self._answer(lost, "limits", "volume", Record("limits", values))

    def share_limits(self) -> dict:
        with self._lock:
            lost = self._call("limits", "share")
            shares = list(self.store["share"].values())
            values = {
                "maxTotalShares": self.quotas["shares"],
                "totalSharesUsed": len(shares),
                "maxTotalShareGigabytes": self.quotas["share_gigabytes"],
                "totalShareGigabytesUsed": sum(s["size"] for s in shares),
            }
            return self._answer(lost, "limits", "share", values)

    def share_types(self) -> set[str]:
        with self._lock:
            lost = self._call("list", "share_type")
            return self._answer(lost, "list", "share_type", {"cephfsnativetype"})

    def share_exports(self, share_id: str) -> list:
        with self._lock:
            lost = self._call("list", "export_location")
            s = self._get("share", share_id)
            path = f"mon1:6789,mon2:6789,mon3:6789:/volumes/_nogroup/{s['id']}"
            return self._answer(lost, "list", "export_location", [Record("export", {"path": path})])

    # -- creates, per kind (each checks what the upstream API checks) ---------------------------

    def _neutron_quota(self, resource: str, kind: str) -> None:
        if self._over_quota(resource, self._count(kind, project_id=self.project_id)):
            # neutron/quota/resource_registry + neutron_lib OverQuota (409)
            raise Conflict(f"Quota exceeded for resources: ['{kind.replace('floating_ip', 'floatingip')}'].")

    def _create_network(self, parent, **a) -> dict:
        self._neutron_quota("networks", "network")
        return self._put("network", {**a, "project_id": self.project_id, "tags": []})

    def _create_subnet(self, parent, **a) -> dict:
        self._get("network", a.get("network_id"))
        if "cidr" not in a:
            raise BadRequest("Bad subnets request: a cidr must be specified.")
        return self._put("subnet", {**a, "project_id": self.project_id, "tags": []})

    def _create_router(self, parent, **a) -> dict:
        self._neutron_quota("routers", "router")
        gw = (a.get("external_gateway_info") or {}).get("network_id")
        if gw is not None and not self._get("network", gw)["is_router_external"]:
            raise BadRequest(f"Bad router request: Network {gw} is not a valid external network.")
        return self._put("router", {**a, "project_id": self.project_id, "tags": []})

    def _attach(self, router_id: str, subnet_id: str) -> None:
        sub = self.store["subnet"][subnet_id]
        gateway = str(next(ipaddress.ip_network(sub["cidr"]).hosts()))
        self._put(
            "port",
            {
                "network_id": sub["network_id"],
                "fixed_ips": [{"subnet_id": subnet_id, "ip_address": gateway}],
                "device_id": router_id,
                "device_owner": "network:router_interface",
                "status": "ACTIVE",
                "project_id": sub["project_id"],
            },
        )

    def _interfaces(self, router_id: str) -> list[dict]:
        return [
            p
            for p in self.store["port"].values()
            if p["device_id"] == router_id and p["device_owner"] == "network:router_interface"
        ]

    def _create_port(self, parent, **a) -> dict:
        self._neutron_quota("ports", "port")
        net = self._get("network", a.get("network_id"))
        for sg in a.get("security_group_ids") or []:
            self._get("security_group", sg)  # neutron SecurityGroupNotFound (404)
        fixed = []
        for want in a.get("fixed_ips") or []:
            sub = self._get("subnet", want["subnet_id"])
            if sub["network_id"] != net["id"]:
                raise BadRequest(f"Invalid input for operation: Failed to create port on network {net['id']}")
            fixed.append({"subnet_id": sub["id"], "ip_address": self._free_address(sub)})
        values = {**a, "fixed_ips": fixed, "project_id": self.project_id, "tags": [], "status": "DOWN"}
        return self._put("port", values)

    def _free_address(self, sub: dict) -> str:
        used = {ip["ip_address"] for p in self.store["port"].values() for ip in p["fixed_ips"]}
        for host in itertools.islice(ipaddress.ip_network(sub["cidr"]).hosts(), 1, None):
            if str(host) not in used:
                return str(host)
        raise Conflict(
            f"No more IP addresses available on network {sub['network_id']}."
        )  # IpAddressGenerationFailure

    def _create_security_group(self, parent, **a) -> dict:
        self._neutron_quota("security_groups", "security_group")
        item = self._put("security_group", {**a, "project_id": self.project_id, "tags": []})
        # Neutron gives every new group its two egress rules.
        item["security_group_rules"] = [
            {
                "id": self._new_id("rule"),
                "direction": "egress",
                "ethertype": e,
                "protocol": None,
                "port_range_min": None,
                "port_range_max": None,
                "remote_ip_prefix": None,
                "remote_group_id": None,
            }
            for e in ("IPv4", "IPv6")
        ]
        return item

    def _create_security_group_rule(self, parent, **a) -> dict:
        sg = self._get("security_group", a.get("security_group_id"))
        rule = {k: a.get(k, ATTRIBUTES["security_group_rule"][k]) for k in ATTRIBUTES["security_group_rule"]}
        same = [
            r
            for r in sg["security_group_rules"]
            if all(r.get(k) == rule[k] for k in rule if k != "security_group_id")
        ]
        if same:
            # neutron/db/securitygroups_db.py SecurityGroupRuleExists (409)
            raise Conflict(f"Security group rule already exists. Rule id is {same[0]['id']}.")
        rule["id"] = self._new_id("rule")
        sg["security_group_rules"].append({k: v for k, v in rule.items() if k != "security_group_id"})
        return rule

    def _create_floating_ip(self, parent, **a) -> dict:
        self._neutron_quota("floating_ips", "floating_ip")
        ext = self._get("network", a.get("floating_network_id"))
        if not ext["is_router_external"]:
            raise BadRequest(f"Bad floatingip request: Network {ext['id']} is not a valid external network.")
        taken = {f["floating_ip_address"] for f in self.store["floating_ip"].values()}
        address = next(str(h) for h in ipaddress.ip_network("203.0.113.0/24").hosts() if str(h) not in taken)
        values = {**a, "floating_ip_address": address, "project_id": self.project_id, "tags": []}
        port_id = values.pop("port_id", None)
        item = self._put("floating_ip", values)
        if port_id:
            self._associate(item, port_id)
        return item

    def _associate(self, fip: dict, port_id: str | None) -> None:
        if port_id is None:
            fip.update(port_id=None, fixed_ip_address=None, status="DOWN")
            return
        port = self._get("port", port_id)
        subnets = _subnets(port)
        reachable = any(
            set(subnets) & set(_subnets(p))
            and (self.store["router"][p["device_id"]]["external_gateway_info"] or {}).get("network_id")
            == fip["floating_network_id"]
            for p in self.store["port"].values()
            if p["device_owner"] == "network:router_interface" and p["device_id"] in self.store["router"]
        )
        if not reachable:
            # neutron/db/l3_db.py ExternalGatewayForFloatingIPNotFound (404)
            raise NotFound(
                f"External network {fip['floating_network_id']} is not reachable from subnet "
                f"{subnets[0] if subnets else '?'}.  Therefore, cannot associate Port {port_id} "
                "with a Floating IP."
            )
        fip.update(port_id=port_id, fixed_ip_address=port["fixed_ips"][0]["ip_address"])

    def _create_keypair(self, parent, **a) -> dict:
        if any(k["name"] == a.get("name") for k in self.store["keypair"].values()):
            # nova/api/openstack/compute/keypairs.py KeyPairExists (409)
            raise Conflict(f"Key pair '{a.get('name')}' already exists.")
        return self._put(
            "keypair", {**a, "id": a["name"], "fingerprint": f"fp:{len(a.get('public_key', ''))}"}
        )

    def _create_server_group(self, parent, **a) -> dict:
        if self._over_quota("server_groups", len(self.store["server_group"])):
            raise Forbidden("Quota exceeded, too many server groups.")
        return self._put("server_group", {**a, "policies": [a.get("policy")], "member_ids": []})

    def _create_server(self, parent, **a) -> dict:
        flavor = self.store["flavor"].get(a.get("flavor_id"))
        if flavor is None:
            raise BadRequest(f"Flavor {a.get('flavor_id')} could not be found.")
        image_id = a.get("image_id") or next(
            (b["uuid"] for b in a.get("block_device_mapping_v2") or [] if b.get("boot_index") == 0), None
        )
        if image_id not in self.store["image"]:
            raise BadRequest(f"Image {image_id} could not be found.")
        if a.get("key_name") and not any(k["name"] == a["key_name"] for k in self.store["keypair"].values()):
            raise BadRequest("Invalid key_name provided.")  # nova/api/openstack/compute/servers.py
        servers = list(self.store["server"].values())
        flavors = {f["name"]: f for f in self.store["flavor"].values()}
        if self._over_quota("instances", len(servers)):
            raise Forbidden(
                "Quota exceeded for instances: Requested 1, but already used "
                f"{len(servers)} of {self.quotas['instances']} instances"
            )
        cores = sum(flavors[s["flavor"]["original_name"]]["vcpus"] for s in servers)
        if self._over_quota("cores", cores, flavor["vcpus"]):
            raise Forbidden(
                f"Quota exceeded for cores: Requested {flavor['vcpus']}, but already used "
                f"{cores} of {self.quotas['cores']} cores"
            )
        group = (a.get("scheduler_hints") or {}).get("group")
        if group is not None:
            g = self._get("server_group", group)
            if self._over_quota("server_group_members", len(g["member_ids"])):
                raise Forbidden("Quota exceeded, too many servers in group")
        ports = []
        for net in a.get("networks") or []:
            port = self._get("port", net.get("port"))
            if port["device_id"]:
                # nova/network/neutron.py PortInUse (409)
                raise Conflict(f"Port {port['id']} is still in use.")
            ports.append(port)
        rid = self._new_id("server")
        for port in ports:
            port.update(device_id=rid, device_owner="compute:nova", status="ACTIVE")
        if group is not None:
            self.store["server_group"][group]["member_ids"].append(rid)
        addresses: dict[str, list] = {}
        for port in ports:
            net_name = self.store["network"][port["network_id"]]["name"]
            addresses.setdefault(net_name, []).extend(
                {"addr": ip["ip_address"], "version": 4, "OS-EXT-IPS:type": "fixed"}
                for ip in port["fixed_ips"]
            )
        item = self._put(
            "server",
            {
                "id": rid,
                "name": a.get("name"),
                "metadata": a.get("metadata") or {},
                "flavor": {"original_name": flavor["name"], "vcpus": flavor["vcpus"], "ram": flavor["ram"]},
                "key_name": a.get("key_name"),
                "image": {"id": image_id},
                "addresses": addresses,
                "status": "BUILD",
                "task_state": "spawning",
            },
        )
        self._later("server", rid, {"status": "ACTIVE", "task_state": None, "vm_state": "active"})
        return item

    def _create_volume(self, parent, **a) -> dict:
        """cinder/volume/api.py create, as Cinder 29 answers: over the volume count or gigabytes
        quota is 413 (VolumeLimitExceeded / VolumeSizeExceedsAvailableQuota)."""
        vols = list(self.store["volume"].values())
        if self._over_quota("volumes", len(vols)):
            raise Forbidden(
                f"VolumeLimitExceeded: Maximum number of volumes allowed ({self.quotas['volumes']}) exceeded"
            )
        used = sum(v["size"] for v in vols)
        if self._over_quota("volume_gigabytes", used, int(a.get("size", 1))):
            raise Forbidden(
                f"Requested volume or snapshot exceeds allowed gigabytes quota. Requested {a.get('size')}G, "
                f"quota is {self.quotas['volume_gigabytes']}G and {used}G has been consumed."
            )
        item = self._put("volume", {**a, "status": "creating"})
        self._later("volume", item["id"], {"status": "available"})
        return item

    def attach_volume(self, server_id: str, volume_id: str) -> None:
        """Test control: Nova attaches the volume to the server (as os-volume_attachments does)."""
        with self._lock:
            self._get("server", server_id)
            v = self._get("volume", volume_id)
            v.update(status="in-use", attachments=[{"server_id": server_id, "volume_id": volume_id}])

    def add_service_load_balancer(
        self, name: str, description: str, subnet_id: str, fip: str | None = None
    ) -> dict:
        """Test control: what the cloud controller makes for a LoadBalancer Service — an Octavia
        load balancer whose VIP is a port on `subnet_id` (Octavia's `octavia-lb-<id>`, device owner
        Octavia), ACTIVE, and a floating IP on it described `fip` when given."""
        with self._lock:
            sub = self._get("subnet", subnet_id)
            lb = self._put(
                "load_balancer",
                {
                    "name": name,
                    "description": description,
                    "tags": [name],
                    "provisioning_status": "ACTIVE",
                    "vip_subnet_id": sub["id"],
                    "vip_network_id": sub["network_id"],
                    "project_id": self.project_id,
                },
            )
            port = self._create_port(
                None,
                name=f"octavia-lb-{lb['id']}",
                network_id=sub["network_id"],
                fixed_ips=[{"subnet_id": sub["id"]}],
                device_owner="Octavia",
                device_id=f"lb-{lb['id']}",
            )
            lb.update(vip_port_id=port["id"], vip_address=port["fixed_ips"][0]["ip_address"])
            if fip is not None:
                ext = next(n for n in self.store["network"].values() if n.get("is_router_external"))
                made = self._create_floating_ip(None, floating_network_id=ext["id"], description=fip)
                self._associate(made, port["id"])
            return copy.deepcopy(lb)

    def _create_share(self, parent, **a) -> dict:
        if self._over_quota("shares", len(self.store["share"])):
            raise Forbidden(
                "Quota exceeded for shares"
            )  # manila/share/api.py ShareLimitExceeded (413 upstream)
        a = dict(a)
        if "share_proto" in a:  # the API's name of openstacksdk's share_protocol
            a["share_protocol"] = a.pop("share_proto")
        item = self._put("share", {**a, "status": "creating"})
        self._later("share", item["id"], {"status": "available"})
        return item

    def _create_access_rule(self, parent, **a) -> dict:
        share = self._get("share", _id(parent))
        if share["status"] != "available":
            # manila/share/api.py allow_access: InvalidShare (400)
            raise BadRequest(
                f"Invalid share: Share {share['id']} status must be available, but current "
                f"status is: {share['status']}."
            )
        if any(
            r["share_id"] == share["id"] and r["access_to"] == a.get("access_to")
            for r in self.store["access_rule"].values()
        ):
            raise BadRequest(
                f"Share access {a.get('access_type')}:{a.get('access_to')} exists."
            )  # ShareAccessExists
        item = self._put("access_rule", {**a, "share_id": share["id"], "state": "queued_to_apply"})
        self._later("access_rule", item["id"], {"state": "active", "access_key": f"AQD-{item['id']}-key=="})
        return item

    def _create_recordset(self, parent, **a) -> dict:
        zone = self._get("zone", _id(parent))
        if not str(a.get("name", "")).endswith(zone["name"]):
            raise BadRequest("Invalid recordset: the name is not in the zone")
        if any(
            r["zone_id"] == zone["id"] and r["name"] == a.get("name") and r["type"] == a.get("type")
            for r in self.store["recordset"].values()
        ):
            raise Conflict("Duplicate RecordSet")  # designate DuplicateRecordSet (409)
        item = self._put("recordset", {**a, "zone_id": zone["id"], "status": "PENDING"})
        self._later("recordset", item["id"], {"status": "ACTIVE"})
        return item

    def _create_application_credential(self, parent, **a) -> dict:
        return self._put("application_credential", a)

    # -- deletes, per kind -----------------------------------------------------------------------

    def _delete_plain(self, kind: str, rid: str) -> None:
        self._forget(kind, rid)

    def _delete_network(self, kind: str, rid: str) -> None:
        if any(p["network_id"] == rid for p in self.store["port"].values()):
            raise Conflict(
                f"Unable to complete operation on network {rid}. There are one or more ports still "
                "in use on the network."
            )  # neutron NetworkInUse (409)
        for sub in [s for s in self.store["subnet"].values() if s["network_id"] == rid]:
            self._forget("subnet", sub["id"])
        self._forget(kind, rid)

    def _delete_subnet(self, kind: str, rid: str) -> None:
        if any(rid in _subnets(p) for p in self.store["port"].values()):
            raise Conflict(
                f"Unable to complete operation on subnet {rid}: One or more ports have an IP "
                "allocation from this subnet."
            )  # neutron SubnetInUse (409)
        self._forget(kind, rid)

    def _delete_router(self, kind: str, rid: str) -> None:
        if self._interfaces(rid):
            raise Conflict(f"Router {rid} still has ports")  # neutron RouterInUse (409)
        self._forget(kind, rid)

    def _delete_security_group(self, kind: str, rid: str) -> None:
        if any(rid in p["security_group_ids"] for p in self.store["port"].values()):
            raise Conflict(f"Security Group {rid} in use.")  # neutron SecurityGroupInUse (409)
        self._forget(kind, rid)

    def _delete_security_group_rule(self, kind: str, rid: str) -> None:
        for sg in self.store["security_group"].values():
            sg["security_group_rules"] = [r for r in sg["security_group_rules"] if r["id"] != rid]

    def _delete_port(self, kind: str, rid: str) -> None:
        for f in self.store["floating_ip"].values():
            if f["port_id"] == rid:
                f.update(port_id=None, fixed_ip_address=None)
        self._forget(kind, rid)

    def _delete_server(self, kind: str, rid: str) -> None:
        s = self.store["server"][rid]
        s.update(task_state="deleting")
        self._later("server", rid, {"__gone__": 1})

    def _delete_volume(self, kind: str, rid: str) -> None:
        v = self.store["volume"][rid]
        if v["status"] not in ("available", "error", "error_restoring", "error_extending", "error_managing"):
            # cinder/volume/api.py delete: InvalidVolume (400)
            raise BadRequest(
                "Invalid volume: Volume status must be available or error or error_restoring or "
                "error_extending or error_managing and must not be migrating, attached, belong to "
                "a group, have snapshots, awaiting a transfer, or be disassociated from snapshots "
                "after volume transfer."
            )
        v.update(status="deleting")
        self._later("volume", rid, {"__gone__": 1})

    def _delete_load_balancer(self, kind: str, rid: str) -> None:
        """Cascade (CloudAPI deletes with it): PENDING_DELETE, then gone with its VIP port, whose
        floating IP Neutron disassociates (it stays in the project)."""
        lb = self.store["load_balancer"][rid]
        if lb["provisioning_status"].startswith("PENDING_"):
            # octavia/api/v2/controllers/load_balancer.py: immutable while pending (409)
            raise Conflict(f"Invalid state {lb['provisioning_status']} of loadbalancer resource {rid}")
        lb.update(provisioning_status="PENDING_DELETE")
        if lb.get("vip_port_id") in self.store["port"]:
            self._delete_port("port", lb["vip_port_id"])
        self._later("load_balancer", rid, {"__gone__": 1})

    def _delete_server_group(self, kind: str, rid: str) -> None:
        self._forget(kind, rid)

    def _delete_share(self, kind: str, rid: str) -> None:
        s = self.store["share"][rid]
        if s["status"] not in ("available", "error"):
            # manila/share/api.py delete: InvalidShare (403 upstream for a busy share)
            raise Forbidden(
                f"Invalid share: Share status must be one of ('available', 'error'), not {s['status']}"
            )
        s.update(status="deleting")
        for r in [r for r in self.store["access_rule"].values() if r["share_id"] == rid]:
            self._forget("access_rule", r["id"])
        self._later("share", rid, {"__gone__": 1})


def _id(value: Any) -> Any:
    return getattr(value, "id", value)


def _subnets(port: dict) -> list[str]:
    return [ip["subnet_id"] for ip in port.get("fixed_ips") or []]


def _title(kind: str) -> str:
    return kind.replace("_", " ").capitalize()
