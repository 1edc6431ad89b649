"""The cluster's Manila (CephFS) share inside Kubernetes, and optionally on the nodes.

create-cluster makes the share and its cephx access rule and keeps the rule's key (0600); here
`playbooks/manila-share.yml` installs the Ceph CSI CephFS node plugin and binds the share to a
static PersistentVolume and a ReadWriteMany claim (ceph-csi docs/static-pvc.md), and with
`share.mount_on_nodes` also puts it in every node's /etc/fstab.

`share_files()` is pure: the plain variables and the 0600 key file the playbook reads from the
inventory (the key never goes on a command line). A fingerprint of what was applied is kept in
the state, so a re-run with nothing changed runs no playbook.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from . import inventory, kubespray, secret_files
from .cloudapi import OpenStackAPI
from .cluster_state import ClusterState
from .connection import connect
from .errors import StackSprayError
from .observe import owned_servers
from .progress import Progress
from .spec import ClusterSpec
from .state import ClusterDir
from .target import Target, resolve

VARS_FILE = "group_vars/all/manila-share.yml"
SECRET_FILE = secret_files.SHARE
CSI_NAMESPACE = "ceph-csi-cephfs"
# Images of the node plugin; override with kubernetes.share_cephcsi_image / share_registrar_image.
CEPHCSI_IMAGE = "quay.io/cephcsi/cephcsi:v3.14.1"
REGISTRAR_IMAGE = "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0"


class ShareNotReady(StackSprayError):
    pass


def parse_export_path(path: str) -> tuple[list[str], str]:
    """A CephFS export location `mon1:6789,mon2:6789:/volumes/_nogroup/<id>/<uuid>` ->
    (monitors, root path)."""
    at = path.find(":/")
    if at <= 0:
        raise ShareNotReady(
            f"the share's export path {path!r} is not a CephFS path (monitors:/path); "
            "is share.share_type a CephFS share type?"
        )
    monitors = [m.strip() for m in path[:at].split(",") if m.strip()]
    return monitors, path[at + 1 :]


def share_files(
    spec: ClusterSpec, state: ClusterState, *, access_key: str, kubeconfig: str, target: Target
) -> list[inventory.InventoryFile]:
    """The inventory files playbooks/manila-share.yml reads (pure: no I/O)."""
    sh = spec.share
    rec = state.share
    if sh is None or rec is None or not rec.export_path:
        raise ShareNotReady(f"cluster {spec.name} has no share with an export path yet: run create-cluster")
    monitors, root = parse_export_path(rec.export_path)
    attributes = {"clusterID": f"{spec.name}-manila", "staticVolume": "true", "rootPath": root}
    if sh.fs_name:
        attributes["fsName"] = sh.fs_name
    variables = {
        "stackspray_kubeconfig": kubeconfig,
        "share_id": rec.id,
        "share_export_path": rec.export_path,
        "share_monitors": monitors,
        "share_cluster_id": attributes["clusterID"],
        "share_volume_attributes": attributes,
        "share_size_gb": sh.size_gb,
        "share_access_rule": sh.access_rule,
        "share_csi_namespace": CSI_NAMESPACE,
        "share_secret_name": f"{spec.name}-share-cephx",
        "share_pv_name": f"{spec.name}-share",
        "share_claim_name": sh.claim_name,
        "share_namespace": sh.namespace,
        "share_labels": {"app.kubernetes.io/managed-by": "stackspray", "stackspray.io/cluster": spec.name},
        "share_cephcsi_image": CEPHCSI_IMAGE,
        "share_registrar_image": REGISTRAR_IMAGE,
        "share_mount_on_nodes": sh.mount_on_nodes,
        "share_mount_path": sh.mount_path,
        "share_secret_file": f"/etc/ceph/{sh.access_rule}.secret",
        # Nodes without a CephFS client (the test cloud's) keep the mount in /etc/fstab only:
        # there the mount is written to /etc/fstab but not mounted.
        "share_node_mount_state": "mounted" if target.cephfs_mounts else "present",
        "share_install_ceph_client": target.cephfs_mounts,
        # share.owner: set once (a user may change it afterwards; a new owner in the spec is set again).
        "share_owner": {"uid": sh.owner[0], "gid": sh.owner[1]} if sh.owner else None,
        "share_owner_mount": f"/run/stackspray-{spec.name}-share-owner",
    }
    return [
        inventory.InventoryFile(
            VARS_FILE,
            inventory._dump(variables, f"Manila share of cluster {spec.name} (playbooks/manila-share.yml)"),
            0o644,
        ),
        inventory.InventoryFile(
            SECRET_FILE,
            inventory._dump(
                {"share_access_key": access_key},
                f"cephx access key of cluster {spec.name}'s share (SECRET, mode 0600)",
            ),
            0o600,
        ),
    ]


def owner_text(owner: tuple[int, int] | None) -> str | None:
    return f"{owner[0]}:{owner[1]}" if owner else None


def fingerprint(files: list[inventory.InventoryFile], hosts: list[str]) -> str:
    """What was applied: the variables, the key and (for node mounts) the nodes."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.path.encode() + b"\0" + f.text.encode() + b"\0")
    h.update(",".join(sorted(hosts)).encode())
    return h.hexdigest()


def forget_files(cdir: ClusterDir) -> None:
    """Remove the share's inventory files (the spec no longer has a share)."""
    for rel in (VARS_FILE, SECRET_FILE):
        (cdir.path / rel).unlink(missing_ok=True)


def setup_share(
    conn,
    spec: ClusterSpec,
    cdir: ClusterDir,
    say,
    target: Target,
    *,
    force: bool = False,
    forks: int | None = None,
) -> dict:
    """Run playbooks/manila-share.yml unless what it would apply was applied already (force: run
    anyway, e.g. after someone deleted the claim). Returns what the claim is and whether it ran."""
    state = cdir.load()
    kubeconfig = state.kubeconfig
    if not kubeconfig or not Path(kubeconfig).exists():
        raise ShareNotReady(f"cluster {spec.name} has no kubeconfig yet: run create-cluster first")
    key = cdir.read_secret("share-access-key")
    if not key:
        raise ShareNotReady(
            f"the share's access key is missing from {cdir.secrets / 'share-access-key'}: "
            "re-run create-cluster to fetch it from Manila"
        )
    files = share_files(spec, state, access_key=key.strip(), kubeconfig=kubeconfig, target=target)
    hosts = sorted(state.servers) if spec.share and spec.share.mount_on_nodes else []
    digest = fingerprint(files, hosts)
    claim = f"{spec.share.namespace}/{spec.share.claim_name}"
    result = {"claim": claim, "mount_on_nodes": spec.share.mount_on_nodes, "ran": False}
    if not force and state.share.applied == digest:
        say(f"share: claim {claim} is set up already (nothing changed since)")
        return result
    if spec.share.mount_on_nodes or not state.share.applied:
        # The node plugin must get ready on every node and the mounts reach every node: a shelved
        # node would make the run wait and fail (as Kubespray's would).
        servers = owned_servers(OpenStackAPI(conn), spec.name)
        shelved = sorted(s.name for s in servers if s.status.startswith("SHELVED"))
        if shelved:
            raise ShareNotReady(
                f"{len(shelved)} node(s) are shelved ({', '.join(shelved)}); the share setup needs "
                f"every node: `invoke scale --cluster {spec.name} --unshelve` first, then re-run "
                "(nothing was changed)"
            )
    # The inventory (hosts, ssh options) as the playbook needs it, then the share's files.
    kubespray.write_inventory(conn, spec, cdir, say, target)
    inventory.write(cdir.path, files)
    if spec.share.mount_on_nodes and not target.cephfs_mounts:
        say(
            f"{target.name}: the share goes into the nodes' /etc/fstab but is not mounted "
            "(no CephFS client here)"
        )
    # Whether the owner is still to be set goes as an extra-var: it is not part of what was applied.
    owner_due = bool(spec.share.owner) and state.share.owner_applied != owner_text(spec.share.owner)
    kubespray.run_ours("manila-share.yml", cdir, say, extravars={"share_owner_apply": owner_due}, forks=forks)
    state = cdir.load()
    state.share.applied = digest
    state.share.claim = claim
    if spec.share.owner and target.cephfs_mounts:
        state.share.owner_applied = owner_text(spec.share.owner)
        say(f"share: its root belongs to {state.share.owner_applied}, mode 2775")
    elif spec.share.owner:
        say(f"{target.name}: the share's owner is not set (no CephFS client here)")
    cdir.save(state)
    say(f"share: pods mount it through the ReadWriteMany claim {claim}")
    result["ran"] = True
    return result


@dataclass
class ShareResult:
    """What `share` set up: the claim pods mount, whether the playbook ran."""

    cluster: str
    claim: str
    mount_on_nodes: bool
    mount_path: str
    ran: bool
    log: str

    def to_dict(self) -> dict:
        return {"claim": self.claim, "mount_on_nodes": self.mount_on_nodes, "ran": self.ran, "log": self.log}


def apply_share(
    spec: ClusterSpec, *, force: bool = False, progress=None, root: Path | None = None
) -> ShareResult:
    """`invoke share`: (re)apply the share's Kubernetes objects and node mounts of a built cluster."""
    say = progress or Progress()
    if spec.share is None:
        raise ShareNotReady(f"the spec of cluster {spec.name} has no `share` section")
    cdir = ClusterDir(spec.name, root)
    if not cdir.load():
        raise ShareNotReady(
            f"no cluster {spec.name!r} in {cdir.path}: create it with `invoke create-cluster`"
        )
    with cdir.command("share") as run:
        logfile = run.log
        conn = connect(spec.cloud)
        done = setup_share(conn, spec, cdir, say, resolve(conn, spec), force=force)
        return ShareResult(
            spec.name, done["claim"], done["mount_on_nodes"], spec.share.mount_path, done["ran"], str(logfile)
        )
