"""`invoke upgrade`: move a cluster to a newer Kubernetes release the way Kubespray does it
gracefully — upgrade-cluster.yml, node by node, each cordoned and drained first — with its
shelved workers left behind and caught up when they are unshelved.

Observe (servers, Nodes and their kubelet versions, the API server's version), plan with the
pure `upgrade_plan.plan_upgrade` (every refusal before anything changes), print it (`--dry-run`
stops there). Then, holding the cluster's node Lease (the autoscaler waits): the spec's
`kubernetes.kube_version` set to the new version (the spec stays the one source of truth; only
that value is rewritten), an etcd backup, the shelved workers woken with `wake_shelved`,
upgrade-cluster.yml limited to the nodes that need it (never a shelved one: it would fail the
whole run), the versions read back, the workers left behind recorded (`status` shows them;
`scale` upgrades each when it unshelves it, before its uncordon), the woken ones shelved again.
An interrupted upgrade is finished by the same command: nodes already at the version are left
out of the next run.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, ScalarNode

from . import autoscale_agent, etcd_backup, inventory, lease
from .cloudapi import CloudAPI, connect_api
from .cluster_state import Upgrade
from .errors import SpecError, StackSprayError
from .hibernate_plan import hibernated_refusal
from .kube import Kube, kubelet_version, node_is_ready
from .kubespray import upgrade as kubespray_upgrade
from .names import META_GROUP
from .observe import owned_servers
from .progress import Progress
from .resize import write_spec_file
from .scale import Request, scale_cluster
from .spec import CONTROL_PLANE, load_spec
from .state import ClusterDir
from .target import resolve
from .upgrade_plan import NodeView, UpgradeError, plan_upgrade, version


@dataclass
class UpgradeResult:
    """The plan, and after a run the versions every node reports."""

    cluster: str
    to: str
    dry_run: bool
    server_before: str
    steps: list[dict] = field(default_factory=list)
    behind: list[str] = field(default_factory=list)
    batch_size: int = 0
    snapshot: str | None = None
    server_after: str | None = None
    kubelets: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    log: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def observe(api: CloudAPI, kube: Kube, cluster: str) -> list[NodeView]:
    """Every server of the cluster with its Node's kubelet version and readiness."""
    servers = {s.name: s for s in owned_servers(api, cluster)}
    nodes = {n["metadata"]["name"]: n for n in kube.list_json("nodes")}
    views = []
    for name, s in servers.items():
        n = nodes.get(name)
        views.append(
            NodeView(
                name=name,
                status=s.status,
                kubelet=kubelet_version(n).lstrip("v") or None,
                ready=node_is_ready(n) if n is not None else None,
                control_plane=(s.metadata or {}).get(META_GROUP) == CONTROL_PLANE,
            )
        )
    return views


def edit_kube_version(text: str, to: str, source: str = "<spec>") -> str:
    """`text` with `kubernetes.kube_version` set to `to` (quoted), nothing else changed: the value
    rewritten where it is written, else one line added under `kubernetes:`, else a `kubernetes:`
    section appended. SpecError when that would change more (an anchor, a flow mapping)."""
    try:
        root = yaml.compose(text)
        expected = copy.deepcopy(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"(file): not valid YAML: {exc}"]) from exc
    if not isinstance(root, MappingNode) or not isinstance(expected, dict):
        raise SpecError(source, ["(file): not a cluster spec"])
    kube_node = next(
        (v for k, v in root.value if isinstance(k, ScalarNode) and k.value == "kubernetes"), None
    )
    quoted = f'"{to}"'
    if kube_node is None:
        new = text.rstrip("\n") + f"\nkubernetes:\n  kube_version: {quoted}\n"
    elif not isinstance(kube_node, MappingNode) or kube_node.flow_style:
        raise SpecError(source, ["kubernetes: is not a block mapping here — set kube_version by hand"])
    else:
        value = next(
            (v for k, v in kube_node.value if isinstance(k, ScalarNode) and k.value == "kube_version"), None
        )
        if value is not None:
            new = text[: value.start_mark.index] + quoted + text[value.end_mark.index :]
        else:
            first_key = kube_node.value[0][0] if kube_node.value else None
            if first_key is None:
                raise SpecError(source, ["kubernetes: is empty here — set kube_version by hand"])
            line_start = text.rfind("\n", 0, first_key.start_mark.index) + 1
            indent = text[line_start : first_key.start_mark.index]
            new = text[:line_start] + f"{indent}kube_version: {quoted}\n" + text[line_start:]
    expected.setdefault("kubernetes", {})
    if expected["kubernetes"] is None:
        expected["kubernetes"] = {}
    expected["kubernetes"]["kube_version"] = to
    try:
        same = yaml.safe_load(new) == expected
    except yaml.YAMLError:
        same = False
    if not same:
        raise SpecError(source, ["kubernetes.kube_version: cannot be rewritten alone here — set it by hand"])
    return new


def upgrade(
    name: str,
    to: str,
    *,
    dry_run: bool = False,
    wake_shelved: bool = False,
    root: Path | None = None,
    progress: Progress | None = None,
    api: CloudAPI | None = None,
    lease_wait: float = 600.0,
) -> UpgradeResult:
    """Plan and (unless dry_run) carry out the upgrade of cluster `name` to Kubernetes `to`."""
    say = progress or Progress()
    started = time.monotonic()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    if not state.kubeconfig:
        raise UpgradeError(
            f"cluster {name!r} has no Kubernetes to upgrade: run `invoke create-cluster` first"
        )
    if not state.spec or not Path(state.spec).exists():
        raise UpgradeError(
            f"the cluster's spec {state.spec!r} is not there: the upgrade sets its kubernetes.kube_version, "
            "so put it back, then upgrade"
        )
    spec_path = Path(state.spec)
    refusal = hibernated_refusal(state, "upgrade") or (
        "a credential rotation is pending: finish it with `invoke credentials.refresh` first"
        if state.rotation is not None
        else None
    )
    api = api or connect_api(state.cloud)
    kube = Kube(state.kubeconfig)
    server = kube.server_version().lstrip("v")
    nodes = observe(api, kube, name)
    plan = plan_upgrade(nodes, server, to, wake_shelved=wake_shelved, refusal=refusal)
    edited = edit_kube_version(spec_path.read_text(), plan.to, str(spec_path))  # refused before anything
    result = UpgradeResult(
        name, plan.to, dry_run, server, [s.to_dict() for s in plan.steps], plan.behind, plan.batch_size
    )
    for s in plan.steps:
        if s.action != "noop":
            batch = f" (batch {s.batch})" if s.batch else ""
            say(f"plan: {s.action}{' ' + s.node if s.node else ''}{batch}: {s.reason}")
    todo = [s.node for s in plan.steps if s.action == "upgrade"]
    finishing = state.upgrade is not None and state.upgrade.to == plan.to
    if dry_run or (not todo and not finishing and state.kube_version == plan.to):
        if not dry_run:
            say(f"nothing to upgrade: every reachable node runs {plan.to}")
        return result
    with cdir.run_log("upgrade") as log, lease.holding(kube, "upgrade", say, wait=lease_wait):
        result.log = str(log)
        if spec_path.read_text() != edited:
            write_spec_file(spec_path, edited)
            say(f"{spec_path}: kubernetes.kube_version is now {plan.to}")
        spec = load_spec(spec_path)
        if todo and any(s.action == "snapshot" for s in plan.steps):
            taken = etcd_backup.backup(name, root=root, progress=say)
            result.snapshot = taken.backup["id"]
            say(f"etcd backup {result.snapshot} taken before any node is touched")
        with cdir.lock("upgrade"):
            st = cdir.load()
            schedulable = {
                n["metadata"]["name"]
                for n in kube.list_json("nodes")
                if not (n.get("spec") or {}).get("unschedulable")
            }
            before = set(st.upgrade.schedulable) if finishing else set()
            st.upgrade = Upgrade(plan.to, sorted(before | (schedulable & set(todo))))
            cdir.save(st)
            # First what an interrupted run left cordoned: the drains to come need room to move
            # pods to (with a budget, a drain would otherwise wait for it forever).
            _uncordon_left(cdir, kube, say)
            if todo:
                _upgrade_nodes(name, plan, spec, cdir, say, root, api, kube)
            _uncordon_left(cdir, kube, say)
        after = observe(api, kube, name)
        result.server_after = kube.server_version().lstrip("v")
        result.kubelets = {n.name: n.kubelet or "?" for n in after}
        behind = sorted(n.name for n in after if n.kubelet and version(n.kubelet) != version(plan.to))
        missed = [n for n in behind if n in todo]
        st = cdir.load()
        st.upgrade_behind = [n for n in behind if n not in missed]
        if not missed and version(result.server_after) == version(plan.to):
            # What create-cluster compares with the spec: the cluster was built (upgraded) from it,
            # so the next converge does not take the new kube_version for a change to re-run.
            st.kube_version = plan.to
            st.kubespray_inputs = inventory.kubespray_inputs(spec)
            st.upgrade = None
        cdir.save(st)
        _tell_the_agent(st, kube)
        result.behind = st.upgrade_behind
        if missed:
            raise StackSprayError(
                f"upgrade-cluster.yml finished but {', '.join(missed)} still report an older kubelet: "
                f"see {log}"
            )
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _tell_the_agent(state, kube: Kube) -> None:
    """The autoscaler's agent on the cluster learns which workers are behind (it leaves them
    cordoned when it wakes them)."""
    if state.autoscale is not None and state.autoscale.service == "cluster":
        autoscale_agent.write_upgrade_behind(kube, state.upgrade_behind)


def _uncordon_left(cdir: ClusterDir, kube: Kube, say: Progress) -> None:
    """Nodes that were schedulable when the upgrade began and are cordoned now — an interrupted
    run stopped between Kubespray's cordon and its uncordon: uncordoned. Before a re-run, so its
    drains have room to move pods to and Kubespray cordons and drains a half-done node again
    (it never drains a node it finds cordoned); after it, in case it stopped again."""
    st = cdir.load()
    if st.upgrade is None:
        return
    for n in kube.list_json("nodes"):
        node = n["metadata"]["name"]
        if node in st.upgrade.schedulable and (n.get("spec") or {}).get("unschedulable"):
            kube.uncordon(node)
            say(f"{node}: uncordoned (an interrupted upgrade had left it cordoned)")


def _upgrade_nodes(
    name, plan, spec, cdir: ClusterDir, say: Progress, root, api: CloudAPI, kube: Kube
) -> None:
    """Under the cluster's lock: wake what --wake-shelved asks for, run upgrade-cluster.yml on the
    nodes that need it, shelve the woken ones again."""
    woken = tuple(s.node for s in plan.steps if s.action == "wake")
    common = dict(progress=say, root=root, api=api, kube=kube, locked=True)
    if woken:
        scale_cluster(name, Request(unshelve="all", nodes=woken), **common)
    todo = [s.node for s in plan.steps if s.action == "upgrade"]
    kubespray_upgrade(api.conn, spec, cdir, say, todo, resolve(api.conn, spec))
    if woken:
        scale_cluster(name, Request(shelve="all", nodes=woken), **common)


def catch_up(name: str, node: str, *, root: Path | None = None, say: Progress | None = None) -> None:
    """A worker left behind by an upgrade, just unshelved and still cordoned: upgrade-cluster.yml
    limited to it (its pre-upgrade finds it cordoned, so it leaves it so; scale uncordons it
    after). Given to scale by the commands of the operator's machine; runs under scale's lock."""
    say = say or Progress()
    cdir = ClusterDir(name, root)
    state = cdir.load()
    spec = load_spec(state.spec)
    conn = connect_api(state.cloud).conn
    say(
        f"{node}: left behind by an upgrade while shelved: upgrade-cluster.yml --limit {node} "
        "before its uncordon"
    )
    kubespray_upgrade(conn, spec, cdir, say, [node], resolve(conn, spec))
    state = cdir.load()
    state.upgrade_behind = [n for n in state.upgrade_behind if n != node]
    cdir.save(state)
    _tell_the_agent(state, Kube(state.kubeconfig))
