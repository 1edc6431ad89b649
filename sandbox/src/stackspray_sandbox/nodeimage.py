"""The Debian base root file system the sandbox's node hosts overlay.

Built once with debootstrap from the Debian mirror apt already uses, then cached: every node
host is an overlayfs (this base below, the node's own disk above) booted with systemd-nspawn.
The image mimics Jetstream2's featured images where stackspray cares: user ``ubuntu`` with
password-less sudo, OpenSSH, Python 3 for Ansible.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path

from .shell import run

log = logging.getLogger(__name__)

SUITE = "bookworm"
# libpam-systemd: a login (SSH, or a lingering user's manager) gets a logind session and its
# $XDG_RUNTIME_DIR, as on Ubuntu cloud images; without it no systemd user manager can start.
# etcd-server, etcd-client: the Kubespray stand-in installs them as Kubespray installs etcd
# (etcd_deployment_type host), the one piece of a control plane that does run here.
PACKAGES = (
    "openssh-server,python3,iproute2,systemd-sysv,dbus,libpam-systemd,sudo,ca-certificates,procps,"
    "etcd-server,etcd-client"
)
IMAGE_USER = "ubuntu"
DONE_MARKER = ".stackspray-base-done"
# Units that have nothing to do in a container and only slow down boot.
MASKED_UNITS = (
    "getty@tty1.service",
    "console-getty.service",
    "systemd-timesyncd.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_reap.service",
)


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses ($STACKSPRAY_DEBIAN_MIRROR overrides)."""
    env = os.environ.get("STACKSPRAY_DEBIAN_MIRROR")
    if env:
        return env
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for src in sources:
        try:
            text = src.read_text()
        except OSError:
            continue
        for m in re.finditer(r"(?:URIs:|deb)\s+(\S+/debian)/?\s", text):
            return m.group(1)
    return "http://deb.debian.org/debian"


def base_ready(base: Path) -> bool:
    """Built, and from the current package list (a changed list rebuilds it)."""
    try:
        return (base / DONE_MARKER).read_text().strip() == f"{SUITE} {PACKAGES}"
    except OSError:
        return False


def build_base(base: Path) -> float:
    """Build the base image unless it is cached; return the seconds spent (0 when cached)."""
    if base_ready(base):
        return 0.0
    started = time.monotonic()
    tmp = base.with_name(base.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    mirror = apt_mirror()
    log.info("debootstrap %s from %s into %s", SUITE, mirror, tmp)
    run(
        ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(tmp), mirror],
        timeout=1200,
    )
    _configure(tmp)
    if base.exists():
        shutil.rmtree(base)
    tmp.rename(base)
    (base / DONE_MARKER).write_text(f"{SUITE} {PACKAGES}\n")
    return time.monotonic() - started


def _configure(root: Path) -> None:
    run(["chroot", str(root), "useradd", "-m", "-s", "/bin/bash", IMAGE_USER])
    sudoers = root / "etc" / "sudoers.d" / "90-cloud-user"
    sudoers.write_text(f"{IMAGE_USER} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    # Each node generates its own host keys when it is first created.
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    sshd_conf = root / "etc" / "ssh" / "sshd_config.d" / "stackspray-sandbox.conf"
    sshd_conf.parent.mkdir(parents=True, exist_ok=True)
    sshd_conf.write_text("UseDNS no\nPasswordAuthentication no\nPermitRootLogin no\n")
    # The host's resolver is unreachable from a node's namespace; fail fast instead of 5 s x tries.
    resolv = root / "etc" / "resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    for unit in MASKED_UNITS:
        link = root / "etc" / "systemd" / "system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("/dev/null")
    # Debian's etcd-server enables its own etcd.service: no node runs etcd until the Kubespray
    # stand-in configures it, as an image without etcd would.
    for wants in (root / "etc" / "systemd" / "system").glob("*.wants/etcd.service"):
        wants.unlink()
    (root / "etc" / "machine-id").write_text("")
    # Free the space apt's downloaded packages take in every node's lower layer.
    shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    (root / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
