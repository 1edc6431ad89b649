"""What `invoke upgrade` would do, as a pure function: the nodes as observed (Nova status, Node
Ready, kubelet version), the API server's version and the version asked for → the refusals
Kubespray and kubeadm would make (made here first, before anything changes) or the order of the
upgrade: an etcd snapshot, the control plane one node at a time, then the workers in Kubespray's
batches (`serial`, 20 % by default), each cordoned, drained, upgraded and uncordoned; shelved
workers stay behind (or are woken for it with `wake_shelved`). Tested table-driven from fixture
files.

The rules and where they come from:
- versions: those Kubespray v2.31.0 has checksums for (roles/kubespray_defaults/vars/main/
  checksums.yml, kubelet_checksums: 1.33.0–1.35.4); its validate_inventory refuses any other.
- one minor at a time: kubeadm's upgrade version policy (cmd/kubeadm/app/phases/upgrade/
  policy.go EnforceVersionPolicies, MaximumAllowedMinorVersionUpgradeSkew = 1) and Kubespray's
  docs/operations/upgrades.md; no downgrade: upgrade-cluster.yml only upgrades.
- a shelved worker's kubelet may stay at most three minors older than the API server (the
  Kubernetes version skew policy for kubelet since 1.28).
- batches: Ansible's `serial` with a percentage is floor(pct × hosts / 100), at least 1
  (lib/ansible/utils/helpers.py pct_to_int).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import StackSprayError
from .names import natural_key

# kubelet_checksums['amd64'] of Kubespray v2.31.0 (1c9add48975060f45396b34d8e022c30d7f80dab).
SUPPORTED = tuple(
    [f"1.33.{p}" for p in range(12)] + [f"1.34.{p}" for p in range(8)] + [f"1.35.{p}" for p in range(5)]
)
KUBELET_SKEW = 3  # minors a kubelet may be older than kube-apiserver
SHELVED = ("SHELVED", "SHELVED_OFFLOADED")


class UpgradeError(StackSprayError):
    """The upgrade cannot be done as asked; nothing was changed."""


def version(text: str) -> tuple[int, int, int]:
    """'v1.34.2' or '1.34.2' → (1, 34, 2); UpgradeError for anything else."""
    parts = str(text).strip().lstrip("v").split(".")
    try:
        major, minor, patch = (int(p) for p in parts)
    except ValueError:
        raise UpgradeError(f"{text!r} is not a Kubernetes version such as 1.35.4") from None
    return major, minor, patch


def show(v: tuple[int, int, int]) -> str:
    return ".".join(str(p) for p in v)


def within_skew(kubelet: str, server: str) -> bool:
    """Whether kube-apiserver `server` supports kubelet `kubelet` (Kubernetes' version skew
    policy: never newer, at most KUBELET_SKEW minor releases older). A version that cannot be
    read (empty, or not x.y.z) is not judged here: True."""
    try:
        k, s = version(kubelet), version(server)
    except UpgradeError:
        return True
    return k <= s and k[0] == s[0] and s[1] - k[1] <= KUBELET_SKEW


@dataclass(frozen=True)
class NodeView:
    """One node as the planner sees it."""

    name: str
    status: str  # Nova status
    kubelet: str | None  # the Node's kubeletVersion (None: Kubernetes does not know the node)
    ready: bool | None = None  # the Node's Ready condition (None: no Node)
    control_plane: bool = False


@dataclass
class Step:
    action: str  # snapshot | upgrade | wake | shelve | behind | noop
    reason: str
    node: str = ""
    batch: int = 0  # 0: the control plane (one at a time); 1, 2, …: the workers' batches

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class UpgradePlan:
    """The steps in order, the workers left behind, the batch size used for the workers."""

    to: str
    steps: list[Step] = field(default_factory=list)
    behind: list[str] = field(default_factory=list)
    batch_size: int = 0

    def to_dict(self) -> dict:
        return {**asdict(self), "steps": [s.to_dict() for s in self.steps]}


def batch_size(serial: str | int, hosts: int) -> int:
    """Ansible's batch size for `serial` over `hosts` hosts (pct_to_int: floor, at least 1)."""
    text = str(serial).strip()
    if text.endswith("%"):
        return max(1, int(int(text[:-1]) / 100.0 * hosts))
    return max(1, int(text))


def plan_upgrade(
    nodes: list[NodeView],
    server: str,
    to: str,
    *,
    serial: str | int = "20%",
    wake_shelved: bool = False,
    refusal: str | None = None,
) -> UpgradePlan:
    """The upgrade of the cluster whose API server runs `server` to `to` (see the module's
    docstring). `refusal`: a reason the cluster cannot be upgraded now (a pending credential
    rotation, hibernation), raised as it is. Raises UpgradeError naming what to do."""
    if refusal:
        raise UpgradeError(refusal)
    want, now = version(to), version(server)
    if show(want) not in SUPPORTED:
        raise UpgradeError(
            f"--to {to}: the pinned Kubespray (v2.31.0) has no checksums for Kubernetes {show(want)} "
            "(roles/kubespray_defaults/vars/main/checksums.yml); it installs "
            f"{SUPPORTED[0]} to {SUPPORTED[-1]}. "
            "For a newer release, move to a newer Kubespray first (docs/upgrades.md)"
        )
    if want < now:
        raise UpgradeError(
            f"--to {show(want)}: the cluster runs {show(now)}; stackspray does not downgrade (Kubespray's "
            "upgrade-cluster.yml only upgrades). To go back, restore an etcd backup taken before the upgrade "
            "on a cluster built at that version (docs/upgrades.md)"
        )
    if want[:2] > (now[0], now[1] + 1):
        step = f"{now[0]}.{now[1] + 1}"
        newest = max((v for v in SUPPORTED if v.startswith(step + ".")), key=version, default=None)
        raise UpgradeError(
            f"--to {show(want)}: the cluster runs {show(now)}; Kubernetes is upgraded one minor release at a "
            f'time (kubeadm: "Specified version to upgrade to "v{show(want)}" is too high; kubeadm can '
            f'upgrade only 1 minor version at a time"). Upgrade to {newest or step + ".x"} first, then to '
            f"{show(want)}"
        )
    unready = [
        n.name for n in nodes if n.status not in SHELVED and n.kubelet is not None and n.ready is not True
    ]
    if unready:
        raise UpgradeError(
            f"{', '.join(unready)}: not Ready (and not shelved); Kubespray's upgrade fails on a node it "
            "cannot reach. Heal it (`invoke heal`) or remove it, then upgrade"
        )
    cp = sorted((n for n in nodes if n.control_plane), key=lambda n: natural_key(n.name))
    workers = sorted((n for n in nodes if not n.control_plane), key=lambda n: natural_key(n.name))
    too_old = [
        n.name
        for n in workers
        if n.status in SHELVED and n.kubelet and want[1] - version(n.kubelet)[1] > KUBELET_SKEW
    ]
    if too_old and not wake_shelved:
        raise UpgradeError(
            f"{', '.join(too_old)}: shelved with a kubelet more than {KUBELET_SKEW} minor releases older "
            f"than {show(want)} would be (the Kubernetes version skew policy). Add --wake-shelved to "
            "upgrade them too (they are shelved again after), or unshelve them first"
        )

    def current(n: NodeView) -> bool:
        return n.kubelet is not None and version(n.kubelet) == want

    plan = UpgradePlan(to=show(want))
    if want != now or not all(current(n) for n in nodes if n.status not in SHELVED):
        plan.steps.append(Step("snapshot", "an etcd snapshot before the first node is touched"))
    for n in cp:
        if current(n):
            plan.steps.append(Step("noop", f"already at {show(want)}", n.name))
        else:
            plan.steps.append(
                Step("upgrade", f"{n.kubelet} → {show(want)}: control plane, one at a time", n.name)
            )
    todo = []
    for n in workers:
        if current(n):
            plan.steps.append(Step("noop", f"already at {show(want)}", n.name))
        elif n.status in SHELVED and not wake_shelved:
            plan.steps.append(
                Step("behind", f"shelved at {n.kubelet}: upgraded when it is unshelved", n.name)
            )
            plan.behind.append(n.name)
        else:
            if n.status in SHELVED:
                plan.steps.append(
                    Step("wake", "--wake-shelved: unshelved for the upgrade, shelved again after", n.name)
                )
            todo.append(n)
    plan.batch_size = batch_size(serial, len(todo)) if todo else 0
    for i, n in enumerate(todo):
        plan.steps.append(
            Step(
                "upgrade",
                f"{n.kubelet} → {show(want)}: cordon, drain, upgrade, uncordon",
                n.name,
                batch=1 + i // plan.batch_size,
            )
        )
    for n in todo:
        if n.status in SHELVED:
            plan.steps.append(Step("shelve", "shelved again, as it was", n.name))
    if not any(s.action == "upgrade" for s in plan.steps):
        plan.steps = [s for s in plan.steps if s.action != "snapshot"]
    return plan
