"""`invoke backup`, `backup.list`, `restore`: etcd snapshots taken on the cluster, kept encrypted
off the node (backups.py), and a restore that is checked.

backup: playbooks/etcd-backup.yml takes and checks the snapshot on the first etcd node and brings
it here; it is encrypted into the cluster's folder at once (the plaintext only ever in a 0700
folder, removed in every case), older backups beyond `keep` are deleted.

restore: the backup is found, its checksum verified and decrypted *before* anything on the
cluster is touched; a cluster whose API answers with pods running outside kube-system (or whose
API cannot tell) needs `yes`; then playbooks/etcd-restore.yml, and the result checked: etcd's keys
per resource as they were at the snapshot's revision, and the API server's /readyz.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from . import inventory
from .backups import DEFAULT_KEEP, Backup, BackupStore, key_counts
from .errors import StackSprayError
from .hibernate_plan import refuse_if_hibernated
from .kube import Kube, KubeError
from .kubespray import run_ours
from .progress import Progress
from .state import ClusterDir

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
READY_TIMEOUT = 180.0


@dataclass
class BackupResult:
    """The backup taken, and those retention removed."""

    cluster: str
    backup: dict
    location: str
    pruned: list[str] = field(default_factory=list)
    kept: int = 0
    seconds: float = 0.0
    log: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BackupList:
    """The cluster's complete backups, oldest first."""

    cluster: str
    location: str
    backups: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RestoreResult:
    """What was restored and what was checked afterwards."""

    cluster: str
    backup: str
    counts: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] | None = None
    ready: bool = False
    seconds: float = 0.0
    log: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _cluster(name: str, root: Path | None, hibernating: bool = False) -> tuple[ClusterDir, object]:
    cdir = ClusterDir(name, root)
    state = cdir.load()
    if not (hibernating and state.hibernation is not None and state.hibernation.phase == "hibernating"):
        refuse_if_hibernated(state, "an etcd backup or restore")
    if not state.kubeconfig or not (cdir.path / inventory.HOSTS_FILE).exists():
        raise StackSprayError(
            f"cluster {name!r} has no Kubernetes to back up or restore (no kubeconfig or inventory in "
            f"{cdir.path}): run `invoke create-cluster` first"
        )
    return cdir, state


def etcd_hosts(cdir: ClusterDir) -> list[str]:
    """The inventory's etcd group, in order."""
    hosts = yaml.safe_load((cdir.path / inventory.HOSTS_FILE).read_text()) or {}
    group = ((hosts.get("all") or {}).get("children") or {}).get("etcd") or {}
    return list((group.get("hosts") or {}).keys())


def _work_dir(cdir: ClusterDir, what: str) -> Path:
    work = cdir.secrets / f".{what}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, mode=0o700)
    return work


def backup(
    name: str,
    *,
    keep: int = DEFAULT_KEEP,
    root: Path | None = None,
    progress: Progress | None = None,
    hibernating: bool = False,
) -> BackupResult:
    """Take an etcd snapshot, encrypt and store it, delete backups beyond the newest `keep`.
    `hibernating`: called by hibernate, as its first step (any other caller is refused while the
    cluster is hibernating)."""
    if keep < 1:
        raise StackSprayError(f"--keep {keep}: keep at least 1 backup")
    say = progress or Progress()
    cdir, _ = _cluster(name, root, hibernating)
    store = BackupStore(cdir.path)
    started = time.monotonic()
    with cdir.command("backup") as run:
        for leftover in store.clear_partials():
            say(f"removed {leftover}, left by a backup that did not finish")
        hosts = etcd_hosts(cdir)
        if not hosts:
            raise StackSprayError(f"the inventory {cdir.path / inventory.HOSTS_FILE} has no etcd group")
        stamp = datetime.now(UTC)
        work = _work_dir(cdir, "backup")
        try:
            say(f"snapshot: etcdctl snapshot save on {hosts[0]}")
            run_ours("etcd-backup.yml", cdir, say, extravars={"dest": str(work)})
            status = json.loads((work / "status.json").read_text())
            keys = (work / "keys").read_text().splitlines()
            counts = None if keys[:1] == ["compacted"] else key_counts(keys)
            b = Backup(
                id=store.new_id(stamp.strftime("%Y%m%dT%H%M%SZ")),
                created=stamp.isoformat(timespec="seconds"),
                node=hosts[0],
                file="",
                size=0,
                sha256="",
                snapshot_size=0,
                snapshot_sha256="",
                revision=int(status["revision"]),
                total_keys=int(status["totalKey"]),
                counts=counts,
            )
            b.seconds = round(time.monotonic() - started, 1)
            store.add(work / "snapshot.db", b)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        say(f"stored {store.dir / b.file} ({b.size} bytes, encrypted; etcd revision {b.revision})")
        pruned = store.prune(keep)
        if pruned:
            say(f"retention (keep {keep}): deleted {', '.join(pruned)}")
        return BackupResult(
            name,
            b.to_dict(),
            str(store.dir),
            pruned,
            len(store.list()),
            round(time.monotonic() - started, 1),
            str(run.log),
        )


def list_backups(name: str, *, root: Path | None = None) -> BackupList:
    """The cluster's complete backups, oldest first."""
    cdir = ClusterDir(name, root)
    store = BackupStore(cdir.path)
    return BackupList(name, str(store.dir), [b.to_dict() for b in store.list()])


@dataclass
class ExportResult:
    """Where the decrypted snapshot was written."""

    cluster: str
    backup: str
    path: str
    size: int

    def to_dict(self) -> dict:
        return asdict(self)


def export(name: str, snapshot_id: str, dest: Path, *, root: Path | None = None) -> ExportResult:
    """Write backup `snapshot_id`'s etcd snapshot, verified and decrypted, to `dest` (0600): for
    Kubespray's recover-control-plane.yml (`etcd_snapshot`) or etcdctl by hand."""
    store = BackupStore(ClusterDir(name, root).path)
    b = store.get(snapshot_id)
    if dest.exists():
        raise StackSprayError(f"{dest} exists: choose a new file for the decrypted snapshot")
    store.decrypt(b, dest)
    return ExportResult(name, b.id, str(dest), dest.stat().st_size)


def _workloads_running(kubeconfig: str) -> str | None:
    """Why a restore needs --yes: pods running outside the system namespaces, or an API that
    cannot tell; None when it answers and nothing runs."""
    try:
        pods = Kube(kubeconfig).list_json("pods")
    except KubeError as exc:
        return f"its API cannot tell whether workloads run ({exc})"
    running = [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in pods
        if p["metadata"].get("namespace") not in SYSTEM_NAMESPACES
        and (p.get("status") or {}).get("phase") == "Running"
    ]
    if running:
        more = f" and {len(running) - 3} more" if len(running) > 3 else ""
        return f"{len(running)} pods run outside kube-system ({', '.join(running[:3])}{more})"
    return None


def _wait_ready(kubeconfig: str, timeout: float) -> bool:
    deadline, delay = time.monotonic() + timeout, 0.5
    while True:
        try:
            if Kube(kubeconfig).readyz():
                return True
        except KubeError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def restore(
    name: str,
    snapshot_id: str,
    *,
    yes: bool = False,
    root: Path | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore the cluster's etcd from backup `snapshot_id` (verified and decrypted first)."""
    say = progress or Progress()
    cdir, state = _cluster(name, root)
    store = BackupStore(cdir.path)
    started = time.monotonic()
    with cdir.command("restore") as run:
        b = store.get(snapshot_id)
        hosts = etcd_hosts(cdir)
        if len(hosts) != 1:
            raise StackSprayError(
                f"cluster {name!r} has {len(hosts)} etcd members: stackspray restores a one-member etcd; "
                "for three, follow Kubespray's docs/operations/recover-control-plane.md "
                "(recover-control-plane.yml with etcd_snapshot set to a decrypted snapshot)"
            )
        work = _work_dir(cdir, "restore")
        try:
            plain = work / "snapshot.db"
            store.decrypt(b, plain)
            say(
                f"backup {b.id}: checksum and decryption verified "
                f"({b.snapshot_size} bytes, revision {b.revision})"
            )
            if not yes:
                why = _workloads_running(state.kubeconfig)
                if why:
                    raise StackSprayError(
                        f"restoring {b.id} replaces everything in cluster {name!r}, and {why}: "
                        "re-run with --yes to restore anyway"
                    )
            say(f"restore on {hosts[0]}: API servers stopped, etcd restored from {b.id}, started again")
            run_ours(
                "etcd-restore.yml",
                cdir,
                say,
                extravars={"snapshot": str(plain), "backup_id": b.id, "dest": str(work)},
            )
            counts = key_counts((work / "keys").read_text().splitlines())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ready = _wait_ready(state.kubeconfig, READY_TIMEOUT)
        result = RestoreResult(
            name, b.id, counts, b.counts, ready, round(time.monotonic() - started, 1), str(run.log)
        )
        if b.counts is not None and counts != b.counts:
            differ = sorted(k for k in set(counts) | set(b.counts) if counts.get(k) != b.counts.get(k))
            what = ", ".join(f"{k}: {counts.get(k, 0)} vs {b.counts.get(k, 0)}" for k in differ)
            raise StackSprayError(
                f"restored etcd of {name!r} holds other keys than backup {b.id} recorded ({what}): "
                f"see {run.log}"
            )
        if not ready:
            raise StackSprayError(
                f"etcd of {name!r} was restored from {b.id}, but the API server is not ready after "
                f"{READY_TIMEOUT:.0f}s: see {run.log}"
            )
        say(f"restored {b.id}: {sum(counts.values())} keys as recorded, API server ready")
        return result
