"""The cluster's etcd backups as stored off the node: encrypted snapshots and what is known of each.

A backup is two files in the cluster's folder, `backups/<id>.snapshot.enc` (the etcd snapshot,
encrypted by snapshot_crypto with the cluster's key, `secrets/etcd-backup.key`, 0600) and
`backups/<id>.json` (when, from which node, sizes, checksums, etcd's revision and the number of
keys per resource at that revision). The JSON is written last, so a backup that was killed
before it finished leaves at most a `.partial` file, never something `backup.list` or `restore`
counts; the next backup removes such leftovers.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import snapshot_crypto
from .errors import StackSprayError
from .files import atomic_write

DIR = "backups"
KEY_FILE = "secrets/etcd-backup.key"
DEFAULT_KEEP = 14
PARTIAL = ".partial"


class BackupNotFound(StackSprayError):
    """No backup of that ID."""


class BackupDamaged(StackSprayError):
    """A backup's file does not match what was recorded when it was taken."""


@dataclass
class Backup:
    """One stored backup."""

    id: str
    created: str
    node: str
    file: str
    size: int  # bytes of the encrypted file
    sha256: str  # of the encrypted file
    snapshot_size: int  # bytes of the etcd snapshot
    snapshot_sha256: str
    revision: int
    total_keys: int  # etcd's count, every revision kept in the snapshot
    counts: dict[str, int] | None = field(default=None)  # live keys per resource at `revision`
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def key_counts(keys: list[str]) -> dict[str, int]:
    """Keys per resource from etcdctl's key listing (`/registry/<resource>/...`, custom resources
    `/registry/<group>/<resource>/...`)."""
    counts: dict[str, int] = {}
    for key in keys:
        segs = key.strip().split("/")
        if len(segs) < 4 or segs[1] != "registry":
            continue
        resource = f"{segs[2]}/{segs[3]}" if "." in segs[2] and len(segs) > 4 else segs[2]
        counts[resource] = counts.get(resource, 0) + 1
    return dict(sorted(counts.items()))


class BackupStore:
    """The backups in one cluster's folder."""

    def __init__(self, cluster_dir: Path) -> None:
        self.dir = cluster_dir / DIR
        self.key_file = cluster_dir / KEY_FILE

    def list(self) -> list[Backup]:
        """The complete backups, oldest first."""
        out = []
        for meta in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            try:
                b = Backup(**json.loads(meta.read_text()))
            except (ValueError, TypeError):
                continue
            if (self.dir / b.file).exists():
                out.append(b)
        return sorted(out, key=lambda b: (b.created, b.id))

    def get(self, backup_id: str) -> Backup:
        for b in self.list():
            if b.id == backup_id:
                return b
        have = ", ".join(b.id for b in self.list()) or "none"
        raise BackupNotFound(
            f"no backup {backup_id!r} in {self.dir} (backups: {have}); `invoke backup.list --cluster C`"
        )

    def new_id(self, stamp: str) -> str:
        taken = {b.id for b in self.list()}
        bid, n = stamp, 1
        while bid in taken:
            n += 1
            bid = f"{stamp}-{n}"
        return bid

    def clear_partials(self) -> list[str]:
        """Remove what a killed backup left (never a complete one)."""
        gone = []
        for p in sorted(self.dir.glob(f"*{PARTIAL}")) if self.dir.is_dir() else []:
            p.unlink()
            gone.append(p.name)
        return gone

    def add(self, plain: Path, backup: Backup) -> Backup:
        """Encrypt the snapshot `plain` into the store and record it; the metadata file is written
        last, so only then does the backup count."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = snapshot_crypto.ensure_key(self.key_file)
        backup.snapshot_size = plain.stat().st_size
        backup.snapshot_sha256 = sha256_of(plain)
        enc = self.dir / f"{backup.id}.snapshot.enc"
        partial = enc.with_name(enc.name + PARTIAL)
        snapshot_crypto.encrypt_file(key, plain, partial)
        backup.file, backup.size, backup.sha256 = enc.name, partial.stat().st_size, sha256_of(partial)
        os.replace(partial, enc)
        atomic_write(self.dir / f"{backup.id}.json", json.dumps(backup.to_dict(), indent=2) + "\n", 0o600)
        return backup

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest `keep` backups; the IDs deleted."""
        backups = self.list()
        gone = backups[: max(0, len(backups) - keep)]
        for b in gone:
            (self.dir / f"{b.id}.json").unlink(missing_ok=True)
            (self.dir / b.file).unlink(missing_ok=True)
        return [b.id for b in gone]

    def decrypt(self, backup: Backup, dest: Path) -> None:
        """The snapshot of `backup` into `dest` (0600), checked against the checksums recorded when
        it was taken; BackupDamaged or snapshot_crypto.DecryptError before anything else is done."""
        enc = self.dir / backup.file
        if enc.stat().st_size != backup.size or sha256_of(enc) != backup.sha256:
            raise BackupDamaged(
                f"backup {backup.id}: {enc} is not the file that was stored (size or SHA-256 differ: "
                f"truncated or altered); choose another backup"
            )
        snapshot_crypto.decrypt_file(snapshot_crypto.read_key(self.key_file), enc, dest)
        if sha256_of(dest) != backup.snapshot_sha256:
            dest.unlink()
            raise BackupDamaged(
                f"backup {backup.id}: the decrypted snapshot's SHA-256 differs from the recorded one"
            )
