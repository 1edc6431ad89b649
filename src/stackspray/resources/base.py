"""What every resource kind shares: the observed resource (`Res`), the planned action (`Action`),
the observation of a cluster (`Observed`), the listings kinds observe from (`Lookups`) and the
context an apply runs in (`ApplyContext`).

A kind is a module of this package with, side by side (as cluster-api-provider-openstack keeps
ReconcileRouter and DeleteRouter in pkg/cloud/services/networking/router.go):

- `KIND` (its name in plans), `DEPENDS_ON` (kinds that must exist before it is made),
  `LISTINGS` (the `Lookups` its observation reads);
- `observe(view, spec, obs)`: fill its part of `Observed` from the listings;
- `plan(spec, obs) -> list[Action]`: pure; one action per resource, no-ops included;
- `apply(ctx, actions)`: carry out its creates and updates (every create through
  `cloudops.ensure`, so an interrupted run is finished by running again);
- `find_owned(view, cluster, known) -> list[Res]`: every resource of the kind with the cluster's
  exact marks (destroy's look-up);
- `delete(api, action)`: delete one (already gone is fine), used by destroy-cluster and by
  create-cluster's removals alike.

`resources.KINDS` is the ordered registry create, destroy and `--dry-run` walk.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .. import names
from ..cloudapi import CloudAPI
from ..cloudops import PARALLEL, act, concurrently, ensure, read
from ..errors import CloudError, Conflict
from ..names import is_owned
from ..progress import Progress
from ..spec import ClusterSpec

Kind = Literal["create", "update", "delete", "noop", "conflict"]


@dataclass(frozen=True)
class Res:
    """One observed resource: its id, name, whether it carries our ownership mark, and details."""

    id: str
    name: str
    owned: bool = True
    status: str = ""
    detail: dict = field(default_factory=dict)


@dataclass
class Observed:
    """What exists in the cloud for this cluster (by name and ownership marks)."""

    network: Res | None = None
    subnet: Res | None = None
    router: Res | None = None  # detail: {"interfaces": [subnet ids], "gateway": network id}
    # "own": the cluster's `<c>-router` (found, or to create); "existing": `router` is one of the
    # project's (Jetstream2's auto_allocated_router): never ours, only our subnet is attached.
    router_mode: str = "own"
    security_groups: dict[str, Res] = field(default_factory=dict)  # detail: {"rules": [rule tuples]}
    keypair: Res | None = None
    server_groups: dict[str, Res] = field(default_factory=dict)
    server_group_limit: int = -1  # Nova's server_group_members quota (-1: unlimited)
    ports: dict[str, Res] = field(default_factory=dict)  # by name; detail: {"device_id"}
    servers: dict[str, Res] = field(default_factory=dict)  # by name; status; detail: {"flavor", "group"}
    floating_ip: Res | None = None  # detail: {"address", "port_id", "adopted"}
    share: Res | None = None
    access_rule: Res | None = None
    dns_record: Res | None = None  # the ingress's A record; detail: {"zone", "zone_id", "records"}
    stale_dns: list[Res] = field(default_factory=list)  # the cluster's records the spec no longer names


@dataclass(frozen=True)
class Action:
    kind: Kind
    resource: str  # network, subnet, router, router-interface, security-group, ...
    name: str
    reason: str = ""
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def have(
    acts: list[Action], cluster: str, kind: str, name: str, res: Res | None, what: str = "exists"
) -> bool:
    """Append the action for a resource that may exist: a conflict when it is not the cluster's,
    a no-op when it is; False (nothing appended) when it does not exist."""
    if res is None:
        return False
    if not res.owned:
        acts.append(
            Action(
                "conflict",
                kind,
                name,
                f"a {kind} named {name} exists but is not owned by cluster {cluster}: "
                "rename or delete it, or change the cluster name",
            )
        )
        return True
    if untagged(res):
        acts.append(retag(kind, name, res))
        return True
    acts.append(Action("noop", kind, name, f"{what} ({res.id})"))
    return True


def untagged(res: Res) -> bool:
    """An owned Neutron resource that carries only its description mark: a run was cut short
    between its create and its tagging (tags are a second call). None observed: not Neutron's."""
    tags = res.detail.get("tags")
    if not res.owned or tags is None:
        return False
    return names.OWNER_TAG not in tags or not any(t.startswith(f"{names.META_CLUSTER}=") for t in tags)


def retag(kind: str, name: str, res: Res) -> Action:
    return Action(
        "update",
        kind,
        name,
        "carries only its description mark (a run was cut short before tagging it): tag it",
        {"retag": True, "id": res.id},
    )


def pick(items: list, kind: str, cluster: str) -> Res | None:
    """The one resource of this name: the owned one if any (more than one owned: Conflict),
    else the first unowned one, which the planner reports as a conflict."""
    if not items:
        return None
    owned = [i for i in items if is_owned(i, cluster)]
    if len(owned) > 1:
        raise Conflict(
            f"{len(owned)} {kind}s named {owned[0].name} carry cluster {cluster}'s mark "
            f"({', '.join(i.id for i in owned)}): delete the extra one and re-run"
        )
    chosen = owned[0] if owned else items[0]
    return Res(
        chosen.id,
        chosen.name,
        bool(owned),
        getattr(chosen, "status", "") or "",
        {"tags": list(chosen.tags or [])},
    )


def delete_by_id(api: CloudAPI, kind: str, a: Action, what: str | None = None) -> None:
    """Delete the resource an action names by id; already gone is fine."""
    act(lambda: api.delete(kind, a.detail["id"]), what or f"delete {a.name}")


# -- listings ------------------------------------------------------------------------------------


class Lookups:
    """The cloud's listings an observation judges, each made at most once (memoized, thread-safe)
    and the ones a command needs made at once (`prefetch`). Kinds read them by key; a key is a
    method of this class."""

    def __init__(self, api: CloudAPI, cluster: str, spec: ClusterSpec | None = None) -> None:
        self.api = api
        self.cluster = cluster
        self.spec = spec
        self._got: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._got:
                self._got[key] = getattr(self, f"_{key}")()
            return self._got[key]

    def put(self, key: str, value: Any) -> None:
        """A listing the caller has just made itself (e.g. the servers after a boot)."""
        with self._guard:
            self._got[key] = value

    def prefetch(self, keys: set[str]) -> None:
        concurrently({k: (lambda k=k: self.get(k)) for k in sorted(keys)})

    def _list(self, kind: str, what: str, **filters: Any) -> list:
        return read(lambda: self.api.list(kind, **filters), what)

    def _networks(self) -> list:
        return self._list("network", "list networks")

    def _subnets(self) -> list:
        return self._list("subnet", "list subnets")

    def _routers(self) -> list:
        return self._list("router", "list routers")

    def _ports(self) -> list:
        return self._list("port", "list ports")

    def _security_groups(self) -> list:
        return self._list("security_group", "list security groups")

    def _server_groups(self) -> list:
        return self._list("server_group", "list server groups")

    def _servers(self) -> list:
        return owned_or_named_servers(self.api, self.cluster)

    def _floating_ips(self) -> list:
        return self._list("floating_ip", "list floating IPs")

    def _volumes(self) -> list:
        if not self.api.has_service("block-storage"):
            return []
        return self._list("volume", "list volumes")

    def _load_balancers(self) -> list:
        if not self.api.has_service("load-balancer"):
            return []
        return self._list("load_balancer", "list load balancers")

    def _shares(self) -> list:
        if not self.api.has_service("shared-file-system"):
            return []
        return self._list("share", "list shares", details=True)

    def _keypair(self):
        return read(lambda: self.api.find("keypair", self.spec.keypair.name), "find keypair")

    def _has_dns(self) -> bool:
        return self.api.has_service("dns")

    def _server_group_limit(self) -> int:
        return int(read(lambda: self.api.compute_quota(), "read compute quota").server_group_members)


def owned_or_named_servers(api: CloudAPI, cluster: str) -> list:
    """The servers whose names start with `<cluster>-` (the caller judges their marks)."""
    return read(lambda: api.list("server", name=f"^{re.escape(cluster)}-"), "list servers")


# -- applying ------------------------------------------------------------------------------------


class ApplyContext:
    """What the kinds' `apply` share during one create-cluster: the cloud, the spec, the cluster's
    folder (ids of unmarked resources are recorded there at once), progress, the ids of what
    exists (seeded from the observation, added to as things are made) and one pool."""

    def __init__(self, api: CloudAPI, spec: ClusterSpec, cdir, progress: Progress, obs: Observed) -> None:
        self.api = api
        self.spec = spec
        self.cdir = cdir
        self.say = progress
        self.obs = obs
        self.tag = names.cluster_tag(spec.name)
        self.tags = names.owner_tags(spec.name)
        self.ids: dict[str, str] = {}
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL)
        self._lock = threading.Lock()
        self._found: dict[str, Any] = {}
        # The cluster's servers as the last boot wait listed them (None: no server was booted).
        self.listed_servers: list | None = None

    def remember(self, key: str, rid: str) -> None:
        with self._lock:
            self.ids[key] = rid

    def record_in_state(self, section: str, name: str, rid: str) -> None:
        """Record an id in the state file at once (for resources that carry no ownership mark)."""
        with self._lock:
            state = self.cdir.load()
            getattr(state, section)[name] = rid
            self.cdir.save(state)

    def looked_up(self, key: str, find: Callable[[], Any]) -> Any:
        """One look-up per run of what many resources need (the image, each flavor)."""
        with self._lock:
            if key in self._found:
                return self._found[key]
        value = read(find, f"find {key}")
        with self._lock:
            return self._found.setdefault(key, value)

    def tag_resource(self, kind: str, res) -> None:
        """Add the cluster's tags to a Neutron resource (its description mark was set at creation)."""
        current = set(getattr(res, "tags", None) or [])
        if set(self.tags) - current:
            act(lambda: self.api.set_tags(kind, res, current | set(self.tags)), f"tag {res.name}")

    def neutron_ensure(self, kind: str, label: str, name: str, create: Callable[[], Any], **kw: Any):
        """Find the cluster's `kind` named `name` (by its mark) or create it; tag it."""
        res, created = ensure(
            lambda: next(
                (i for i in self.api.list(kind, name=name) if i.name == name and is_owned(i, self.spec.name)),
                None,
            ),
            create,
            f"{label} {name}",
            **kw,
        )
        self.tag_resource(kind, res)
        if created:
            self.say(f"created {label} {name}")
        return res

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def results(futures: list[Future]) -> list:
    """Wait for every job; raise the first failure only after all finished (none is stranded)."""
    out, errors = [], []
    for f in futures:
        try:
            out.append(f.result())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    if errors:
        if len(errors) > 1:
            raise CloudError("; ".join(str(e) for e in errors)) from errors[0]
        raise errors[0]
    return out
