"""GPU support in a built cluster: playbooks/gpu.yml applies (or removes) NVIDIA's device plugin.

The node side (NVIDIA's container toolkit, containerd's runtime) comes with prepare-nodes.yml and
Kubespray's own variables (gpu.py, inventory.py); here only the DaemonSet. A fingerprint of what
was applied is kept in the state, so a re-run with nothing changed runs no playbook, and a
cluster that never had a GPU group never runs it.
"""

from __future__ import annotations

from . import gpu, inventory, kubespray
from .spec import ClusterSpec
from .state import ClusterDir

VARS_FILE = "group_vars/all/gpu.yml"


def gpu_files(spec: ClusterSpec, *, kubeconfig: str) -> list[inventory.InventoryFile]:
    """The inventory file playbooks/gpu.yml reads (pure)."""
    wanted = spec.gpu_install and bool(gpu.gpu_groups(spec))
    variables = {
        "stackspray_kubeconfig": kubeconfig,
        "gpu_device_plugin_state": "present" if wanted else "absent",
        "gpu_device_plugin": gpu.device_plugin(spec),
    }
    header = f"GPU support of cluster {spec.name} (playbooks/gpu.yml)"
    return [inventory.InventoryFile(VARS_FILE, inventory._dump(variables, header), 0o644)]


def setup_gpu(spec: ClusterSpec, cdir: ClusterDir, say, *, forks: int | None = None) -> dict | None:
    """Run playbooks/gpu.yml unless what it would apply was applied already. None: the cluster has
    no GPU group and never had a device plugin from stackspray."""
    state = cdir.load()
    groups = gpu.gpu_groups(spec)
    if not groups and not state.gpu_applied:
        return None
    if not state.kubeconfig:
        return None
    files = gpu_files(spec, kubeconfig=state.kubeconfig)
    digest = inventory.fingerprint(files)
    installed = spec.gpu_install and bool(groups)
    result = {
        "groups": groups,
        "device_plugin": gpu.DEVICE_PLUGIN_IMAGE if installed else None,
        "ran": False,
    }
    if state.gpu_applied == digest:
        say(f"gpu: set up already ({gpu.describe(spec)})")
        return result
    inventory.write(cdir.path, files)
    kubespray.run_ours("gpu.yml", cdir, say, forks=forks)
    state = cdir.load()
    state.gpu_applied = digest if groups else None
    state.gpu_device_plugin = gpu.DEVICE_PLUGIN_IMAGE if installed else None
    cdir.save(state)
    if installed:
        say(f"gpu: NVIDIA device plugin {gpu.DEVICE_PLUGIN_VERSION} on {gpu.describe(spec)}")
    elif groups:
        say(f"gpu: {gpu.describe(spec)} — nothing installed (gpu.install is false): GPU pods stay Pending")
    else:
        say("gpu: no GPU group any more: the device plugin stackspray applied was removed")
    result["ran"] = True
    return result
