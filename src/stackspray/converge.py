"""create-cluster (and plan, add-nodes, remove-nodes) as named steps: `Converge.run` walks them
in order, each a method with one job, and returns a `ConvergeResult`.

  check               the spec against the cloud, the observation, the plan, conflicts, quota
                      (and, beside them, Kubespray's own inventory check)
  — a plan or a --dry-run stops here —
  settle_rotation     an unfinished credential rotation is finished or undone first
  decide_kubespray    which Kubespray run the change calls for; shelved nodes refused
  record_intent       the cluster is in the state before anything is made
  prepare_credential  access rules checked before any VM
  leave_kubernetes    removed workers leave Kubernetes before their VMs go
  apply               the cloud's resources, kind by kind (`apply.Applier`)
  record_state        ids, addresses and flavors for the later steps
  kubespray           cluster.yml, scale.yml or only the inventory
  share, ingress      the share in Kubernetes; the ingress controller
  gpu                 NVIDIA's device plugin on the GPU groups (or its removal)

Each step reads what earlier steps decided from the `Converge` object, never from a string-keyed
dict; the state file is read when a step needs what another command may have changed.
"""

from __future__ import annotations

import ipaddress
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from . import (
    csi_placement,
    gpu,
    gpu_setup,
    ingress,
    inventory,
    kubespray,
    names,
    playbook,
    quota,
    rotation,
    share,
)
from .apply import Applier, server_record
from .cloudapi import CloudAPI, connect_api
from .cloudops import concurrently, read
from .cluster_state import ClusterState, FloatingIp, Keypair, KubernetesRanges, Network, Share
from .credentials import check_operator_credential, prepare_cluster_credential
from .errors import CloudError, SpecError, StackSprayError
from .hibernate_plan import refuse_if_hibernated
from .names import owns_by_metadata
from .observe import catalog, floating_by_fixed, observe, owned_servers
from .plan import Action, Observed, changes, conflicts, plan
from .progress import Progress
from .spec import CloudCatalog, ClusterSpec, check_against_cloud
from .state import ClusterDir
from .target import PLAIN, Target, resolve


@dataclass
class ConvergeResult:
    """What create-cluster (or add-nodes, remove-nodes) did, or with `dry_run` would do."""

    cluster: str
    actions: list[dict]
    quota: list[dict]
    warnings: list[str]
    log: str | None
    state: dict
    dry_run: bool = False
    kubeconfig: str | None = None
    share: dict | None = None
    ingress: dict | None = None
    resize: dict | None = None
    gpu: dict | None = None

    def to_dict(self) -> dict:
        d = {
            "actions": self.actions,
            "quota": self.quota,
            "log": self.log,
            "warnings": self.warnings,
            "state": self.state,
        }
        if not self.dry_run:
            d["kubeconfig"] = self.kubeconfig
        for key in ("share", "ingress", "resize", "gpu"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


@dataclass
class PlanResult(ConvergeResult):
    """What `plan` shows: the actions, the quota they need and the warnings."""

    def to_dict(self) -> dict:
        return {"actions": self.actions, "quota": self.quota, "warnings": self.warnings}


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
    api: CloudAPI, spec: ClusterSpec, actions: list[Action], cat: CloudCatalog, kube_mark: str | None = None
) -> list[quota.QuotaRow]:
    """What the plan adds to each quota, beside what the project uses and may use — and what the
    spec's `workloads` will make through Kubernetes (claims' volumes, LoadBalancer Services'
    floating IPs) beyond what they already made (found by `kube_mark`, the cluster's Kubespray
    cluster_name)."""
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
                "node_groups.*.boot_volume_gb: this cloud has no block storage (Cinder) — "
                "remove boot_volume_gb"
            ],
        )
    wl = spec.workloads
    missing = [
        f"workloads.{field}: this cloud has no {what} — remove it"
        for field, count, service, what in (
            ("volumes", wl.volumes, "block-storage", "block storage (Cinder)"),
            ("load_balancers", wl.load_balancers, "load-balancer", "load-balancer service (Octavia)"),
        )
        if count and not api.has_service(service)
    ]
    if missing:
        raise SpecError(spec.source, missing)
    mark = kube_mark or spec.name
    new_share = bool(spec.share and any(a.resource == "share" and a.kind == "create" for a in actions))
    calls = {
        "compute": lambda: read(api.compute_limits, "read compute limits"),
        "network": lambda: read(api.network_quota, "read network quota"),
    }
    if new_groups:
        calls["groups"] = lambda: read(lambda: api.compute_quota(usage=True), "read compute quota")
    if vol_gb or wl.volumes:
        calls["volumes"] = lambda: read(api.volume_limits, "read volume limits")
    if wl.volumes:
        calls["claims"] = lambda: read(lambda: api.list("volume"), "list volumes")
    if wl.load_balancers:
        calls["lbs"] = lambda: read(lambda: api.list("load_balancer"), "list load balancers")
    if new_share:
        calls["shares"] = lambda: read(api.share_limits, "read share limits")
    got = concurrently(calls)  # the quotas of every service at once
    # The claims and Services the workloads will make that they have not made yet.
    claims = max(0, wl.volumes - sum(1 for v in got.get("claims", []) if names.made_by_kubernetes(v, mark)))
    services = max(
        0, wl.load_balancers - sum(1 for lb in got.get("lbs", []) if names.made_for_service(lb, mark))
    )
    vol_count = sum(1 for a in new if a.detail.get("boot_volume_gb")) + claims
    vol_gb += claims * wl.volume_gb
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
    rows.append(
        quota.QuotaRow("floating IPs", int(needs_fip) + services, fq.get("used", 0), fq.get("limit", -1))
    )
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
    if "volumes" in got:
        bl = got["volumes"]
        rows.append(
            quota.QuotaRow("volume GB", vol_gb, bl.total_gigabytes_used, bl.max_total_volume_gigabytes)
        )
        rows.append(quota.QuotaRow("volumes", vol_count, bl.total_volumes_used, bl.max_total_volumes))
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
    # Every run records the spec's rates (a changed rate changes nothing in the cloud).
    state.su_rates = {
        f: {"su_per_vcpu_hour": r, "source": f"the spec's su_rates ({spec.source})"} for f, r in spec.su_rates
    }
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


@dataclass
class Converge:
    """One create-cluster (see the module's docstring for its steps)."""

    spec: ClusterSpec
    cdir: ClusterDir
    progress: Progress
    kubernetes: bool = True
    forks: int | None = None
    before_changes: Callable[[], None] | None = None
    api: CloudAPI | None = None
    # What the steps decide, in order.
    actions: list[Action] = field(default_factory=list)
    obs: Observed | None = None
    rows: list = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    built: bool = False
    inputs_changed: bool = False
    removed: list[str] = field(default_factory=list)
    live: dict[str, str] = field(default_factory=dict)
    step: str = "none"
    new_workers: list[str] = field(default_factory=list)
    listed: list | None = None
    target: Target = PLAIN

    @property
    def conn(self):
        """openstacksdk's connection, for the steps that are Kubespray's and the credential's."""
        return getattr(self.api, "conn", None)

    def say(self, message: str) -> None:
        self.progress(message)

    # -- the steps -------------------------------------------------------------------------------

    def check(self, validation_dir: ClusterDir) -> None:
        """Observe, plan, refuse conflicts, count the quota. Kubespray's inventory check (a local
        Ansible run) needs nothing the plan finds: it runs while the cloud is observed; the
        plan's own errors are reported first."""
        spec = self.spec
        self.say(f"observing cloud {spec.cloud!r} for cluster {spec.name!r}")
        self.api = self.api or connect_api(spec.cloud)

        def kubernetes_checks() -> None:
            self.target = resolve(self.conn, spec)
            if self.target.note:
                self.say(self.target.note)
            kubespray_dir = kubespray.kubespray_dir(self.target)
            check_operator_credential(self.conn, spec.cloud)
            kubespray.validate_inventory(spec, validation_dir, self.progress, kubespray_dir)

        with ThreadPoolExecutor(max_workers=1) as pool:
            checked = pool.submit(kubernetes_checks) if self.kubernetes else None
            self.actions, cat, self.obs = compute_plan(self.api, spec)
            bad = conflicts(self.actions)
            if bad:
                raise CloudError(
                    "cannot proceed:\n" + "\n".join(f"  - {a.resource} {a.name}: {a.reason}" for a in bad)
                )
            if checked is not None:
                checked.result()
        self.rows = quota_rows(self.api, spec, self.actions, cat, self.cdir.load().kube_mark(spec.name))
        self.warnings = exposure_warnings(spec) + gpu.spec_warnings(spec, cat.flavors)
        if gpu.gpu_groups(spec):
            self.say(
                f"GPU groups: {gpu.describe(spec)}"
                + ("" if spec.gpu_install else " — gpu.install is false: no NVIDIA runtime or device plugin")
            )
        for w in self.warnings:
            self.say(f"WARNING: {w}")
        quota.check(self.rows)

    def settle_rotation(self) -> None:
        """Before anything touches the credential: it would otherwise issue a third one and
        delete the pending one the cluster's Secrets may already hold."""
        if self.kubernetes and self.cdir.load().rotation is not None:
            settled = rotation.recover_pending(self.conn, self.cdir, self.progress)
            self.say(f"credential: {settled}")

    def decide_kubespray(self) -> None:
        """Which Kubespray run the change calls for, decided once; Kubespray needs every node
        reachable for any run, so shelved nodes refuse it before anything changes."""
        spec, state = self.spec, self.cdir.load()
        self.built = self.kubernetes and bool(state.kubeconfig) and Path(state.kubeconfig).exists()
        refused = kubespray.version_change_refused(state.kube_version, spec) if self.built else None
        if refused:
            raise SpecError(refused)
        last = state.kubespray_inputs
        self.inputs_changed = bool(self.built and last and last != inventory.kubespray_inputs(spec))
        if self.built and state.kube_version is None and last and not self.inputs_changed:
            # Built before the version was recorded, with the same variables: the spec's version.
            state.kube_version = kubespray.kube_version(spec)
            self.cdir.save(state)
        if self.inputs_changed:
            self.say("the spec's Kubespray variables changed since the last build: cluster.yml runs")
        self.removed = [
            a.name
            for a in self.actions
            if a.resource == "server" and a.kind == "delete" and not a.detail.get("recreate")
        ]
        unjoined: list[str] = []
        if self.built and state.kubernetes_nodes is not None:
            unjoined = sorted(
                n for n in state.servers if n not in state.kubernetes_nodes and n not in self.removed
            )
        if self.kubernetes:
            self.step, self.new_workers = kubespray.kubespray_step(
                self.actions, self.built, names.control_plane_prefix(spec.name), self.inputs_changed, unjoined
            )
            made = {a.name for a in self.actions if a.resource == "server" and a.kind == "create"}
            late = [n for n in self.new_workers if n in unjoined and n not in made]
            if self.step == "scale" and late:
                self.say(f"{', '.join(late)}: in the cloud but not yet in Kubernetes: joining now")
        if self.built and (self.removed or self.step != "none"):
            self.live = {s.name: s.status for s in owned_servers(self.api, spec.name)}
            shelved = sorted(
                n for n, st in self.live.items() if st.startswith("SHELVED") and n not in self.removed
            )
            if shelved:
                raise StackSprayError(
                    f"{len(shelved)} node(s) are shelved ({', '.join(shelved)}) and Kubespray needs every "
                    f"node reachable for this change: `invoke scale --cluster {spec.name} --unshelve` "
                    "first, then re-run (nothing was changed)"
                )

    def record_intent(self) -> None:
        """The cluster is in the state before anything is made: destroy finds it even if this run
        is killed."""
        spec = self.spec
        state = self.cdir.load()
        state.cluster, state.cloud, state.spec = spec.name, spec.cloud, spec.source
        state.keypair = Keypair(spec.keypair.name, uploaded=spec.keypair.public_key_file is not None)
        self.cdir.save(state)

    def prepare_credential(self) -> None:
        """Before any VM: a cloud that refuses (or ignores) access rules is found now."""
        if self.kubernetes and self.spec.credential.access_rules:
            prepare_cluster_credential(self.conn, self.spec, self.cdir, self.progress)

    def leave_kubernetes(self) -> None:
        """Nodes leave Kubernetes (drained, reset, deleted) before their VMs are deleted."""
        if self.built and self.removed:
            gone = [n for n in self.removed if self.live.get(n) != "ACTIVE"]
            kubespray.remove_workers(
                self.conn, self.spec, self.cdir, self.progress, self.removed, gone, self.target, self.forks
            )

    def apply(self) -> None:
        applier = Applier(self.api, self.spec, self.cdir, self.progress, self.obs)
        applier.run(self.actions)
        self.listed = applier.listed_servers

    def record_state(self) -> ClusterState:
        state = record_state(self.api, self.spec, self.cdir, servers=self.listed)
        self.say(f"cluster {self.spec.name}: {len(state.servers)} server(s); state in {self.cdir.state_file}")
        return state

    def run_kubespray(self) -> None:
        if self.step == "build":
            kubespray.build(self.conn, self.spec, self.cdir, self.progress, self.target, self.forks)
        elif self.step == "scale":
            kubespray.add_workers(
                self.conn, self.spec, self.cdir, self.progress, self.new_workers, self.target, self.forks
            )
        elif changes(self.actions):  # e.g. removed nodes leave the inventory
            kubespray.write_inventory(self.conn, self.spec, self.cdir, self.progress, self.target)

    def place_csi_controller(self) -> None:
        """Once per Kubespray build (not on every create-cluster: that needs no API)."""
        state = self.cdir.load()
        if state.kubeconfig and state.csi_controller_placed != state.kubespray_inputs:
            csi_placement.allow_on_control_plane(state.kubeconfig, self.say)
            state = self.cdir.load()
            state.csi_controller_placed = state.kubespray_inputs
            self.cdir.save(state)

    def setup_share(self) -> dict | None:
        if self.spec.share:
            return share.setup_share(
                self.conn, self.spec, self.cdir, self.progress, self.target, forks=self.forks
            )
        share.forget_files(self.cdir)  # a share removed from the spec: its key leaves the inventory
        return None

    def setup_ingress(self) -> dict | None:
        if self.spec.ingress:
            return ingress.setup_ingress(
                self.conn, self.spec, self.cdir, self.progress, self.target, forks=self.forks
            )
        ingress.forget(self.cdir)
        return None

    def setup_gpu(self) -> dict | None:
        return gpu_setup.setup_gpu(self.spec, self.cdir, self.progress, forks=self.forks)

    # -- the walk --------------------------------------------------------------------------------

    def result(
        self, log: Path | None, state: ClusterState, dry_run: bool, cls=ConvergeResult
    ) -> ConvergeResult:
        return cls(
            cluster=self.spec.name,
            actions=[a.to_dict() for a in self.actions],
            quota=[r.__dict__ for r in self.rows],
            warnings=self.warnings,
            log=str(log) if log else None,
            state=state.to_dict(),
            dry_run=dry_run,
            kubeconfig=None if dry_run else state.kubeconfig,
        )

    def plan_only(self, command: str, cls=ConvergeResult) -> ConvergeResult:
        """Everything up to the plan, changing nothing — not even the cluster's folder when there
        is none yet (its Kubespray check runs in a temporary one)."""
        with ExitStack() as stack:
            log: Path | None = None
            if self.cdir.path.exists():
                log = stack.enter_context(self.cdir.command(command)).log
                validation = self.cdir
            else:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stackspray-plan-")))
                validation = ClusterDir(self.spec.name, tmp)
            self.check(validation)
            state = self.cdir.load()
            if state.rotation is not None:
                self.say("an unfinished credential rotation would be settled first (credentials.refresh)")
            return self.result(log, state, dry_run=True, cls=cls)

    def run(self, command: str) -> ConvergeResult:
        refuse_if_hibernated(self.cdir.load(), command)
        with self.cdir.command(command) as run:
            self.check(self.cdir)
            self.settle_rotation()
            self.decide_kubespray()
            if self.before_changes:
                self.before_changes()
            if changes(self.actions):
                self.record_intent()
                self.prepare_credential()
                self.leave_kubernetes()
                self.apply()
            else:
                self.say("nothing to change: the cloud matches the spec")
            state = self.record_state()
            result = self.result(run.log, state, dry_run=False)
            if self.kubernetes:
                self.run_kubespray()
                self.place_csi_controller()
                result.share = self.setup_share()
                result.ingress = self.setup_ingress()
                result.gpu = self.setup_gpu()
                state = self.cdir.load()
                result.state, result.kubeconfig = state.to_dict(), state.kubeconfig
            return result


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
) -> ConvergeResult:
    """Converge the cloud on the spec, then (kubernetes=True) build the cluster with Kubespray.

    Kubespray runs when the cloud changed or no kubeconfig exists yet. `before_changes` is called
    (under the cluster's lock) once every check has passed and before anything is changed; it is
    not called on a dry run. `forks`: at most this many hosts at a time in every Ansible run
    (default: every host, up to playbook.MAX_FORKS)."""
    playbook.check_forks(forks)
    converge = Converge(
        spec,
        ClusterDir(spec.name, root),
        progress or Progress(),
        kubernetes=kubernetes,
        forks=forks,
        before_changes=before_changes,
        api=api,
    )
    return converge.plan_only(command) if dry_run else converge.run(command)


def plan_cluster(
    spec: ClusterSpec,
    *,
    progress: Progress | None = None,
    root: Path | None = None,
    api: CloudAPI | None = None,
) -> PlanResult:
    """What create-cluster would create, change or leave (and why); changes nothing."""
    converge = Converge(spec, ClusterDir(spec.name, root), progress or Progress(), api=api)
    return converge.plan_only("plan", cls=PlanResult)
