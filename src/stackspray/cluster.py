"""The cluster commands as library calls: plan, create, status, destroy.

Each observes the cloud, computes with pure functions (`plan.plan`, `quota.check`, `cost`) and
only then acts. `tasks.py` parses flags and prints; nothing here prints except through the
`Progress` it is given.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import openstack

from . import cost, kubespray, quota, share
from .apply import Applier, Progress, server_record
from .cloudops import act, read, wait_until
from .errors import CloudError, ClusterNotFound, SpecError, StackSprayError
from .observe import META_CLUSTER, catalog, is_owned, observe
from .plan import Action, changes, cluster_tag, conflicts, plan
from .spec import CONTROL_PLANE, CloudCatalog, ClusterSpec, check_against_cloud
from .state import ClusterDir

log = logging.getLogger("stackspray")


def connect(cloud: str):
    """openstacksdk connection to a clouds.yaml entry, with errors that say what to do."""
    try:
        conn = openstack.connect(cloud=cloud)
        conn.authorize()
        return conn
    except openstack.exceptions.ConfigException as exc:
        raise CloudError(
            f"cloud {cloud!r}: not found in clouds.yaml ({exc}); set OS_CLOUD or `cloud:`"
        ) from exc
    except Exception as exc:  # keystoneauth errors
        raise CloudError(f"cloud {cloud!r}: cannot authenticate: {exc}") from exc


def owned_servers(conn, name: str) -> list:
    """The cluster's servers: named for it and carrying its metadata mark."""
    return [
        s
        for s in read(lambda: list(conn.compute.servers(name=f"^{name}-")), "list servers")
        if (s.metadata or {}).get(META_CLUSTER) == name
    ]


@contextmanager
def run_log(cdir: ClusterDir, command: str):
    """Log this run to inventories/<name>/logs/<command>-<UTC time>.log."""
    cdir.logs.mkdir(parents=True, exist_ok=True)
    path = cdir.logs / f"{command}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def compute_plan(conn, spec: ClusterSpec) -> tuple[list[Action], CloudCatalog]:
    """Validate the spec against the cloud and plan (creates nothing); also return the catalog."""
    cat = catalog(conn, spec)
    check_against_cloud(spec, cat)
    return plan(spec, observe(conn, spec)), cat


def quota_rows(conn, spec: ClusterSpec, actions: list[Action], cat: CloudCatalog) -> list[quota.QuotaRow]:
    flavors = cat.flavors
    new = [a for a in actions if a.resource == "server" and a.kind == "create"]
    gone = [a for a in actions if a.resource == "server" and a.kind == "delete"]
    cores = sum(flavors[a.detail["flavor"]]["vcpus"] for a in new)
    ram = sum(flavors[a.detail["flavor"]]["ram"] for a in new)
    limits = read(lambda: conn.compute.get_limits().absolute, "read compute limits")
    rows = [
        quota.QuotaRow("instances", max(0, len(new) - len(gone)), limits.instances_used, limits.instances),
        quota.QuotaRow("cores", cores, limits.total_cores_used, limits.total_cores),
        quota.QuotaRow("ram (MiB)", ram, limits.total_ram_used, limits.total_ram),
    ]
    new_groups = sum(1 for a in actions if a.resource == "server-group" and a.kind == "create")
    if new_groups:
        qs = read(
            lambda: conn.compute.get_quota_set(conn.current_project_id, usage=True), "read compute quota"
        )
        rows.append(
            quota.QuotaRow(
                "server groups", new_groups, int(qs.usage.get("server_groups", 0)), int(qs.server_groups)
            )
        )
    needs_fip = any(
        a.resource == "floating-ip" and a.kind == "create" and "adopt" not in a.detail for a in actions
    )
    q = read(lambda: conn.network.get_quota(conn.current_project_id, details=True), "read network quota")
    fq = q.floating_ips if isinstance(q.floating_ips, dict) else {"limit": q.floating_ips, "used": 0}
    rows.append(quota.QuotaRow("floating IPs", int(needs_fip), fq.get("used", 0), fq.get("limit", -1)))
    for label, attr, resource in (
        ("security groups", "security_groups", "security-group"),
        ("networks", "networks", "network"),
        ("routers", "routers", "router"),
        ("ports", "ports", "port"),
    ):
        need = sum(1 for a in actions if a.resource == resource and a.kind == "create")
        detail = getattr(q, attr, None)
        if need and isinstance(detail, dict):
            rows.append(quota.QuotaRow(label, need, detail.get("used", 0), detail.get("limit", -1)))
    vol_gb = sum((a.detail.get("boot_volume_gb") or 0) for a in new)
    if vol_gb:
        if not conn.has_service("block-storage"):
            raise SpecError(
                spec.source,
                [
                    "node_groups.*.boot_volume_gb: this cloud has no block storage "
                    "(Cinder) — remove boot_volume_gb"
                ],
            )
        bl = read(lambda: conn.block_storage.get_limits().absolute, "read volume limits")
        rows.append(
            quota.QuotaRow("volume GB", vol_gb, bl.total_gigabytes_used, bl.max_total_volume_gigabytes)
        )
        rows.append(
            quota.QuotaRow(
                "volumes",
                sum(1 for a in new if a.detail.get("boot_volume_gb")),
                bl.total_volumes_used,
                bl.max_total_volumes,
            )
        )
    if spec.share and any(a.resource == "share" and a.kind == "create" for a in actions):
        resp = read(lambda: conn.shared_file_system.get("/limits", microversion="2.7"), "read share limits")
        ab = resp.json()["limits"]["absolute"]
        rows.append(quota.QuotaRow("shares", 1, ab.get("totalSharesUsed", 0), ab.get("maxTotalShares", -1)))
        rows.append(
            quota.QuotaRow(
                "share GB",
                spec.share.size_gb,
                ab.get("totalShareGigabytesUsed", 0),
                ab.get("maxTotalShareGigabytes", -1),
            )
        )
    return rows


def create_cluster(
    spec: ClusterSpec,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    root: Path | None = None,
    kubernetes: bool = True,
    before_changes: Callable[[], None] | None = None,
    command: str = "create-cluster",
) -> dict:
    """Converge the cloud on the spec, then (kubernetes=True) build the cluster with Kubespray.

    Kubespray runs when the cloud changed or no kubeconfig exists yet. `before_changes` is called
    (under the cluster's lock) once every check has passed and before anything is changed; it is
    not called on a dry run. Returns {"actions", "quota", "state", "log", "kubeconfig"}."""
    progress = progress or Progress()
    cdir = ClusterDir(spec.name, root)
    with cdir.lock(command), run_log(cdir, command) as logfile:
        progress(f"observing cloud {spec.cloud!r} for cluster {spec.name!r}")
        conn = connect(spec.cloud)
        actions, cat = compute_plan(conn, spec)
        bad = conflicts(actions)
        if bad:
            raise CloudError(
                "cannot proceed:\n" + "\n".join(f"  - {a.resource} {a.name}: {a.reason}" for a in bad)
            )
        rows = quota_rows(conn, spec, actions, cat)
        result = {
            "actions": [a.to_dict() for a in actions],
            "quota": [r.__dict__ for r in rows],
            "log": str(logfile),
        }
        quota.check(rows)
        if dry_run:
            result["state"] = cdir.load()
            return result
        kubeconfig = cdir.load().get("kubeconfig")
        built = kubernetes and bool(kubeconfig) and Path(kubeconfig).exists()
        removed = [
            a.name
            for a in actions
            if a.resource == "server" and a.kind == "delete" and not a.detail.get("recreate")
        ]
        live: dict[str, str] = {}
        if built and (
            removed or kubespray.kubespray_step(actions, built, f"{spec.name}-{CONTROL_PLANE}-")[0] != "none"
        ):
            live = {s.name: s.status for s in owned_servers(conn, spec.name)}
            shelved = sorted(n for n, st in live.items() if st.startswith("SHELVED") and n not in removed)
            if shelved:
                raise StackSprayError(
                    f"{len(shelved)} node(s) are shelved ({', '.join(shelved)}) and Kubespray needs every "
                    f"node reachable for this change: `invoke scale --cluster {spec.name} --unshelve` "
                    "first, then re-run (nothing was changed)"
                )
        if before_changes:
            before_changes()
        if changes(actions):
            state = cdir.load()
            state.update(
                cluster=spec.name,
                cloud=spec.cloud,
                spec=spec.source,
                keypair={"name": spec.keypair.name, "uploaded": spec.keypair.public_key_file is not None},
            )
            cdir.save(state)  # record intent first: destroy can find the cluster even if we are killed
            if built and removed:
                # Nodes leave Kubernetes (drained, reset, deleted) before their VMs are deleted.
                gone = [n for n in removed if live.get(n) != "ACTIVE"]
                kubespray.remove_workers(conn, spec, cdir, progress, removed, gone)
            Applier(conn, spec, cdir, progress).run(actions)
        else:
            progress("nothing to change: the cloud matches the spec")
        result["state"] = record_state(conn, spec, cdir)
        progress(
            f"cluster {spec.name}: {len(result['state']['servers'])} server(s); state in {cdir.state_file}"
        )
        if kubernetes:
            step, new_workers = kubespray.kubespray_step(actions, built, f"{spec.name}-{CONTROL_PLANE}-")
            if step == "build":
                kubespray.build(conn, spec, cdir, progress)
            elif step == "scale":
                kubespray.add_workers(conn, spec, cdir, progress, new_workers)
            elif changes(actions):
                kubespray.write_inventory(conn, spec, cdir, progress)  # e.g. removed nodes leave it
            if spec.share:
                result["share"] = share.setup_share(conn, spec, cdir, progress)
            else:
                share.forget_files(cdir)  # a share removed from the spec: its key leaves the inventory
            result["state"] = cdir.load()
        result["kubeconfig"] = result["state"].get("kubeconfig")
        return result


def floating_by_fixed(conn, cluster: str) -> dict[str, str]:
    """Fixed IP -> floating IP of the cluster's addresses, from Neutron (Nova's cache may lag)."""
    tag = cluster_tag(cluster)
    return {
        f.fixed_ip_address: f.floating_ip_address
        for f in read(lambda: list(conn.network.ips()), "list floating IPs")
        if is_owned(f, tag) and f.fixed_ip_address
    }


def record_state(conn, spec: ClusterSpec, cdir: ClusterDir) -> dict:
    """Observe again and write what later steps need (ids, IPs, flavors) to the state file."""
    obs = observe(conn, spec)
    state = cdir.load()
    servers = {}
    fips = floating_by_fixed(conn, spec.name)
    for s in owned_servers(conn, spec.name):
        servers[s.name] = server_record(s, fips)
    fip = obs.floating_ip
    state.update(
        cluster=spec.name,
        cloud=spec.cloud,
        ssh_user=spec.ssh_user,
        network={
            "id": obs.network.id if obs.network else None,
            "subnet": obs.subnet.id if obs.subnet else None,
            "router": obs.router.id if obs.router else None,
            "cidr": spec.network.cidr,
            "existing": spec.network.existing,
        },
        security_groups={n: r.id for n, r in obs.security_groups.items()},
        server_groups={n: r.id for n, r in obs.server_groups.items()},
        servers=servers,
        floating_ip={"id": fip.id, "address": fip.detail["address"], "adopted": fip.detail["adopted"]}
        if fip
        else None,
        kubernetes={"pod_cidr": spec.kubernetes.pod_cidr, "service_cidr": spec.kubernetes.service_cidr},
    )
    if spec.share and obs.share:
        exports = read(lambda: list(conn.shared_file_system.export_locations(obs.share.id)), "share exports")
        state["share"] = {
            **{k: v for k, v in (state.get("share") or {}).items() if k in ("applied", "claim")},
            "id": obs.share.id,
            "status": obs.share.status,
            "access_rule": spec.share.access_rule,
            "export_path": exports[0].path if exports else None,
            "access_key_file": str(cdir.secrets / "share-access-key"),
        }
    cdir.save(state)
    return state


def cluster_status(name: str, *, cloud: str | None = None, root: Path | None = None) -> dict:
    """Every node with role, flavor, status, IPs and SU/hour; the share and the floating IP."""
    cdir = ClusterDir(name, root)
    state = cdir.load()
    cloud = cloud or state.get("cloud") or os.environ.get("OS_CLOUD")
    if not cloud:
        raise ClusterNotFound(f"no state for cluster {name!r} in {cdir.path} and no --cloud/OS_CLOUD given")
    conn = connect(cloud)
    flavors = {f.name: f for f in read(lambda: list(conn.compute.flavors(is_public=None)), "list flavors")}
    nodes = []
    fips = floating_by_fixed(conn, name)
    for s in owned_servers(conn, name):
        rec = server_record(s, fips)
        vcpus = flavors[rec["flavor"]].vcpus if rec["flavor"] in flavors else 0
        rec.update(
            name=s.name,
            role=rec.pop("group") or "?",
            su_per_hour=cost.su_per_hour(rec["flavor"], vcpus, s.status),
            su_per_hour_if_active=cost.su_if_active(rec["flavor"], vcpus),
        )
        nodes.append(rec)
    if not nodes and not state:
        raise ClusterNotFound(f"cluster {name!r}: no servers in cloud {cloud!r} and no state in {cdir.path}")
    nodes.sort(key=lambda n: (n["role"] != "control-plane", n["name"]))
    now = sum(n["su_per_hour"] for n in nodes)
    full = sum(n["su_per_hour_if_active"] for n in nodes)
    return {
        "cluster": name,
        "cloud": cloud,
        "nodes": nodes,
        "su_per_hour": now,
        "su_per_month": now * cost.HOURS_PER_MONTH,
        "su_saved_per_hour": full - now,
        "floating_ip": state.get("floating_ip"),
        "share": state.get("share"),
    }


def destroy_cluster(
    name: str,
    *,
    cloud: str | None = None,
    progress: Progress | None = None,
    root: Path | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> dict:
    """Delete everything the cluster owns, in dependency order; safe to re-run after interruption."""
    progress = progress or Progress()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    cloud = cloud or state.get("cloud") or os.environ.get("OS_CLOUD")
    if not cloud:
        raise ClusterNotFound(
            f"no state for cluster {name!r} in {cdir.path}; give --cloud to search the cloud"
        )
    with cdir.lock("destroy-cluster"), run_log(cdir, "destroy-cluster"):
        conn = connect(cloud)
        found = _owned_resources(conn, name, state)
        left = _unprovable_keypair(conn, name, state, progress)
        if not any(found.values()):
            progress(f"cluster {name}: nothing of it is left in cloud {cloud!r}")
            return {"deleted": {}, "cloud": cloud, "left": left}
        listing = ", ".join(f"{len(v)} {k}" for k, v in found.items() if v)
        if confirm is not None and not confirm(f"delete cluster {name!r} from cloud {cloud!r}: {listing}?"):
            raise CloudError("destroy-cluster cancelled; nothing was deleted")
        deleted = _destroy(conn, name, found, state, progress)
        state["destroyed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        state["servers"] = {}
        state.pop("credential", None)
        cdir.save(state)
        _remove_schedules(name, progress)
        progress(f"cluster {name} destroyed")
        return {"deleted": deleted, "cloud": cloud, "left": left}


def _unprovable_keypair(conn, name: str, state: dict, progress: Progress) -> list[str]:
    """Without a state file stackspray cannot tell a keypair it uploaded (`<name>-key`) from one
    of the same name the user made (keypairs carry no tags): never delete it then, say so."""
    if state.get("keypair"):
        return []
    kp = read(lambda: conn.compute.find_keypair(f"{name}-key"), "find keypair")
    if kp is None:
        return []
    progress(
        f"keypair {kp.name} is left: with no state file stackspray cannot tell whether it uploaded it; "
        f"if it did, `openstack keypair delete {kp.name}`"
    )
    return [f"keypair {kp.name}"]


def _remove_schedules(name: str, progress: Progress) -> None:
    """A destroyed cluster's scheduled scale/refresh jobs would fail every time: remove them."""
    from . import schedule

    try:
        removed = schedule.remove(name)
    except schedule.ScheduleError as exc:
        progress(f"could not check for scheduled jobs of {name}: {exc}")
        return
    if removed:
        progress(f"removed scheduled jobs: {', '.join(removed)}")


def _owned_resources(conn, name: str, state: dict) -> dict[str, list]:
    tag = cluster_tag(name)
    net = conn.network
    out: dict[str, list] = {}
    out["servers"] = owned_servers(conn, name)
    out["floating IPs"] = [f for f in read(lambda: list(net.ips()), "list floating IPs") if is_owned(f, tag)]
    out["ports"] = [p for p in read(lambda: list(net.ports()), "list ports") if is_owned(p, tag)]
    out["routers"] = [r for r in read(lambda: list(net.routers()), "list routers") if is_owned(r, tag)]
    out["subnets"] = [s for s in read(lambda: list(net.subnets()), "list subnets") if is_owned(s, tag)]
    out["networks"] = [n for n in read(lambda: list(net.networks()), "list networks") if is_owned(n, tag)]
    out["security groups"] = [
        g for g in read(lambda: list(net.security_groups()), "list security groups") if is_owned(g, tag)
    ]
    # Server groups carry no tags: ours are those recorded in the state, or whose members are
    # our servers (a name prefix would also match another cluster called "<name>-...").
    recorded = set((state.get("server_groups") or {}).values())
    our_servers = {s.id for s in out["servers"]}
    out["server groups"] = [
        g
        for g in read(lambda: list(conn.compute.server_groups()), "list server groups")
        if g.id in recorded or set(g.member_ids or []) & our_servers
    ]
    out["shares"] = []
    if conn.has_service("shared-file-system"):
        out["shares"] = [
            s
            for s in read(lambda: list(conn.shared_file_system.shares(details=True)), "list shares")
            if (s.metadata or {}).get(META_CLUSTER) == name
        ]
    kp = state.get("keypair") or {}
    out["keypairs"] = []
    if kp.get("uploaded"):
        found = read(lambda: conn.compute.find_keypair(kp["name"]), "find keypair")
        out["keypairs"] = [found] if found else []
    # The cluster credential(s): ours by name and the description stackspray gives them. A
    # credential left behind would stay valid for months after the cluster is gone.
    user = conn.current_user_id
    out["application credentials"] = [
        c
        for c in read(lambda: list(conn.identity.application_credentials(user=user)), "list credentials")
        if c.name.startswith(f"{name}-k8s-")
        and (c.description or "").startswith(f"stackspray: Kubernetes cluster {name} ")
    ]
    return out


def _destroy(conn, name: str, found: dict[str, list], state: dict, progress: Progress) -> dict[str, int]:
    net = conn.network
    deleted: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        servers = found["servers"]
        list(
            pool.map(
                lambda s: act(
                    lambda: conn.compute.delete_server(s, ignore_missing=True), f"delete server {s.name}"
                ),
                servers,
            )
        )
        for s in servers:
            wait_until(
                lambda s=s: True if read(lambda: conn.compute.find_server(s.id), "find") is None else None,
                f"server {s.name} deleted",
                timeout=600,
            )
        deleted["servers"] = len(servers)
        if servers:
            progress(f"deleted {len(servers)} server(s)")
        for f in found["floating IPs"]:
            if "stackspray-adopted" in (f.tags or []):
                act(lambda f=f: net.update_ip(f, port_id=None), "disassociate adopted floating IP")
                keep = [t for t in (f.tags or []) if not t.startswith("stackspray")]
                act(lambda f=f, keep=keep: net.set_tags(f, keep), "untag adopted floating IP")
                progress(f"released adopted floating IP {f.floating_ip_address} (kept in the project)")
            else:
                act(lambda f=f: net.delete_ip(f, ignore_missing=True), "delete floating IP")
                progress(f"deleted floating IP {f.floating_ip_address}")
        list(
            pool.map(
                lambda p: act(lambda: net.delete_port(p, ignore_missing=True), f"delete port {p.name}"),
                [p for p in found["ports"] if not p.device_owner.startswith("network:")],
            )
        )
        for r in found["routers"]:
            for p in read(
                lambda r=r: list(net.ports(device_id=r.id, device_owner="network:router_interface")),
                "list router interfaces",
            ):
                for ip in p.fixed_ips:
                    try:
                        act(
                            lambda ip=ip, r=r: net.remove_interface_from_router(r, subnet=ip["subnet_id"]),
                            f"detach subnet from {r.name}",
                        )
                    except CloudError as exc:
                        if "404" not in str(exc) and "not found" not in str(exc).lower():
                            raise
            act(lambda r=r: net.delete_router(r, ignore_missing=True), f"delete router {r.name}")
        for s in found["subnets"]:
            act(lambda s=s: net.delete_subnet(s, ignore_missing=True), f"delete subnet {s.name}")
        for n in found["networks"]:
            act(lambda n=n: net.delete_network(n, ignore_missing=True), f"delete network {n.name}")
        for g in found["security groups"]:
            act(
                lambda g=g: net.delete_security_group(g, ignore_missing=True),
                f"delete security group {g.name}",
            )
        for g in found["server groups"]:
            act(lambda g=g: conn.compute.delete_server_group(g, ignore_missing=True), f"delete {g.name}")
        for sh in found["shares"]:
            act(lambda sh=sh: conn.shared_file_system.delete_share(sh), f"delete share {sh.name}")
        for sh in found["shares"]:
            wait_until(
                lambda sh=sh: (
                    True if not [x for x in conn.shared_file_system.shares() if x.id == sh.id] else None
                ),
                f"share {sh.name} deleted",
                timeout=600,
            )
        for k in found["keypairs"]:
            act(lambda k=k: conn.compute.delete_keypair(k, ignore_missing=True), f"delete keypair {k.name}")
        user = conn.current_user_id
        for c in found["application credentials"]:
            act(
                lambda c=c: conn.identity.delete_application_credential(user, c.id, ignore_missing=True),
                f"delete application credential {c.name}",
            )
    for kind, items in found.items():
        if kind != "servers":
            deleted[kind] = len(items)
    if any(deleted.values()):
        progress("deleted: " + ", ".join(f"{n} {k}" for k, n in deleted.items() if n))
    return deleted
