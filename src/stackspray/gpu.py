"""GPU node groups: which groups have GPUs, and what makes a pod's `nvidia.com/gpu` schedulable there.

A group has GPUs when its spec says `gpus: N`, else when its flavor is in `GPU_FLAVORS` (Jetstream2's
g3 flavors, each one vGPU), else when the flavor's properties ask Nova for them (`resources:VGPU`,
Nova's "Attaching virtual GPU devices to guests"; `pci_passthrough:alias`, Nova's "Attaching
physical PCI devices to guests"). On the nodes of such a group, unless the spec's `gpu.install` is
false:

- NVIDIA's container toolkit, from NVIDIA's apt repository, pinned (playbooks/prepare-nodes.yml,
  before Kubespray: containerd must find the runtime it is told to use), and its runtime made the
  node's default through Kubespray's own `containerd_additional_runtimes` and
  `containerd_default_runtime` (roles/container-engine/containerd/templates/config.toml.j2), so
  every cluster.yml keeps it;
- NVIDIA's device plugin, the DaemonSet of k8s-device-plugin's static manifest
  (deployments/static/nvidia-device-plugin.yml at v0.17.1), applied through the API server by
  playbooks/gpu.yml, placed only on the GPU groups (node affinity on stackspray's group label) and
  tolerating their taints. Once its pod registers with the kubelet, the node advertises
  `nvidia.com/gpu` in its capacity; before that a pod asking for one stays Pending.

No driver is installed: Jetstream2's GPU instances run images that carry NVIDIA's vGPU guest
driver (a driver install would need its licensed vGPU build). docs/gpu.md says why the device
plugin and not NVIDIA's GPU Operator.

Everything here is pure; gpu_setup.py writes it into the inventory and runs the playbook.
"""

from __future__ import annotations

from . import names
from .spec import TAINT_RE, ClusterSpec, NodeGroup

# Jetstream2's GPU flavors (docs.jetstream-cloud.org/general/vmsizes/, read 2026-12-06): every g3
# flavor is one vGPU, a slice of an A100 (g3.small 1/5 … g3.xl the whole GPU), seen by the guest
# as one GPU.
GPU_FLAVORS = {"g3.small": 1, "g3.medium": 1, "g3.large": 1, "g3.xl": 1}
GPU_RESOURCE = "nvidia.com/gpu"
# The taint Kubespray puts on its own NVIDIA GPU nodes (roles/kubernetes/node-taint/tasks/main.yml,
# nvidia_accelerator_enabled), which the device plugin's manifest tolerates.
GPU_TAINT = "nvidia.com/gpu=:NoSchedule"

DEVICE_PLUGIN_VERSION = "v0.17.1"
DEVICE_PLUGIN_IMAGE = f"nvcr.io/nvidia/k8s-device-plugin:{DEVICE_PLUGIN_VERSION}"
DEVICE_PLUGIN_NAME = "nvidia-device-plugin-daemonset"
DEVICE_PLUGIN_NAMESPACE = "kube-system"
PLUGIN_POD_LABEL = "nvidia-device-plugin-ds"  # the manifest's pod label `name`
PLUGINS_DIR = "/var/lib/kubelet/device-plugins"  # where the kubelet's registration socket is
# NVIDIA Container Toolkit's install guide (apt): the repository, its key and the package, pinned.
TOOLKIT_VERSION = "1.17.8-1"
TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /"
TOOLKIT_KEY = "https://nvidia.github.io/libnvidia-container/gpgkey"
# The containerd runtime the toolkit's `nvidia-ctk runtime configure --runtime=containerd` would
# add, written as Kubespray's containerd_additional_runtimes entry (the runc entry's shape, its
# base runtime spec kept so the nvidia runtime gets the same rlimits).
NVIDIA_RUNTIME = {
    "name": "nvidia",
    "type": "io.containerd.runc.v2",
    "base_runtime_spec": "cri-base.json",
    "options": {"BinaryName": "/usr/bin/nvidia-container-runtime", "SystemdCgroup": "true"},
}


def flavor_gpus(flavor: str, properties: dict | None = None) -> int:
    """GPUs a server of `flavor` shows its guest: the table first, then Nova's properties."""
    if flavor in GPU_FLAVORS:
        return GPU_FLAVORS[flavor]
    props = properties or {}
    try:
        vgpus = int(str(props.get("resources:VGPU", "0")))
    except ValueError:
        vgpus = 0
    passthrough = 0
    for alias in str(props.get("pci_passthrough:alias", "")).split(","):
        _, _, count = alias.partition(":")
        passthrough += int(count) if count.strip().isdigit() else 0
    return vgpus + passthrough


def group_gpus(group: NodeGroup, properties: dict | None = None) -> int:
    """GPUs per node of `group`: the spec's `gpus`, else what its flavor shows."""
    return group.gpus if group.gpus is not None else flavor_gpus(group.flavor, properties)


def gpu_groups(spec: ClusterSpec) -> dict[str, int]:
    """The spec's groups with GPUs, and how many per node."""
    return {g.name: n for g in spec.node_groups if (n := group_gpus(g))}


def host_vars(spec: ClusterSpec, group: str, user_runtimes: list | None = None) -> dict:
    """Variables of a host of `group`: its GPUs (`stackspray_gpus`, which the inventory also puts
    in the node's labels), its group's taints (Kubespray's node_taints) and, on a GPU group with
    gpu.install, NVIDIA's runtime as containerd's default."""
    g = spec.group(group)
    out: dict = {}
    if g is None:
        return out
    if group_gpus(g):
        out["stackspray_gpus"] = group_gpus(g)
    if g.taints:
        out["node_taints"] = list(g.taints)
    if spec.gpu_install and group_gpus(g):
        out["stackspray_gpu"] = True
        out["containerd_additional_runtimes"] = [*(user_runtimes or []), NVIDIA_RUNTIME]
        out["containerd_default_runtime"] = NVIDIA_RUNTIME["name"]
    return out


def device_plugin(spec: ClusterSpec) -> dict:
    """NVIDIA's device plugin DaemonSet, as k8s-device-plugin's static manifest has it, placed on
    the GPU groups only and tolerating their taints."""
    groups = sorted(gpu_groups(spec))
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    for name in groups:
        for taint in spec.group(name).taints:  # type: ignore[union-attr]
            m = TAINT_RE.fullmatch(taint)
            assert m is not None  # the spec checked it
            tol = {"key": m["key"], "operator": "Exists", "effect": m["effect"]}
            if tol not in tolerations:
                tolerations.append(tol)
    labels = {"name": PLUGIN_POD_LABEL}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": DEVICE_PLUGIN_NAME,
            "namespace": DEVICE_PLUGIN_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "stackspray", "stackspray.io/cluster": spec.name},
        },
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": names.GROUP_LABEL, "operator": "In", "values": groups}
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "tolerations": tolerations,
                    "priorityClassName": "system-node-critical",
                    "containers": [
                        {
                            "image": DEVICE_PLUGIN_IMAGE,
                            "name": "nvidia-device-plugin-ctr",
                            "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {
                                    "name": "kubelet-device-plugins-dir",
                                    "mountPath": "/var/lib/kubelet/device-plugins",
                                }
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "kubelet-device-plugins-dir",
                            "hostPath": {"path": PLUGINS_DIR, "type": "Directory"},
                        }
                    ],
                },
            },
        },
    }


def toolkit_vars(install: bool) -> dict:
    """What prepare-nodes.yml's GPU play reads: whether to install the toolkit, and from where."""
    return {
        "gpu_install_toolkit": install,
        "gpu_toolkit_version": TOOLKIT_VERSION,
        "gpu_toolkit_repo": TOOLKIT_REPO,
        "gpu_toolkit_key": TOOLKIT_KEY,
    }


def spec_warnings(spec: ClusterSpec, flavors: dict[str, dict]) -> list[str]:
    """What a careful operator is told before anything is made: a flavor whose properties ask Nova
    for GPUs while the group is not known to have them, and `gpu-node`, which upstream Kubespray
    v2.31.0 knows nothing of (a group of a Jetstream2 fork and of the contrib Terraform)."""
    out = []
    for g in spec.node_groups:
        props = (flavors.get(g.flavor) or {}).get("extra_specs") or {}
        n = flavor_gpus(g.flavor, props)
        if n and not group_gpus(g):
            out.append(
                f"node_groups.{g.name}: flavor {g.flavor} asks Nova for {n} GPU(s) (its properties) but "
                f"is not in stackspray's GPU table: set `node_groups.{g.name}.gpus: {n}` so its nodes get "
                "NVIDIA's runtime and device plugin"
            )
        if "gpu-node" in g.extra_groups:
            out.append(
                f"node_groups.{g.name}.extra_groups: `gpu-node` means nothing to Kubespray v2.31.0; GPU "
                "groups are found from the flavor (or `gpus:`) — see docs/gpu.md"
            )
    return out


def is_device_plugin_pod(pod: dict) -> bool:
    """A pod of stackspray's device plugin DaemonSet (its template's label)."""
    meta = pod.get("metadata") or {}
    return (
        meta.get("namespace") == DEVICE_PLUGIN_NAMESPACE
        and (meta.get("labels") or {}).get("name") == PLUGIN_POD_LABEL
        and (pod.get("status") or {}).get("phase") == "Running"
    )


def node_gpus(node: dict) -> dict | None:
    """A GPU node's GPUs as its Node object tells them: `has` (the flavor's, from stackspray's
    label) and `offers` (allocatable nvidia.com/gpu, there once the device plugin registered).
    None for a node that is not in a GPU group and offers none."""
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    label = (meta.get("labels") or {}).get(names.GPUS_LABEL)
    offered = (status.get("allocatable") or {}).get(GPU_RESOURCE)
    if label is None and offered is None:
        return None
    try:
        has = int(label) if label is not None else None
    except ValueError:
        has = None
    try:
        offers = int(str(offered or "0"))
    except ValueError:
        offers = 0
    return {"has": has, "offers": offers}


def describe(spec: ClusterSpec) -> str:
    groups = gpu_groups(spec)
    if not groups:
        return "no GPU groups"
    return ", ".join(f"{g} ({n} per node)" for g, n in sorted(groups.items()))
