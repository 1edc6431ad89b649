"""The cluster commands as library calls: plan, create, status, destroy.

Each observes the cloud, computes with pure functions (`plan.plan`, `quota.check`, `cost`) and
only then acts. `tasks.py` parses flags and prints; nothing here prints except through the
`Progress` it is given.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import apply, cost, ingress, inventory, kubespray, names, playbook, quota, rotation, schedule, share
from .apply import Applier, server_record
from .cloudapi import CloudAPI, connect_api
from .cloudops import concurrently, flavors_by_name, read
from .cluster_state import ClusterState, FloatingIp, Keypair, KubernetesRanges, Network, Share
from .credentials import check_operator_credential, prepare_cluster_credential
from .errors import CloudError, ClusterNotFound, SpecError, StackSprayError
from .names import is_owned, owns_by_metadata
from .observe import catalog, observe, observe_owned, owned_servers
from .plan import Action, Observed, changes, conflicts, plan, plan_destroy
from .progress import Progress
from .spec import CloudCatalog, ClusterSpec, check_against_cloud
from .state import ClusterDir

log = logging.getLogger("stackspray")


def compute_plan(api: CloudAPI, spec: ClusterSpec) -> tuple[list[Action], CloudCatalog, Observed]:
    """Validate the spec against the cloud and plan (creates nothing); also return the catalog
    and the observation. The catalog and the observation are read at once; a spec the cloud
    cannot serve is reported before anything observed."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        observed = pool.submit(observe, api, spec)
        cat = catalog(api, spec)
        check_against_cloud(spec, cat)
        obs = observed.result()
    check_router_ranges(api, spec, obs)
    return plan(spec, obs), cat, obs


def check_router_ranges(api: CloudAPI, spec: ClusterSpec, obs: Observed) -> None:
    """A subnet joining a router the project already uses must not overlap the subnets on it
    (Neutron refuses the attach, after the network exists), and the router must reach the
    external network (else no floating IP works): refused before anything is created."""
    if obs.router_mode != "existing" or obs.router is None:
        return
    router = obs.router
    ext = read(lambda: api.find("network", spec.network.external_network), "find external network")
    if ext is None or router.detail.get("gateway") != ext.id:
        raise SpecError(
            spec.source,
            [
                f"network.router: router {router.name} has no gateway on {spec.network.external_network!r}, "
                "so the cluster's floating IP would not work: give its gateway one "
                f"(`openstack router set --external-gateway {spec.network.external_network} {router.name}`), "
                "or name another router"
            ],
        )
    mine = obs.subnet.id if obs.subnet else None
    wanted = ipaddress.ip_network(spec.network.cidr)
    for sid in obs.router.detail.get("interfaces", []):
        if sid == mine:
            continue
        sub = read(lambda sid=sid: api.get("subnet", sid), "read subnet")
        if sub.ip_version == 4 and ipaddress.ip_network(sub.cidr).overlaps(wanted):
            raise SpecError(
                spec.source,
                [
                    f"network.cidr: {spec.network.cidr} overlaps {sub.name or sub.id} ({sub.cidr}), which is "
                    f"already on router {router.name}: choose a range that does not, e.g. 10.42.0.0/24"
                ],
            )


def exposure_warnings(spec: ClusterSpec) -> list[str]:
    """What the security groups open to the whole internet: SSH and the Kubernetes API (and the
    NodePorts, which follow `allowed_cidrs.api`) default to 0.0.0.0/0 so a first cluster works
    from anywhere; a careful operator narrows them to the networks they work from."""
    out = []
    if "0.0.0.0/0" in spec.ssh_cidrs:
        out.append(
            "SSH (port 22) is open to the whole internet (allowed_cidrs.ssh is 0.0.0.0/0): set "
            "allowed_cidrs.ssh to the networks you connect from, e.g. [203.0.113.0/24]"
        )
    if "0.0.0.0/0" in spec.api_cidrs:
        out.append(
            "the Kubernetes API (6443) and the NodePorts (30000-32767) are open to the whole internet "
            "(allowed_cidrs.api is 0.0.0.0/0): set allowed_cidrs.api to the networks that need them"
        )
    return out


def quota_rows(
    api: CloudAPI, spec: ClusterSpec, actions: list[Action], cat: CloudCatalog
) -> list[quota.QuotaRow]:
    flavors = cat.flavors
    new = [a for a in actions if a.resource == "server" and a.kind == "create"]
    gone = [a for a in actions if a.resource == "server" and a.kind == "delete"]
    cores = sum(flavors[a.detail["flavor"]]["vcpus"] for a in new)
    ram = sum(flavors[a.detail["flavor"]]["ram"] for a in new)
    new_groups = sum(1 for a in actions if a.resource == "server-group" and a.kind == "create")
    vol_gb = sum((a.detail.get("boot_volume_gb") or 0) for a in new)
    if vol_gb and not api.has_service("block-storage"):
        raise SpecError(
            spec.source,
            [
                "node_groups.*.boot_volume_gb: this cloud has no block storage "
                "(Cinder) — remove boot_volume_gb"
            ],
        )
    new_share = bool(spec.share and any(a.resource == "share" and a.kind == "create" for a in actions))
    calls = {
        "compute": lambda: read(api.compute_limits, "read compute limits"),
        "network": lambda: read(api.network_quota, "read network quota"),
    }
    if new_groups:
        calls["groups"] = lambda: read(lambda: api.compute_quota(usage=True), "read compute quota")
    if vol_gb:
        calls["volumes"] = lambda: read(api.volume_limits, "read volume limits")
    if new_share:
        calls["shares"] = lambda: read(api.share_limits, "read share limits")
    got = concurrently(calls)  # the quotas of every service at once
    limits = got["compute"]
    rows = [
        quota.QuotaRow("instances", max(0, len(new) - len(gone)), limits.instances_used, limits.instances),
        quota.QuotaRow("cores", cores, limits.total_cores_used, limits.total_cores),
        quota.QuotaRow("ram (MiB)", ram, limits.total_ram_used, limits.total_ram),
    ]
    if new_groups:
        qs = got["groups"]
        rows.append(
            quota.QuotaRow(
                "server groups", new_groups, int(qs.usage.get("server_groups", 0)), int(qs.server_groups)
            )
        )
    needs_fip = any(
        a.resource == "floating-ip" and a.kind == "create" and "adopt" not in a.detail for a in actions
    )
    q = got["network"]
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
    if vol_gb:
        bl = got["volumes"]
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
    if new_share:
        ab = got["shares"]
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
    forks: int | None = None,
    api: CloudAPI | None = None,
) -> dict:
    """Converge the cloud on the spec, then (kubernetes=True) build the cluster with Kubespray.

    Kubespray runs when the cloud changed or no kubeconfig exists yet. `before_changes` is called
    (under the cluster's lock) once every check has passed and before anything is changed; it is
    not called on a dry run. `forks`: at most this many hosts at a time in every Ansible run
    (default: every host, up to playbook.MAX_FORKS). Returns {"actions", "quota", "state", "log",
    "kubeconfig"}."""
    playbook.check_forks(forks)
    progress = progress or Progress()
    cdir = ClusterDir(spec.name, root)
    with cdir.command(command) as run:
        logfile = run.log
        progress(f"observing cloud {spec.cloud!r} for cluster {spec.name!r}")
        api = api or connect_api(spec.cloud)
        conn = getattr(api, "conn", None)  # openstacksdk's, for Kubespray's inventory and the credential

        def kubernetes_checks() -> None:
            kubespray_dir = kubespray.preflight(conn, spec)
            check_operator_credential(conn, spec.cloud)
            kubespray.validate_inventory(spec, cdir, progress, kubespray_dir)

        # Kubespray's inventory check (a local Ansible run) needs nothing the plan finds: it runs
        # while the cloud is observed; the plan's own errors are reported first.
        with ThreadPoolExecutor(max_workers=1) as pool:
            checked = pool.submit(kubernetes_checks) if kubernetes else None
            actions, cat, obs = compute_plan(api, spec)
            bad = conflicts(actions)
            if bad:
                raise CloudError(
                    "cannot proceed:\n" + "\n".join(f"  - {a.resource} {a.name}: {a.reason}" for a in bad)
                )
            if checked is not None:
                checked.result()
        rows = quota_rows(api, spec, actions, cat)
        result = {
            "actions": [a.to_dict() for a in actions],
            "quota": [r.__dict__ for r in rows],
            "log": str(logfile),
            "warnings": exposure_warnings(spec),
        }
        for w in result["warnings"]:
            progress(f"WARNING: {w}")
        quota.check(rows)
        pending_rotation = cdir.load().rotation is not None
        if dry_run:
            if pending_rotation:
                progress("an unfinished credential rotation would be settled first (credentials.refresh)")
            result["state"] = cdir.load().to_dict()
            return result
        if pending_rotation and kubernetes:
            # Before anything touches the credential: it would otherwise issue a third one and
            # delete the pending one the cluster's Secrets may already hold.
            settled = rotation.recover_pending(conn, cdir, progress)
            progress(f"credential: {settled}")
        kubeconfig = cdir.load().kubeconfig
        built = kubernetes and bool(kubeconfig) and Path(kubeconfig).exists()
        last_inputs = cdir.load().kubespray_inputs
        inputs_changed = bool(built and last_inputs and last_inputs != inventory.kubespray_inputs(spec))
        if inputs_changed:
            progress("the spec's Kubespray variables changed since the last build: cluster.yml runs")
        removed = [
            a.name
            for a in actions
            if a.resource == "server" and a.kind == "delete" and not a.detail.get("recreate")
        ]

        def unjoined() -> list[str]:
            """Servers Kubespray has not joined yet (an earlier add-nodes cut short, or run with
            --no-kubernetes); none while Kubernetes is not built."""
            st = cdir.load()
            if not built or st.kubernetes_nodes is None:
                return []
            return sorted(n for n in st.servers if n not in st.kubernetes_nodes and n not in removed)

        live: dict[str, str] = {}
        if built and (
            removed
            or kubespray.kubespray_step(
                actions, built, names.control_plane_prefix(spec.name), inputs_changed, unjoined()
            )[0]
            != "none"
        ):
            live = {s.name: s.status for s in owned_servers(api, spec.name)}
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
            state.cluster, state.cloud, state.spec = spec.name, spec.cloud, spec.source
            state.keypair = Keypair(spec.keypair.name, uploaded=spec.keypair.public_key_file is not None)
            cdir.save(state)  # record intent first: destroy can find the cluster even if we are killed
            if kubernetes and spec.credential.access_rules:
                # Before any VM: a cloud that refuses (or ignores) access rules is found now.
                prepare_cluster_credential(conn, spec, cdir, progress)
            if built and removed:
                # Nodes leave Kubernetes (drained, reset, deleted) before their VMs are deleted.
                gone = [n for n in removed if live.get(n) != "ACTIVE"]
                kubespray.remove_workers(conn, spec, cdir, progress, removed, gone, forks)
            applier = Applier(api, spec, cdir, progress, obs)
            applier.run(actions)
            listed = applier.listed_servers
        else:
            progress("nothing to change: the cloud matches the spec")
            listed = None
        state = record_state(api, spec, cdir, servers=listed)
        result["state"] = state.to_dict()
        progress(f"cluster {spec.name}: {len(state.servers)} server(s); state in {cdir.state_file}")
        if kubernetes:
            step, new_workers = kubespray.kubespray_step(
                actions, built, names.control_plane_prefix(spec.name), inputs_changed, unjoined()
            )
            made = {a.name for a in actions if a.resource == "server" and a.kind == "create"}
            if step == "scale" and (late := [n for n in new_workers if n in unjoined() and n not in made]):
                progress(f"{', '.join(late)}: in the cloud but not yet in Kubernetes: joining now")
            if step == "build":
                kubespray.build(conn, spec, cdir, progress, forks)
            elif step == "scale":
                kubespray.add_workers(conn, spec, cdir, progress, new_workers, forks)
            elif changes(actions):
                kubespray.write_inventory(conn, spec, cdir, progress)  # e.g. removed nodes leave it
            if spec.share:
                result["share"] = share.setup_share(conn, spec, cdir, progress, forks=forks)
            else:
                share.forget_files(cdir)  # a share removed from the spec: its key leaves the inventory
            if spec.ingress:
                result["ingress"] = ingress.setup_ingress(conn, spec, cdir, progress, forks=forks)
            else:
                ingress.forget(cdir)
            result["state"] = cdir.load().to_dict()
        result["kubeconfig"] = result["state"].get("kubeconfig")
        return result


def floating_by_fixed(api: CloudAPI, cluster: str) -> dict[str, str]:
    """Fixed IP -> floating IP of the cluster's addresses, from Neutron (Nova's cache may lag)."""
    return {
        f.fixed_ip_address: f.floating_ip_address
        for f in read(lambda: api.list("floating_ip"), "list floating IPs")
        if is_owned(f, cluster) and f.fixed_ip_address
    }


def record_state(
    api: CloudAPI, spec: ClusterSpec, cdir: ClusterDir, servers: list | None = None
) -> ClusterState:
    """Observe again and write what later steps need (ids, IPs, flavors) to the state file.
    `servers`: the cluster's server listing the caller made after its last change to them (the
    apply's final wait), used instead of listing them again."""
    calls = {
        "obs": lambda: observe(api, spec, servers=servers),
        "fips": lambda: floating_by_fixed(api, spec.name),
    }
    if servers is None:
        calls["servers"] = lambda: owned_servers(api, spec.name)
    got = concurrently(calls)
    obs, fips = got["obs"], got["fips"]
    if servers is not None:
        got["servers"] = [s for s in servers if owns_by_metadata(s, spec.name)]
    state = cdir.load()
    fip = obs.floating_ip
    state.cluster, state.cloud, state.ssh_user = spec.name, spec.cloud, spec.ssh_user
    state.network = Network(
        id=obs.network.id if obs.network else None,
        subnet=obs.subnet.id if obs.subnet else None,
        router=obs.router.id if obs.router else None,
        cidr=spec.network.cidr,
        existing=spec.network.existing,
    )
    state.security_groups = {n: r.id for n, r in obs.security_groups.items()}
    state.server_groups = {n: r.id for n, r in obs.server_groups.items()}
    state.servers = {s.name: server_record(s, fips) for s in got["servers"]}
    state.floating_ip = FloatingIp(fip.id, fip.detail["address"], fip.detail["adopted"]) if fip else None
    state.kubernetes = KubernetesRanges(spec.kubernetes.pod_cidr, spec.kubernetes.service_cidr)
    if spec.share and obs.share:
        exports = read(lambda: api.share_exports(obs.share.id), "share exports")
        old = state.share or Share()
        state.share = Share(
            id=obs.share.id,
            status=obs.share.status,
            access_rule=spec.share.access_rule,
            export_path=exports[0].path if exports else None,
            access_key_file=str(cdir.secrets / "share-access-key"),
            applied=old.applied,
            claim=old.claim,
        )
    cdir.save(state)
    return state


def cluster_status(
    name: str, *, cloud: str | None = None, root: Path | None = None, api: CloudAPI | None = None
) -> dict:
    """Every node with role, flavor, status, IPs and SU/hour; the share and the floating IP."""
    cdir = ClusterDir(name, root)
    state = cdir.load()
    cloud = cloud or state.cloud or os.environ.get("OS_CLOUD")
    if not cloud:
        raise ClusterNotFound(f"no state for cluster {name!r} in {cdir.path} and no --cloud/OS_CLOUD given")
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
        "floating_ip": dataclasses.asdict(state.floating_ip) if state.floating_ip else None,
        "share": dataclasses.asdict(state.share) if state.share else None,
        "ingress": {"url": state.ingress.url, "address": state.ingress.address} if state.ingress else None,
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
) -> dict:
    """Delete everything the cluster owns, in dependency order; safe to re-run after interruption.

    Observes with `observe.observe_owned`, plans with `plan.plan_destroy` (printed by the CLI;
    `dry_run` stops there), carries out with `apply.destroy`. Returns {"actions", "deleted",
    "cloud", "left", "log"}."""
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
        )
        actions = plan_destroy(name, owned)
        left = _unprovable_keypair(api, name, state, progress)
        result = {"actions": [a.to_dict() for a in actions], "deleted": {}, "cloud": cloud, "left": left}
        result["log"] = str(run.log)
        if not changes(actions):
            progress(f"cluster {name}: nothing of it is left in cloud {cloud!r}")
            return result
        if dry_run:
            return result
        counts: dict[str, int] = {}
        for a in changes(actions):
            counts[a.resource] = counts.get(a.resource, 0) + 1
        listing = ", ".join(f"{n} {k}" for k, n in counts.items())
        if confirm is not None and not confirm(f"delete cluster {name!r} from cloud {cloud!r}: {listing}?"):
            raise CloudError("destroy-cluster cancelled; nothing was deleted")
        result["deleted"] = apply.destroy(api, actions, progress)
        if state:
            state.destroyed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            state.servers = {}
            state.credential = None
            cdir.save(state)
        _remove_schedules(name, progress)
        progress(f"cluster {name} destroyed")
        return result


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
