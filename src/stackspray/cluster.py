"""The cluster commands as library calls: plan, create (`converge`), status, destroy.

Each observes the cloud, computes with pure functions (`plan.plan`, `quota.check`, `cost`) and
only then acts, and returns a typed result (`ConvergeResult`, `StatusResult`, `DestroyResult`)
that the command line renders as text or JSON. Nothing here prints except through the
`Progress` it is given.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import apply, certs, cost, gpu, names, schedule, secret_files
from .apply import server_record
from .backups import KEY_FILE as BACKUP_KEY
from .backups import BackupStore
from .cloudapi import CloudAPI, connect_api
from .cloudops import flavors_by_name, read, wait_until
from .cluster_state import ClusterState
from .converge import ConvergeResult, PlanResult, create_cluster, plan_cluster
from .errors import CloudError, ClusterNotFound
from .kube import Kube, kubelet_version
from .observe import floating_by_fixed, observe_owned, owned_servers
from .plan import changes, plan_destroy
from .progress import Progress
from .resources import load_balancer, volume
from .state import ClusterDir

__all__ = [
    "ConvergeResult",
    "DestroyResult",
    "PlanResult",
    "StatusResult",
    "cluster_status",
    "create_cluster",
    "destroy_cluster",
    "plan_cluster",
]

log = logging.getLogger("stackspray")


@dataclass
class StatusResult:
    """Every node of a cluster with its role, flavor, status, addresses and cost."""

    cluster: str
    cloud: str
    nodes: list[dict]
    su_per_hour: float
    su_per_month: float
    su_saved_per_hour: float
    su_rates: dict = dataclasses.field(default_factory=dict)  # family -> {su_per_vcpu_hour, source}
    certificates: list = dataclasses.field(default_factory=list)  # certs.Expiry dicts
    backups: dict = dataclasses.field(default_factory=dict)  # count, last (ISO time), location
    floating_ip: dict | None = None
    share: dict | None = None
    ingress: dict | None = None
    hibernation: dict | None = None  # phase, since, active_workers, snapshot (None: awake)
    kubernetes: dict | None = None  # server, kubelets {node: version}, behind, note
    # The Cinder volumes Kubernetes made: count, gb, in_use, available, items, mark, shared_mark;
    # or note (no block storage in this cloud).
    volumes: dict = dataclasses.field(default_factory=dict)
    # Octavia load balancers the cloud controller made for LoadBalancer Services: count, items
    # (name, service, status, vip_address, floating_ip), mark, shared_mark; or note.
    load_balancers: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def cluster_status(
    name: str, *, cloud: str | None = None, root: Path | None = None, api: CloudAPI | None = None
) -> StatusResult:
    """Every node with role, flavor, status, IPs and SU/hour; the share and the floating IP."""
    cdir = ClusterDir(name, root)
    state = cdir.load()
    cloud = cloud or state.cloud or os.environ.get("OS_CLOUD")
    if not cloud:
        raise ClusterNotFound(f"no state for cluster {name!r} in {cdir.path} and no --cloud/OS_CLOUD given")
    rates = cost.rates_for(state.su_rates)
    api = api or connect_api(cloud)
    flavors = flavors_by_name(api)
    nodes = []
    fips = floating_by_fixed(api, name)
    for s in owned_servers(api, name):
        rec = dataclasses.asdict(server_record(s, fips))
        vcpus = flavors[rec["flavor"]].vcpus if rec["flavor"] in flavors else 0
        rec.update(
            name=s.name,
            role=rec.pop("group") or "?",
            su_per_hour=cost.su_per_hour(rec["flavor"], vcpus, s.status, rates),
            su_per_hour_if_active=cost.su_if_active(rec["flavor"], vcpus, rates),
        )
        nodes.append(rec)
    if not nodes and not state:
        raise ClusterNotFound(f"cluster {name!r}: no servers in cloud {cloud!r} and no state in {cdir.path}")
    nodes.sort(key=lambda n: (n["role"] != "control-plane", n["name"]))
    now = sum(n["su_per_hour"] for n in nodes)
    full = sum(n["su_per_hour_if_active"] for n in nodes)
    return StatusResult(
        cluster=name,
        cloud=cloud,
        nodes=nodes,
        su_per_hour=now,
        su_per_month=now * cost.HOURS_PER_MONTH,
        su_saved_per_hour=full - now,
        su_rates=rates.used([n["flavor"] for n in nodes]),
        certificates=[e.to_dict() for e in certs.check(state.kubeconfig, name)]
        if state.hibernation is None or state.hibernation.phase == "waking"
        else [certs.Expiry(certs.SERVING, "unknown", detail="not read: the cluster is hibernated").to_dict()],
        backups=_backups_summary(cdir),
        floating_ip=dataclasses.asdict(state.floating_ip) if state.floating_ip else None,
        share=dataclasses.asdict(state.share) if state.share else None,
        ingress={"url": state.ingress.url, "address": state.ingress.address} if state.ingress else None,
        hibernation=dataclasses.asdict(state.hibernation) if state.hibernation else None,
        kubernetes=_versions(state),
        volumes=kubernetes_volumes(api, name, state),
        load_balancers=kubernetes_load_balancers(api, name, state),
    )


def kubernetes_volumes(api: CloudAPI, name: str, state: ClusterState) -> dict:
    """The Cinder volumes Kubernetes made for the cluster (Cinder CSI's mark, resources/volume.py):
    how many, their gigabytes (counted in the project's volume quota), in use or available."""
    if not api.has_service("block-storage"):
        return {"note": "this cloud has no block storage (Cinder): no volumes"}
    mark = state.kube_mark(name)
    items = [
        {"id": v.id, "name": v.name, **volume.describe(v)}
        for v in read(lambda: api.list("volume"), "list volumes")
        if names.made_by_kubernetes(v, mark)
    ]
    return {
        "count": len(items),
        "gb": sum(i["size_gb"] for i in items),
        "in_use": sum(1 for i in items if i["status"] == "in-use"),
        "available": sum(1 for i in items if i["status"] == "available"),
        "items": sorted(items, key=lambda i: i["name"] or i["id"]),
        "mark": mark,
        "shared_mark": mark == names.KUBESPRAY_DEFAULT_CLUSTER_NAME,
    }


def kubernetes_load_balancers(api: CloudAPI, name: str, state: ClusterState) -> dict:
    """The Octavia load balancers the cloud controller made for the cluster's LoadBalancer
    Services (resources/load_balancer.py): each with its Service, VIP and floating IP."""
    if not api.has_service("load-balancer"):
        return {
            "note": "this cloud has no load-balancer service (Octavia): LoadBalancer Services stay <pending>"
        }
    mark = state.kube_mark(name)
    fips = read(lambda: api.list("floating_ip"), "list floating IPs")
    items = [
        {"id": lb.id, "name": lb.name, **load_balancer.describe(lb, fips)}
        for lb in read(lambda: api.list("load_balancer"), "list load balancers")
        if names.made_for_service(lb, mark)
    ]
    return {
        "count": len(items),
        "items": sorted(items, key=lambda i: i["name"]),
        "mark": mark,
        "shared_mark": mark == names.KUBESPRAY_DEFAULT_CLUSTER_NAME,
    }


def _versions(state: ClusterState) -> dict | None:
    """The API server's version and every Node's kubelet version, the workers an upgrade left
    behind while shelved, and each GPU node's GPUs (its flavor's, and those it offers pods); when
    the API cannot be asked, says so (never an empty "all fine")."""
    if not state.kubeconfig:
        return None
    out: dict = {
        "server": None,
        "kubelets": {},
        "behind": list(state.upgrade_behind),
        "gpus": {},
        "note": None,
    }
    if state.hibernation is not None and state.hibernation.phase != "waking":
        out["note"] = "not read: the cluster is hibernated"
        return out
    try:
        kube = Kube(state.kubeconfig)
        out["server"] = kube.server_version()
        for n in kube.list_json("nodes"):
            out["kubelets"][n["metadata"]["name"]] = kubelet_version(n) or None
            offer = gpu.node_gpus(n)
            if offer is not None:
                out["gpus"][n["metadata"]["name"]] = offer
    except Exception as exc:  # noqa: BLE001 (whatever stops the read is said, never hidden)
        out["note"] = f"not read: {exc}"
    return out


@dataclass
class DestroyResult:
    """What destroy-cluster deleted (or with `dry_run` would delete), and what it left."""

    cluster: str
    cloud: str
    actions: list[dict]
    deleted: dict[str, int] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)
    log: str | None = None
    dry_run: bool = False
    removed_files: list[str] = field(default_factory=list)  # the deleted resources' secrets
    backups: str | None = None  # where the kept etcd backups are, None when there are none

    def to_dict(self) -> dict:
        return {
            "actions": self.actions,
            "deleted": self.deleted,
            "cloud": self.cloud,
            "left": self.left,
            "log": self.log,
            "removed_files": self.removed_files,
        }


def destroy_cluster(
    name: str,
    *,
    cloud: str | None = None,
    progress: Progress | None = None,
    root: Path | None = None,
    confirm: Callable[[str], bool] | None = None,
    dry_run: bool = False,
    api: CloudAPI | None = None,
    delete_backups: bool = False,
    delete_volumes: bool = False,
) -> DestroyResult:
    """Delete everything the cluster owns, in dependency order; safe to re-run after interruption.

    Observes with `observe.observe_owned`, plans with `plan.plan_destroy` (printed by the CLI;
    `dry_run` stops there), carries out with `apply.destroy`. The cluster's etcd backups and
    their key stay unless `delete_backups`; the volumes Kubernetes made (Cinder CSI's) stay,
    detached and named, unless `delete_volumes`."""
    progress = progress or Progress()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    cloud = cloud or state.cloud or os.environ.get("OS_CLOUD")
    if not cloud:
        raise ClusterNotFound(
            f"no state for cluster {name!r} in {cdir.path}; give --cloud to search the cloud"
        )
    with cdir.command("destroy-cluster") as run:
        api = api or connect_api(cloud)
        kp = state.keypair
        owned = observe_owned(
            api,
            name,
            server_group_ids=set(state.server_groups.values()),
            keypair=kp.name if kp and kp.uploaded else None,
            kube_cluster_name=state.kube_mark(name),
        )
        actions = plan_destroy(name, owned, delete_volumes=delete_volumes)
        left = _unprovable_keypair(api, name, state, progress)
        kept = [a for a in actions if a.resource == "volume" and a.kind == "noop"]
        left += [f"volume {a.name} ({a.detail['id']}): {a.reason}" for a in kept]
        result = DestroyResult(name, cloud, [a.to_dict() for a in actions], left=left, log=str(run.log))
        result.dry_run = dry_run
        if not changes(actions):
            progress(
                f"cluster {name}: nothing of it is left to delete in cloud {cloud!r}"
                + (f"; {len(kept)} volume(s) Kubernetes made are kept" if kept else "")
            )
            if not dry_run:
                result.backups = _backups_after_destroy(cdir, delete_backups, result, progress)
            return result
        if dry_run:
            return result
        counts: dict[str, int] = {}
        for a in changes(actions):
            counts[a.resource] = counts.get(a.resource, 0) + 1
        listing = ", ".join(f"{n} {k}" for k, n in counts.items())
        if confirm is not None and not confirm(f"delete cluster {name!r} from cloud {cloud!r}: {listing}?"):
            raise CloudError("destroy-cluster cancelled; nothing was deleted")
        result.deleted = apply.destroy(api, actions, progress)
        _say_kept_volumes(api, kept, progress)
        if state:
            state.destroyed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            state.servers = {}
            state.credential = None
            state.kubeconfig = None
            state.hibernation = None
            cdir.save(state)
        result.removed_files = forget_secrets(cdir)
        result.backups = _backups_after_destroy(cdir, delete_backups, result, progress)
        if result.removed_files:
            progress(
                f"removed the secrets of what was deleted: {', '.join(result.removed_files)}; kept "
                f"{cdir.state_file.name} (what was built and when it was destroyed) and logs/"
            )
        _remove_schedules(name, progress)
        progress(f"cluster {name} destroyed")
        return result


def _say_kept_volumes(api: CloudAPI, kept: list, progress: Progress) -> None:
    """The volumes Kubernetes made that destroy kept: detached once their servers are gone
    (Nova detaches a deleted server's volumes), waited for and named with their size."""
    if not kept:
        return
    ids = {a.detail["id"] for a in kept}

    def attached() -> list:
        return [v for v in read(lambda: api.list("volume"), "list volumes") if v.id in ids and v.attachments]

    try:
        wait_until(lambda: None if attached() else True, "kept volumes detached", timeout=120)
    except CloudError as exc:
        progress(f"WARNING: {exc}: {', '.join(v.name or v.id for v in attached())} still attached")
    total = sum(a.detail.get("size_gb", 0) for a in kept)
    progress(
        f"kept {len(kept)} volume(s) Kubernetes made ({total} GB, counted in the project's volume "
        f"quota): {', '.join(a.name for a in kept)} — `openstack volume list` shows them; "
        "destroy-cluster --delete-volumes deletes them"
    )


def _backups_summary(cdir: ClusterDir) -> dict:
    """How many etcd backups the cluster has, the newest one's time, and where they are."""
    store = BackupStore(cdir.path)
    kept = store.list()
    return {"count": len(kept), "last": kept[-1].created if kept else None, "location": str(store.dir)}


def _backups_after_destroy(
    cdir: ClusterDir, delete: bool, result: DestroyResult, progress: Progress
) -> str | None:
    """The cluster's etcd backups (and their key) are kept and named, or deleted when asked."""
    store = BackupStore(cdir.path)
    kept = store.list()
    if delete:
        for path in (store.dir, store.key_file):
            if path.exists():
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                result.removed_files.append(str(path.relative_to(cdir.path)))
        return None
    if not kept:
        return None
    progress(
        f"kept {len(kept)} etcd backups in {store.dir} and their key {store.key_file} (0600): a new "
        f"cluster can be restored from them; destroy-cluster --delete-backups removes them"
    )
    return str(store.dir)


def forget_secrets(cdir: ClusterDir) -> list[str]:
    """After a destroy: remove the files that hold secrets of the deleted resources (their
    folder-relative paths); the state file, the logs and the etcd backups' key stay."""
    removed = []
    for rel in secret_files.FILES:
        path = cdir.path / rel
        if path.exists():
            path.unlink()
            removed.append(rel)
    if cdir.secrets.is_dir():
        for path in sorted(cdir.secrets.iterdir()):
            if path.is_file() and path != cdir.path / BACKUP_KEY:
                path.unlink()
                removed.append(str(path.relative_to(cdir.path)))
    return removed


def _unprovable_keypair(api: CloudAPI, name: str, state: ClusterState, progress: Progress) -> list[str]:
    """Without a state file stackspray cannot tell a keypair it uploaded (`<name>-key`) from one
    of the same name the user made (keypairs carry no tags): never delete it then, say so."""
    if state.keypair:
        return []
    kp = read(lambda: api.find("keypair", names.keypair(name)), "find keypair")
    if kp is None:
        return []
    progress(
        f"keypair {kp.name} is left: with no state file stackspray cannot tell whether it uploaded it; "
        f"if it did, `openstack keypair delete {kp.name}`"
    )
    return [f"keypair {kp.name}"]


def _remove_schedules(name: str, progress: Progress) -> None:
    """A destroyed cluster's scheduled scale/refresh jobs and its autoscaler would fail every
    time: remove them."""
    try:
        service = schedule.remove_service(name, names.AUTOSCALE_JOB)
        removed = schedule.remove(name)
    except schedule.ScheduleError as exc:
        progress(f"could not check for scheduled jobs of {name}: {exc}")
        return
    if service:
        progress(f"removed the autoscaler ({', '.join(service)})")
    if removed:
        progress(f"removed scheduled jobs: {', '.join(removed)}")
