"""Encryption of etcd snapshots on the operator's machine: a snapshot holds every Secret of the
cluster, so it leaves the node only to be encrypted and is stored only encrypted.

AES-256-GCM from `cryptography` (https://cryptography.io/en/latest/hazmat/primitives/aead/), in
1 MiB chunks so a snapshot of any size streams. Each chunk has its own random 96-bit nonce and
authenticates the file's header, its index and whether it is the last one, so a reordered,
truncated or altered file, or the wrong key, fails to decrypt instead of yielding a damaged
snapshot.
"""

from __future__ import annotations

import os
import secrets
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import StackSprayError

MAGIC = b"STACKSPRAY-ETCD-SNAPSHOT v1\n"
CHUNK = 1 << 20
KEY_BYTES = 32
NONCE_BYTES = 12


class DecryptError(StackSprayError):
    """The file is not one this key encrypted, or it was altered or cut short."""


def ensure_key(path: Path) -> bytes:
    """The cluster's backup key, made (0600) on first use."""
    if path.exists():
        return read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(KEY_BYTES))
    os.replace(tmp, path)
    return read_key(path)


def read_key(path: Path) -> bytes:
    """The key in `path`; a clear error when it is missing or not a key."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise StackSprayError(
            f"backup key {path} is missing: backups of this cluster cannot be decrypted without it"
        ) from None
    if len(key) != KEY_BYTES:
        raise StackSprayError(f"backup key {path} is not a {KEY_BYTES}-byte key ({len(key)} bytes)")
    return key


def _aad(index: int, last: bool) -> bytes:
    return MAGIC + struct.pack(">Q?", index, last)


def encrypt_file(key: bytes, src: Path, dest: Path) -> None:
    """Encrypt `src` into `dest` (0600)."""
    aead = AESGCM(key)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        fout.write(MAGIC)
        index = 0
        chunk = fin.read(CHUNK)
        while True:
            following = fin.read(CHUNK)
            last = not following
            nonce = secrets.token_bytes(NONCE_BYTES)
            sealed = aead.encrypt(nonce, chunk, _aad(index, last))
            fout.write(struct.pack(">I", len(sealed)) + nonce + sealed)
            if last:
                return
            chunk, index = following, index + 1


def decrypt_file(key: bytes, src: Path, dest: Path) -> None:
    """Decrypt `src` into `dest` (0600); DecryptError when the key is wrong or the file was
    altered or truncated (`dest` is removed then)."""
    aead = AESGCM(key)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            if fin.read(len(MAGIC)) != MAGIC:
                raise DecryptError(f"{src} is not an encrypted stackspray etcd snapshot")
            index = 0
            while True:
                head = fin.read(4 + NONCE_BYTES)
                if len(head) < 4 + NONCE_BYTES:
                    raise DecryptError(f"{src} is truncated (it ends before its last chunk)")
                (size,) = struct.unpack(">I", head[:4])
                sealed = fin.read(size)
                if len(sealed) < size:
                    raise DecryptError(f"{src} is truncated (chunk {index} is cut short)")
                last = not fin.peek(1)
                try:
                    fout.write(aead.decrypt(head[4:], sealed, _aad(index, last)))
                except InvalidTag:
                    raise DecryptError(
                        f"{src} cannot be decrypted with this cluster's backup key: the wrong key, or "
                        f"the file was altered or cut short"
                    ) from None
                if last:
                    return
                index += 1
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
