"""Encrypted etcd backups off the node: encryption, the store's bookkeeping, key counts."""

from __future__ import annotations

import json
import os
import stat

import pytest
from stackspray_sandbox.standins.kube_api import persist
from stackspray_sandbox.standins.kube_api.store import Store

from stackspray import snapshot_crypto
from stackspray.backups import Backup, BackupDamaged, BackupNotFound, BackupStore, key_counts
from stackspray.errors import StackSprayError


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(snapshot_crypto, "CHUNK", 1000)


def _plain(tmp_path, size: int):
    p = tmp_path / "snapshot.db"
    p.write_bytes(os.urandom(size))
    return p


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5500])
def test_encrypt_then_decrypt_gives_the_snapshot_back(tmp_path, small_chunks, size):
    key = snapshot_crypto.ensure_key(tmp_path / "k")
    plain = _plain(tmp_path, size)
    snapshot_crypto.encrypt_file(key, plain, tmp_path / "enc")
    # The plain bytes are not in the file (too short a run could turn up by chance: a 1-byte
    # snapshot's byte is in a random ciphertext of ~50 bytes one time in five).
    assert size < 16 or plain.read_bytes()[:64] not in (tmp_path / "enc").read_bytes()
    snapshot_crypto.decrypt_file(key, tmp_path / "enc", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == plain.read_bytes()
    for f in ("k", "enc", "out"):
        assert stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o600


def _damaged(tmp_path, how: str):
    key = snapshot_crypto.ensure_key(tmp_path / "k")
    snapshot_crypto.encrypt_file(key, _plain(tmp_path, 3500), tmp_path / "enc")
    data = bytearray((tmp_path / "enc").read_bytes())
    chunk = 4 + snapshot_crypto.NONCE_BYTES + 1000 + 16
    header = len(snapshot_crypto.MAGIC)
    if how == "truncated-mid-chunk":
        data = data[: len(data) - 10]
    elif how == "truncated-at-chunk-boundary":
        data = data[: header + 2 * chunk]
    elif how == "bit-flipped":
        data[header + chunk + 30] ^= 1
    elif how == "chunks-swapped":
        a, b = data[header : header + chunk], data[header + chunk : header + 2 * chunk]
        data[header : header + 2 * chunk] = b + a
    elif how == "wrong-key":
        key = os.urandom(32)
    (tmp_path / "enc").write_bytes(bytes(data))
    return key


@pytest.mark.parametrize(
    "how",
    ["truncated-mid-chunk", "truncated-at-chunk-boundary", "bit-flipped", "chunks-swapped", "wrong-key"],
)
def test_a_damaged_file_or_the_wrong_key_is_refused_and_leaves_no_output(tmp_path, small_chunks, how):
    key = _damaged(tmp_path, how)
    with pytest.raises(snapshot_crypto.DecryptError):
        snapshot_crypto.decrypt_file(key, tmp_path / "enc", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_missing_or_malformed_key_is_named(tmp_path):
    with pytest.raises(StackSprayError, match="backup key .*missing"):
        snapshot_crypto.read_key(tmp_path / "nope")
    (tmp_path / "short").write_bytes(b"abc")
    with pytest.raises(StackSprayError, match="not a 32-byte key"):
        snapshot_crypto.read_key(tmp_path / "short")


def _backup(store: BackupStore, tmp_path, bid: str, created: str) -> Backup:
    plain = _plain(tmp_path, 2048)
    b = Backup(bid, created, "cp-1", "", 0, "", 0, "", 7, 9, {"configmaps": 2})
    return store.add(plain, b)


def test_store_counts_complete_backups_only_and_prunes_the_oldest(tmp_path):
    store = BackupStore(tmp_path / "cluster")
    for i in range(4):
        _backup(store, tmp_path, f"2026120{i}T000000Z", f"2026-12-0{i}T00:00:00+00:00")
    # What a killed backup leaves: an encrypted file without its metadata, a partial metadata file.
    (store.dir / "20261209T000000Z.snapshot.enc.partial").write_bytes(b"x")
    (store.dir / "20261209T000000Z.json.partial").write_text("{")
    assert [b.id for b in store.list()] == [f"2026120{i}T000000Z" for i in range(4)]
    assert store.new_id("20261203T000000Z") == "20261203T000000Z-2"
    assert sorted(store.clear_partials()) == [
        "20261209T000000Z.json.partial",
        "20261209T000000Z.snapshot.enc.partial",
    ]
    assert store.prune(2) == ["20261200T000000Z", "20261201T000000Z"]
    assert [b.id for b in store.list()] == ["20261202T000000Z", "20261203T000000Z"]
    assert sorted(p.name for p in store.dir.iterdir()) == [
        "20261202T000000Z.json",
        "20261202T000000Z.snapshot.enc",
        "20261203T000000Z.json",
        "20261203T000000Z.snapshot.enc",
    ]
    meta = json.loads((store.dir / "20261203T000000Z.json").read_text())
    assert meta["snapshot_size"] == 2048 and meta["size"] > 2048 and meta["counts"] == {"configmaps": 2}


def test_decrypt_verifies_the_recorded_checksum_before_the_key(tmp_path):
    store = BackupStore(tmp_path / "cluster")
    b = _backup(store, tmp_path, "a", "2026-12-06T00:00:00+00:00")
    store.decrypt(b, tmp_path / "out")
    assert (tmp_path / "out").stat().st_size == 2048
    enc = store.dir / b.file
    enc.write_bytes(enc.read_bytes()[:-5])
    with pytest.raises(BackupDamaged, match="truncated or altered"):
        store.decrypt(b, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    with pytest.raises(BackupNotFound, match=r"no backup 'zzz' .*backups: a\)"):
        store.get("zzz")


def test_key_counts_per_resource():
    keys = [
        "/registry/configmaps/default/a",
        "/registry/configmaps/kube-system/b",
        "/registry/minions/cp-1",
        "/registry/namespaces/default",
        "/registry/cert-manager.io/certificates/ns/x",
        "/registry/stand-in.stackspray.io/meta",
        "",
        "not-a-key",
    ]
    assert key_counts(keys) == {
        "cert-manager.io/certificates": 1,
        "configmaps": 2,
        "minions": 1,
        "namespaces": 1,
        "stand-in.stackspray.io": 1,
    }


def test_the_api_stand_in_state_survives_the_trip_through_etcd_keys(tmp_path):
    nodes = [
        {"name": "cp-1", "ip": "10.0.0.1", "control_plane": True},
        {"name": "w-1", "ip": "10.0.0.2", "labels": {"role": "worker"}},
    ]
    Store(
        {
            "state_file": str(tmp_path / "s.json"),
            "nodes": nodes,
            "cloud_conf": "[Global]\n",
            "cert_manager": True,
        }
    )
    doc = persist.JsonFile(str(tmp_path / "s.json")).load()
    assert doc["secrets"] and doc["workloads"] and doc["pods"] and doc["objects"]
    # As a typed client sends a ConfigMap: no apiVersion, no kind.
    bare = {"metadata": {"name": "bare", "namespace": "default"}, "data": {"a": "b"}}
    doc["objects"].append([["v1", "configmaps", "default", "bare"], bare])
    keys = persist.to_keys(doc)
    assert "/registry/minions/" + doc["nodes"][0]["metadata"]["name"] in keys
    assert any(k.startswith("/registry/namespaces/") for k in keys)
    back = persist.from_keys(keys)
    doc["objects"][-1][1] = {"apiVersion": "v1", **bare}  # read back with its key's version

    def norm(d):
        return {
            k: sorted(json.dumps(x, sort_keys=True) for x in v) if isinstance(v, list) else v
            for k, v in d.items()
        }

    assert norm(back) == norm(doc)
    assert persist.from_keys({}) is None


def test_export_writes_the_verified_snapshot_0600_and_never_over_a_file(tmp_path):
    from stackspray.etcd_backup import export

    root = tmp_path / "inventories"
    store = BackupStore(root / "demo")
    b = _backup(store, tmp_path, "a", "2026-12-06T00:00:00+00:00")
    out = export("demo", "a", tmp_path / "snap.db", root=root)
    assert out.size == 2048 and (tmp_path / "snap.db").read_bytes() == (tmp_path / "snapshot.db").read_bytes()
    assert stat.S_IMODE((tmp_path / "snap.db").stat().st_mode) == 0o600
    with pytest.raises(StackSprayError, match="exists"):
        export("demo", b.id, tmp_path / "snap.db", root=root)
