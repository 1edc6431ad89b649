"""Which Kubespray a cluster is built with, and the Kubespray step of create-cluster.

The pinned release (kubespray/PIN.yaml) is fetched by `invoke kubespray.install` into a per-user
cache. A target that brings its own Kubespray (`target.Target.kubespray`: stackspray's test cloud runs
a stand-in) runs that one instead, and the progress says so plainly.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from . import gpu, inventory, playbook, secret_files
from .cloudops import read
from .cluster_state import ClusterState, FloatingIp, Server
from .credentials import prepare_cluster_credential
from .errors import SpecError, StackSprayError
from .paths import PIN_FILE, PLAYBOOKS
from .spec import ClusterSpec
from .state import ClusterDir
from .target import Target


class KubesprayMissing(StackSprayError):
    pass


def pin() -> dict:
    return yaml.safe_load(PIN_FILE.read_text())


def cache_dir(p: dict | None = None) -> Path:
    base = Path(
        os.environ.get("STACKSPRAY_KUBESPRAY_CACHE", Path.home() / ".cache" / "stackspray" / "kubespray")
    )
    return base / (p or pin())["tag"]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()


def _check_checkout(checkout: Path, p: dict) -> str:
    """The checkout is the pinned tag, at the pinned commit (when PIN.yaml names one). Returns the commit."""
    tag = _git("-C", str(checkout), "describe", "--tags", "--exact-match")
    if tag != p["tag"]:
        raise KubesprayMissing(f"the Kubespray checkout {checkout} is at {tag or 'no tag'}, not {p['tag']}")
    head = _git("-C", str(checkout), "rev-parse", "HEAD")
    if p.get("commit") and head != p["commit"]:
        raise KubesprayMissing(
            f"Kubespray {p['tag']} from {p['repository']} is commit {head}, but kubespray/PIN.yaml pins "
            f"{p['commit']}: the tag was moved or the repository is not the one pinned. Nothing was "
            "installed; check the repository before changing the pin"
        )
    return head


@dataclass
class InstallResult:
    path: str
    tag: str
    commit: str
    commit_pinned: bool

    def to_dict(self) -> dict:
        return asdict(self)


def install(p: dict | None = None) -> InstallResult:
    """Clone the pinned tag, check it is that tag and the pinned commit, and install its
    requirements into this venv."""
    p = p or pin()
    target = cache_dir(p)
    if (target / "cluster.yml").exists():
        head = _check_checkout(target, p)
    else:
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", "--branch", p["tag"], p["repository"], str(tmp)],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise KubesprayMissing(
                f"cannot fetch Kubespray {p['tag']} from {p['repository']}: {out.stderr.strip()}"
            )
        try:
            head = _check_checkout(tmp, p)
        except KubesprayMissing:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        tmp.rename(target)
    req = target / "requirements.txt"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(req)], check=True)
    return InstallResult(str(target), p["tag"], head, bool(p.get("commit")))


def check_installed(p: dict | None = None) -> Path:
    """The pinned Kubespray is installed, at the pinned tag and commit; else KubesprayMissing saying
    what to run. Checked before anything is created: its absence must not be found after the VMs
    are booted and billing."""
    p = p or pin()
    target = cache_dir(p)
    if not (target / "cluster.yml").exists():
        raise KubesprayMissing(
            f"Kubespray {p['tag']} is not installed in {target}: run `invoke kubespray.install` first "
            "(nothing was created)"
        )
    _check_checkout(target, p)
    return target


def kubespray_dir(target: Target) -> Path:
    """The Kubespray the target runs: its own (a stand-in), else the pinned release, which must be
    installed — checked before create-cluster, add-nodes or plan touch anything."""
    return target.kubespray if target.kubespray is not None else check_installed()


def _setup(
    conn, spec: ClusterSpec, cdir: ClusterDir, say, target: Target, forks: int | None = None
) -> tuple[Path, dict]:
    """Credential and inventory (regenerated from the state); returns (Kubespray dir, run args;
    `forks`: at most this many hosts at a time in each run)."""
    state = cdir.load()
    credential = prepare_cluster_credential(conn, spec, cdir, say)
    auth = conn.config.get_auth_args()
    net_mtu = 1450
    if state.network and state.network.id:
        net_mtu = read(lambda: conn.network.get_network(state.network.id), "read network").mtu or 1450
    files = inventory.render(
        spec,
        state,
        auth_url=auth["auth_url"],
        region=conn.config.region_name or "RegionOne",
        credential=credential,
        cluster_dir=cdir.path,
        network_mtu=net_mtu,
    )
    inventory.write(cdir.path, files)
    (cdir.path / "artifacts").mkdir(exist_ok=True)
    common = dict(
        inventory=cdir.path / inventory.HOSTS_FILE,
        cluster_dir=cdir.path,
        say=say,
        envvars=inventory.ssh_env(cdir.path),
        forks=forks,
    )
    return kubespray_dir(target), common


WAIT_FOR_SSH_TASK = "Wait until the node answers over SSH"


def node_ssh_timeout() -> int:
    """Seconds prepare-nodes waits for every node to answer SSH (all nodes at once):
    $STACKSPRAY_NODE_SSH_TIMEOUT, default 300."""
    raw = os.environ.get("STACKSPRAY_NODE_SSH_TIMEOUT", "300")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise StackSprayError(f"STACKSPRAY_NODE_SSH_TIMEOUT: {raw!r} is not a number of seconds (1 or more)")
    return value


def prepare_nodes(
    common: dict, target: Target, limit: str | None = None, new: list[str] | None = None
) -> None:
    """playbooks/prepare-nodes.yml; a node that never answered SSH is named with what to do
    (a VM can be ACTIVE in the cloud while its OS never comes up). `new`: only these nodes are
    waited for and get their hostname; every node gets the new /etc/hosts. GPU nodes get NVIDIA's
    container toolkit (gpu.py) where the target lets nodes install vendors' packages."""
    timeout = node_ssh_timeout()
    extravars: dict = {"node_ssh_timeout": timeout, **gpu.toolkit_vars(target.vendor_packages)}
    if new:
        extravars["prepare_hosts"] = ",".join(new)
    try:
        playbook.run(
            "prepare-nodes.yml",
            project_dir=PLAYBOOKS,
            limit=limit,
            extravars=extravars,
            **common,
        )
    except playbook.PlaybookFailed as exc:
        silent = sorted({f.host for f in exc.failures if f.task == WAIT_FOR_SSH_TASK})
        if not silent:
            raise
        raise StackSprayError(
            f"{len(silent)} node(s) are ACTIVE in the cloud but did not answer SSH within {timeout} s: "
            f"{', '.join(silent)}. Look at the console (`openstack console log show NODE`), then "
            "either reboot it (`openstack server reboot --hard NODE`) or delete it (`openstack server "
            "delete NODE`), and re-run the command: it waits for a rebooted node and boots a new one in "
            f"place of a deleted one. The other nodes are kept as they are.\n{exc}"
        ) from None


def run_ours(
    book: str, cdir: ClusterDir, say, extravars: dict | None = None, forks: int | None = None
) -> playbook.PlaybookResult:
    """One of stackspray's own playbooks (playbooks/) on the cluster's inventory, with the
    cluster's ssh settings; `forks`: at most this many hosts at a time."""
    return playbook.run(
        book,
        project_dir=PLAYBOOKS,
        inventory=cdir.path / inventory.HOSTS_FILE,
        cluster_dir=cdir.path,
        say=say,
        extravars=extravars,
        envvars=inventory.ssh_env(cdir.path),
        forks=forks,
    )


def _kubespray(common: dict, cdir: ClusterDir) -> dict:
    """The run arguments of a Kubespray playbook: Kubespray's own ssh settings kept."""
    return {**common, "envvars": inventory.ssh_env(cdir.path, kubespray=True)}


def validate_inventory(spec: ClusterSpec, cdir: ClusterDir, say, kubespray_dir: Path) -> None:
    """Kubespray's own inventory validation (playbooks/boilerplate.yml: roles dynamic_groups and
    validate_inventory) on the inventory this spec would get, before any VM exists: on this
    machine only (ansible_connection=local, no SSH), the planned hosts at placeholder addresses
    of the subnet, a placeholder credential. On the sandbox the stand-in's boilerplate.yml makes
    the same assertions. A refusal is a SpecError naming the `kubernetes.*` field it is about."""
    servers = [n for g in spec.node_groups for n in spec.server_names(g)]
    hosts = ipaddress.ip_network(spec.network.cidr).hosts()
    next(hosts)  # the gateway
    state = ClusterState(
        cluster=spec.name,
        servers={n: Server(id="planned", fixed_ip=str(next(hosts))) for n in servers},
        floating_ip=FloatingIp("planned", "192.0.2.10"),
    )
    work = cdir.path / "runner" / "validate"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, mode=0o700)
    files = inventory.render(
        spec,
        state,
        auth_url="https://keystone.invalid/v3",
        region="validation",
        credential=inventory.Credential("planned", "planned", "not-a-secret"),
        cluster_dir=work,
    )
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    files.append(
        inventory.InventoryFile("group_vars/all/zz-validate-locally.yml", yaml.safe_dump(local), 0o644)
    )
    inventory.write(work, files)
    try:
        playbook.run(
            "playbooks/boilerplate.yml",
            project_dir=kubespray_dir,
            inventory=work / inventory.HOSTS_FILE,
            cluster_dir=cdir.path,
            say=lambda _m: None,
        )
    except playbook.PlaybookFailed as exc:
        problems = []
        for f in exc.failures:
            # The user's variables the refusal names: those in its message first (what it is
            # about), then those only in the task's name (what it is checked against).
            named = [k for k in spec.kubernetes.options if k in f.message]
            named += [k for k in spec.kubernetes.options if k in f.task and k not in named]
            where = ", ".join(f"kubernetes.{k}" for k in named) or "kubernetes"
            problems.append(f"{where}: Kubespray {pin()['tag']} refuses it ({f.task}): {f.message}")
        raise SpecError(
            spec.source, problems or [f"kubernetes: Kubespray's inventory validation failed: {exc}"]
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"Kubespray {pin()['tag']} accepts the inventory (playbooks/boilerplate.yml, before any VM)")


def write_inventory(conn, spec: ClusterSpec, cdir: ClusterDir, say, target: Target) -> None:
    """Regenerate the inventory from the state (no playbook runs)."""
    _setup(conn, spec, cdir, say, target)


def build(conn, spec: ClusterSpec, cdir: ClusterDir, say, target: Target, forks: int | None = None) -> Path:
    """Credential, inventory, prepare-nodes.yml, cluster.yml, kubeconfig. Returns the kubeconfig path."""
    kubespray_dir, common = _setup(conn, spec, cdir, say, target, forks)
    prepare_nodes(common, target)
    playbook.run("cluster.yml", project_dir=kubespray_dir, **_kubespray(common, cdir))
    # The credential's files on the first control-plane node, 0600 (Kubespray leaves one 0644).
    run_ours("cloud-credential.yml", cdir, say, forks=forks)
    admin = cdir.path / "artifacts" / "admin.conf"
    if not admin.exists():
        raise StackSprayError(f"cluster.yml finished but wrote no kubeconfig at {admin}")
    kubeconfig = cdir.path / secret_files.KUBECONFIG
    text = named_kubeconfig(admin.read_text(), spec.name)
    inventory.write(cdir.path, [inventory.InventoryFile(secret_files.KUBECONFIG, text, 0o600)])
    state = cdir.load()
    state.kubeconfig = str(kubeconfig)
    state.kube_cluster_name = inventory.cluster_mark(spec, state)
    state.kubespray_inputs = inventory.kubespray_inputs(spec)
    state.kube_version = kube_version(spec)
    state.kubernetes_nodes = sorted(state.servers)
    cdir.save(state)
    return kubeconfig


# What Kubespray v2.31.0 installs unless kube_version is set: the newest of kubelet_checksums
# (roles/kubespray_defaults/vars/main/checksums.yml).
DEFAULT_KUBE_VERSION = "1.35.4"


def kube_version(spec: ClusterSpec) -> str:
    """The Kubernetes version the spec asks Kubespray for (`kubernetes.kube_version`, or its default)."""
    return str(spec.kubernetes.options.get("kube_version") or DEFAULT_KUBE_VERSION).lstrip("v")


def version_change_refused(built_with: str | None, spec: ClusterSpec) -> str | None:
    """Why a changed `kubernetes.kube_version` is refused on a built cluster (None when it is not
    changed, or the state does not say what it was built with): re-running cluster.yml with a new
    version is what Kubespray's docs/operations/upgrades.md calls the unsafe upgrade — every
    component replaced at once, no cordon, no drain."""
    wanted = kube_version(spec)
    if built_with is None or wanted == built_with:
        return None
    return (
        f"kubernetes.kube_version: the cluster runs Kubernetes {built_with} and the spec asks for {wanted}; "
        "create-cluster would re-run cluster.yml, Kubespray's unsafe upgrade (every node at once, nothing "
        "cordoned or drained), so it does not. "
        + (
            f"Run `invoke upgrade --cluster {spec.name} --to {wanted}` (node by node, drained first; "
            f"docs/upgrades.md), or set kube_version back to {built_with}. "
            if _newer(wanted, built_with)
            else f"A downgrade is not possible: set kube_version back to {built_with}. "
        )
        + "Nothing was changed"
    )


def _newer(a: str, b: str) -> bool:
    try:
        return tuple(int(p) for p in a.split(".")) > tuple(int(p) for p in b.split("."))
    except ValueError:
        return False


def named_kubeconfig(text: str, cluster: str) -> str:
    """Kubespray's admin.conf with the cluster's name as cluster, user and context name (Kubespray
    names them cluster.local / kubernetes-admin on every cluster, so two clusters' kubeconfigs
    would collide in one KUBECONFIG). Anything else in the file is kept."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or len(doc.get("clusters") or []) != 1 or len(doc.get("users") or []) != 1:
        raise StackSprayError("the admin.conf Kubespray wrote is not a one-cluster kubeconfig")
    doc["clusters"][0]["name"] = cluster
    doc["users"][0]["name"] = cluster
    doc["contexts"] = [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}]
    doc["current-context"] = cluster
    return yaml.safe_dump(doc, sort_keys=False)


def add_workers(
    conn, spec: ClusterSpec, cdir: ClusterDir, say, names: list[str], target: Target, forks: int | None = None
) -> None:
    """New workers join an existing cluster: prepare-nodes.yml (the new nodes waited for and named,
    every node's /etc/hosts), then scale.yml --limit to the new nodes.

    scale.yml's checks need the facts of the hosts it leaves out (Kubespray's docs/operations/
    nodes.md: run playbooks/facts.yml first); it gathers the new nodes' own (its
    internal_facts.yml). So facts.yml runs on the other hosts only, and while prepare-nodes
    runs: those hosts are prepared already, and nothing prepare-nodes changes is a fact."""
    kubespray_dir, common = _setup(conn, spec, cdir, say, target, forks)
    limit = ",".join(names)
    others = "all:" + ":".join(f"!{n}" for n in names)
    with ThreadPoolExecutor(max_workers=1) as pool:
        run = _kubespray(common, cdir)
        book = "playbooks/facts.yml"
        facts = pool.submit(playbook.run, book, project_dir=kubespray_dir, limit=others, **run)
        prepare_nodes(common, target, new=names)  # a failure waits for facts.yml (the with), then is raised
        facts.result()
    playbook.run("scale.yml", project_dir=kubespray_dir, limit=limit, **_kubespray(common, cdir))
    state = cdir.load()
    if state.kubernetes_nodes is not None:
        state.kubernetes_nodes = sorted(set(state.kubernetes_nodes) | set(names))
        cdir.save(state)


def upgrade(
    conn,
    spec: ClusterSpec,
    cdir: ClusterDir,
    say,
    nodes: list[str],
    target: Target,
    extravars: dict | None = None,
    forks: int | None = None,
) -> None:
    """Kubespray's graceful upgrade (upgrade-cluster.yml) to the spec's kube_version, limited to
    `nodes` (a shelved node would fail the whole run: kubernetes-sigs/kubespray#10313). The
    control plane goes one node at a time, the workers in batches of `serial`; each node is
    cordoned, drained, upgraded and uncordoned by the playbook itself."""
    kubespray_dir, common = _setup(conn, spec, cdir, say, target, forks)
    run = _kubespray(common, cdir)
    if extravars:
        run["extravars"] = {**(run.get("extravars") or {}), **extravars}
    playbook.run("upgrade-cluster.yml", project_dir=kubespray_dir, limit=",".join(nodes), **run)


def remove_workers(
    conn,
    spec: ClusterSpec,
    cdir: ClusterDir,
    say,
    names: list[str],
    gone: list[str],
    target: Target,
    forks: int | None = None,
) -> None:
    """Before their VMs are deleted: Kubespray's remove-node.yml drains the nodes, resets them and
    deletes them from the cluster. Nodes whose VM is already gone (or not running) cannot be
    drained or reset: `reset_nodes=false allow_ungraceful_removal=true` for those."""
    state = cdir.load()
    # The inventory must still list the nodes being removed: widen each group to its highest server.
    highest: dict[str, int] = {}
    for sname in state.servers:
        for g in spec.node_groups:
            prefix = f"{spec.name}-{g.name}-"
            if sname.startswith(prefix) and sname[len(prefix) :].isdigit():
                highest[g.name] = max(highest.get(g.name, 0), int(sname[len(prefix) :]))
    widened = dataclasses.replace(
        spec,
        node_groups=tuple(
            dataclasses.replace(g, count=max(g.count, highest.get(g.name, 0))) for g in spec.node_groups
        ),
    )
    kubespray_dir, common = _setup(conn, widened, cdir, say, target, forks)
    for batch, extra in (
        ([n for n in names if n not in gone], {}),
        ([n for n in names if n in gone], {"reset_nodes": "false", "allow_ungraceful_removal": "true"}),
    ):
        if batch:
            playbook.run(
                "remove-node.yml",
                project_dir=kubespray_dir,
                extravars={"node": ",".join(batch), "skip_confirmation": "true", **extra},
                **_kubespray(common, cdir),
            )
    state = cdir.load()
    if state.kubernetes_nodes is not None:
        state.kubernetes_nodes = [n for n in state.kubernetes_nodes if n not in names]
        cdir.save(state)


def kubespray_step(
    actions: list,
    built: bool,
    control_plane_prefix: str,
    inputs_changed: bool = False,
    unjoined: list[str] | tuple[str, ...] = (),
) -> tuple[str, list[str]]:
    """Which Kubespray run the plan's changes call for: ("build", []) cluster.yml, ("scale", new
    workers) facts.yml + scale.yml --limit, or ("none", []). Server removals are handled before
    the VMs go (remove_workers), so they need nothing here; security groups and ports are the
    cloud's alone. `inputs_changed`: the spec's Kubespray variables differ from the last build's.
    `unjoined`: servers that exist but Kubespray never joined (state.kubernetes_nodes): they join
    as new ones do."""
    if not built or inputs_changed:
        return "build", []
    created = [a.name for a in actions if a.resource == "server" and a.kind == "create"]
    created += [n for n in unjoined if n not in created]
    if any(n.startswith(control_plane_prefix) for n in created):
        return "build", []  # control-plane nodes join through cluster.yml (Kubespray's rule)
    other = [
        a
        for a in actions
        if a.kind not in ("noop", "conflict")
        and a.resource
        not in ("server", "port", "server-group", "share", "access-rule", "security-group", "dns-record")
    ]
    if other:
        return "build", []
    return ("scale", created) if created else ("none", [])
