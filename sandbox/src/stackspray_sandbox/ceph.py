"""A one-node Ceph cluster for the sandbox's Cinder: the RBD backend Jetstream2's volumes use.

Why Ceph and not the LVM driver: Cinder's LVM driver needs device-mapper (every LV it makes is
activated, and image-to-volume copies write to /dev/<vg>/<lv>); the kernel CI runs on has no
device-mapper (/proc/misc lists none, no modules to load). Ceph's RBD needs nothing from the
kernel on the Cinder side — the driver speaks to the cluster through librados/librbd — and it is
what Jetstream2 runs its volumes on (docs.jetstream-cloud.org, "Storage": Ceph). One monitor,
one manager and one OSD, from Debian's packages (Ceph 16, Pacific), the OSD's BlueStore on a
sparse file (as Ceph's own vstart.sh does), every pool of size 1 on that one OSD. cephx
authentication is on, and Cinder uses its own `client.cinder` key limited to the `volumes` pool,
as Ceph's block-device guide for OpenStack (rbd-openstack) sets it up.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

from .errors import SandboxError
from .paths import SandboxPaths
from .processes import Daemon, DaemonFailed, log_tail, read_pid, running_pid, start
from .services import HOST
from .shell import run

APT_PACKAGES = ["ceph-mon", "ceph-osd", "ceph-mgr", "ceph-common", "python3-rados", "python3-rbd"]
MON_PORT = 3300  # msgr2, Ceph's default
POOL = "volumes"
CINDER_USER = "cinder"
# The OSD's BlueStore file: sparse, so it costs only what is written.
OSD_SIZE_BYTES = 100 * 1024**3
# Debian's Python bindings, linked into the services' venv (pip has no wheels of them).
BINDINGS = ("rados", "rbd")


class CephError(SandboxError):
    """The Ceph cluster could not be set up or did not come up; the message says which step."""


def _dir(paths: SandboxPaths) -> Path:
    return paths.state / "ceph"


def conf_path(paths: SandboxPaths) -> Path:
    return paths.etc / "ceph" / "ceph.conf"


def keyring_path(paths: SandboxPaths, entity: str) -> Path:
    """client.admin's and client.cinder's keyrings, where `[client] keyring` points."""
    return paths.etc / "ceph" / f"ceph.{entity}.keyring"


def fsid(paths: SandboxPaths) -> str:
    """The cluster's id, made once (the libvirt secret UUID Cinder hands out is this, too)."""
    f = _dir(paths) / "fsid"
    if not f.exists():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(str(uuid.uuid4()))
    return f.read_text().strip()


def config_text(paths: SandboxPaths) -> str:
    d = _dir(paths)
    return "\n".join(
        [
            "[global]",
            f"fsid = {fsid(paths)}",
            f"mon_host = v2:{HOST}:{MON_PORT}",
            "mon_initial_members = a",
            "auth_cluster_required = cephx",
            "auth_service_required = cephx",
            "auth_client_required = cephx",
            f"run_dir = {paths.run / 'ceph'}",
            f"admin_socket = {paths.run / 'ceph'}/$cluster-$name.asok",
            f"log_file = {paths.logs}/ceph-$name.log",
            "public_network = 127.0.0.0/8",
            "ms_bind_ipv4 = true",
            "ms_bind_ipv6 = false",
            # One OSD: every pool keeps one copy, and CRUSH places them by OSD, not by host.
            "osd_pool_default_size = 1",
            "osd_pool_default_min_size = 1",
            "osd_pool_default_pg_autoscale_mode = off",
            "mon_allow_pool_size_one = true",
            "mon_warn_on_pool_no_redundancy = false",
            "osd_crush_chooseleaf_type = 0",
            "[client]",
            f"keyring = {paths.etc / 'ceph'}/$cluster.$name.keyring",
            "[mon]",
            f"mon_data = {d}/mon/$cluster-$id",
            "keyring = $mon_data/keyring",
            "auth_allow_insecure_global_id_reclaim = false",
            "[mgr]",
            f"mgr_data = {d}/mgr/$cluster-$id",
            "keyring = $mgr_data/keyring",
            "[osd]",
            f"osd_data = {d}/osd/$cluster-$id",
            "keyring = $osd_data/keyring",
            "osd_objectstore = bluestore",
            "bluestore_block_create = true",
            f"bluestore_block_size = {OSD_SIZE_BYTES}",
            # BlueStore's smallest cache target: this OSD holds test volumes, not data to cache.
            "osd_memory_target = 939524096",
            "",
        ]
    )


def daemons(paths: SandboxPaths) -> dict[str, Daemon]:
    conf = str(conf_path(paths))
    return {
        "ceph-mon": Daemon("ceph-mon", ["ceph-mon", "-f", "-c", conf, "-i", "a"]),
        "ceph-osd": Daemon("ceph-osd", ["ceph-osd", "-f", "-c", conf, "-i", "0"]),
        "ceph-mgr": Daemon("ceph-mgr", ["ceph-mgr", "-f", "-c", conf, "-i", "x"]),
    }


def ceph(paths: SandboxPaths, *args: str, timeout: float = 60, check: bool = True):
    """The `ceph` CLI as client.admin against the sandbox's cluster."""
    return run(
        ["ceph", "-c", str(conf_path(paths)), "--connect-timeout", "10", *args],
        timeout=timeout,
        check=check,
    )


def link_bindings(venv_python: Path) -> None:
    """Make Debian's rados and rbd modules importable in the services' venv (Cinder's RBD driver
    imports them); refused when that venv's Python is not the one Debian built them for."""
    dist = Path("/usr/lib/python3/dist-packages")
    site = run([str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    soabi = run([str(venv_python), "-c", "import sysconfig; print(sysconfig.get_config_var('SOABI'))"])
    for name in BINDINGS:
        so = dist / f"{name}.{soabi.stdout.strip()}.so"
        if not so.exists():
            found = sorted(p.name for p in dist.glob(f"{name}.*.so"))
            raise CephError(
                f"Debian's python3-{name} has no module for the services' Python "
                f"({soabi.stdout.strip()}; found {found or 'none'}): "
                "run the sandbox with a Python 3.11, as Debian 12's"
            )
        link = Path(site.stdout.strip()) / so.name
        if not link.exists():
            link.symlink_to(so)


def _bootstrap_mon(paths: SandboxPaths) -> None:
    d = _dir(paths)
    mon_dir = d / "mon" / "ceph-a"
    if (mon_dir / "store.db").exists():
        return
    etc = paths.etc / "ceph"
    etc.mkdir(parents=True, exist_ok=True)
    tmp = d / "bootstrap"
    tmp.mkdir(parents=True, exist_ok=True)
    mon_keyring, admin = tmp / "mon.keyring", keyring_path(paths, "client.admin")
    run(
        [
            "ceph-authtool",
            "--create-keyring",
            str(mon_keyring),
            "--gen-key",
            "-n",
            "mon.",
            "--cap",
            "mon",
            "allow *",
        ]
    )
    if not admin.exists():
        caps = [arg for kind in ("mon", "osd", "mds", "mgr") for arg in ("--cap", kind, "allow *")]
        run(["ceph-authtool", "--create-keyring", str(admin), "--gen-key", "-n", "client.admin", *caps])
    admin.chmod(0o600)
    run(["ceph-authtool", str(mon_keyring), "--import-keyring", str(admin)])
    monmap = tmp / "monmap"
    run(
        [
            "monmaptool",
            "--create",
            "--clobber",
            "--addv",
            "a",
            f"[v2:{HOST}:{MON_PORT}]",
            "--fsid",
            fsid(paths),
            str(monmap),
        ]
    )
    mon_dir.mkdir(parents=True, exist_ok=True)
    run(
        [
            "ceph-mon",
            "-c",
            str(conf_path(paths)),
            "--mkfs",
            "-i",
            "a",
            "--monmap",
            str(monmap),
            "--keyring",
            str(mon_keyring),
        ]
    )


def _bootstrap_osd(paths: SandboxPaths) -> None:
    """OSD 0 as vstart.sh makes one: its uuid and key chosen first, so a re-run after a kill
    registers the same OSD again (`osd new` with the same uuid and key is idempotent)."""
    d = _dir(paths)
    osd_dir = d / "osd" / "ceph-0"
    if (osd_dir / "mkfs_done").exists() and (osd_dir / "keyring").exists():
        return
    osd_dir.mkdir(parents=True, exist_ok=True)
    ident = d / "osd-0.json"
    if not ident.exists():
        key = run(["ceph-authtool", "--gen-print-key"]).stdout.strip()
        ident.write_text(json.dumps({"uuid": str(uuid.uuid4()), "cephx_secret": key}))
        ident.chmod(0o600)
    osd = json.loads(ident.read_text())
    secret = d / "osd-0-secret.json"
    secret.write_text(json.dumps({"cephx_secret": osd["cephx_secret"]}))
    secret.chmod(0o600)
    got = ceph(paths, "osd", "new", osd["uuid"], "-i", str(secret)).stdout.strip()
    if got != "0":
        raise CephError(f"ceph osd new gave OSD id {got!r}, expected 0 (state in {d})")
    for leftover in osd_dir.iterdir():  # a killed mkfs: start it again from nothing
        leftover.unlink()
    run(
        [
            "ceph-osd",
            "-c",
            str(conf_path(paths)),
            "-i",
            "0",
            "--mkfs",
            "--no-mon-config",
            "--key",
            osd["cephx_secret"],
            "--osd-uuid",
            osd["uuid"],
        ],
        timeout=300,
    )
    # mkfs with --key writes no keyring; the OSD reads its key from one (vstart.sh writes it too).
    keyring = osd_dir / "keyring"
    keyring.write_text(f"[osd.0]\n\tkey = {osd['cephx_secret']}\n")
    keyring.chmod(0o600)


def _wait(paths: SandboxPaths, what: str, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            if ready():
                return
        except (subprocess.SubprocessError, SandboxError, ValueError, KeyError):
            pass
        dead = [n for n in daemons(paths) if read_pid(paths, n) and not running_pid(paths, n)]
        if dead or time.monotonic() > deadline:
            tails = "\n".join(f"{n}: {log_tail(paths, n, 8)}" for n in ("ceph-mon", "ceph-osd", "ceph-mgr"))
            raise DaemonFailed(f"ceph: {what}: not within {timeout:.0f}s, exited: {dead or 'none'}\n{tails}")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def _status(paths: SandboxPaths) -> dict:
    return json.loads(ceph(paths, "status", "-f", "json", timeout=20).stdout)


def start_cluster(paths: SandboxPaths) -> None:
    """Bootstrap once, start the monitor, OSD and manager, and make Cinder's pool and key.
    Idempotent; returns once the cluster reports the OSD's capacity (Cinder's first stats
    report would otherwise say 0 GB free and its scheduler would place no volume)."""
    (paths.run / "ceph").mkdir(parents=True, exist_ok=True)
    conf = conf_path(paths)
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(config_text(paths))
    _bootstrap_mon(paths)
    ds = daemons(paths)
    start(paths, ds["ceph-mon"])
    _wait(paths, "the monitor answers", lambda: bool(_status(paths)["quorum_names"]), 60)
    _bootstrap_osd(paths)
    mgr_dir = _dir(paths) / "mgr" / "ceph-x"
    mgr_dir.mkdir(parents=True, exist_ok=True)
    ceph(
        paths,
        "auth",
        "get-or-create",
        "mgr.x",
        "mon",
        "allow profile mgr",
        "osd",
        "allow *",
        "mds",
        "allow *",
        "-o",
        str(mgr_dir / "keyring"),
    )
    (mgr_dir / "keyring").chmod(0o600)
    start(paths, ds["ceph-osd"])
    start(paths, ds["ceph-mgr"])
    _wait(paths, "OSD 0 is up", lambda: _status(paths)["osdmap"]["num_up_osds"] == 1, 120)
    ceph(paths, "osd", "pool", "create", POOL, "32")
    ceph(paths, "osd", "pool", "set", POOL, "size", "1", "--yes-i-really-mean-it")
    ceph(paths, "osd", "pool", "application", "enable", POOL, "rbd")
    keyring = keyring_path(paths, f"client.{CINDER_USER}")
    # Ceph's rbd-openstack guide: Cinder's key may use the rbd profile on its pool only.
    ceph(
        paths,
        "auth",
        "get-or-create",
        f"client.{CINDER_USER}",
        "mon",
        "profile rbd",
        "osd",
        f"profile rbd pool={POOL}",
        "-o",
        str(keyring),
    )
    keyring.chmod(0o600)

    def capacity() -> bool:
        df = json.loads(ceph(paths, "df", "-f", "json", timeout=20).stdout)
        return df["stats"]["total_bytes"] > 0 and any(p["name"] == POOL for p in df["pools"])

    _wait(paths, "the manager reports the OSD's capacity", capacity, 120)
