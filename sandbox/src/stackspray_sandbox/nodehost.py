"""Node hosts: every ACTIVE sandbox server becomes a real Linux host reachable over SSH.

A node is a network namespace with one veth into a bridge per Neutron network (the bridge holds
the subnet's gateway address, so this machine reaches the node's fixed IP; the node's floating
IPs are extra /32 addresses routed to that bridge), an overlayfs root (the cached Debian base
below, the node's own disk above, kept across shelve/unshelve), and systemd-nspawn --boot
running real systemd and sshd inside. Nothing is routed or NATed off this machine.

Names on the host: bridges ``sprb-<net8>``, namespaces ``sprn-<srv8>``, veths ``sprv<srv8>``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2

from .nodeimage import IMAGE_USER
from .paths import SandboxPaths
from .shell import pid_alive, run

log = logging.getLogger(__name__)

BRIDGE_PREFIX = "sprb-"
PUBLIC_LABEL = "lo:sprpub"  # the label of the cloud's public API address on loopback
# How every node host's container runs: not registered with machined, in the caller's unit, no
# console, the node's own resolv.conf and journal, the host's user ids.
NSPAWN_FLAGS = (
    "--register=no",
    "--keep-unit",
    "--console=passive",
    "--resolv-conf=off",
    "--link-journal=no",
    "--private-users=no",
)
NETNS_PREFIX = "sprn-"
VETH_PREFIX = "sprv"
# Nodes of one network start concurrently and share its bridge.
_bridge_lock = threading.Lock()
# Each container gets a cgroup of its own below this one, in every hierarchy systemd uses: with
# --keep-unit nspawn puts the container's systemd in "<its own cgroup>/payload", so containers
# started from one cgroup would share it, and the later one's units fail with status=219/CGROUP
# (its systemd-user-sessions never removes /run/nologin: "System is booting up" to every login).
CGROUP_PARENT = "stackspray-sandbox"


@dataclass
class NodeSpec:
    """What a node host is made from: one Nova server and its first port."""

    server_id: str
    hostname: str
    network_id: str
    fixed_ip: str
    cidr: str
    gateway: str
    mac: str
    public_key: str = ""
    floating_ips: list[str] = field(default_factory=list)
    machine: dict[str, int] = field(default_factory=dict)  # vcpus, ram_mb, gpus of the flavor

    @property
    def short(self) -> str:
        return self.server_id.replace("-", "")[:8]

    @property
    def netns(self) -> str:
        return NETNS_PREFIX + self.short

    @property
    def veth(self) -> str:
        return VETH_PREFIX + self.short

    @property
    def bridge(self) -> str:
        return BRIDGE_PREFIX + self.network_id.replace("-", "")[:8]


def node_dir(paths: SandboxPaths, server_id: str) -> Path:
    return paths.nodes / server_id


def _pidfile(paths: SandboxPaths, server_id: str) -> Path:
    return node_dir(paths, server_id) / "nspawn.pid"


def node_pid(paths: SandboxPaths, server_id: str) -> int | None:
    try:
        pid = int(_pidfile(paths, server_id).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def is_running(paths: SandboxPaths, server_id: str) -> bool:
    return node_pid(paths, server_id) is not None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ip", *args], check=check)


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def ensure_public_address(address: str) -> None:
    """The cloud's public API address (services.PUBLIC_HOST) as a /32 on this machine's loopback
    (labelled `lo:sprpub`; a dummy link would do, but containers often lack the module): reached
    locally, and by every node through its default route to its network's bridge."""
    if f"{address}/32" not in _addresses("lo"):
        _ip("addr", "add", f"{address}/32", "dev", "lo", "label", PUBLIC_LABEL)


def public_addresses() -> list[str]:
    """The sandbox's public API address(es) on loopback, found by their label."""
    out = _ip("-j", "addr", "show", "dev", "lo", check=False).stdout
    try:
        data = json.loads(out or "[]")
    except ValueError:
        return []
    return [
        f"{a['local']}/{a['prefixlen']}"
        for d in data
        for a in d.get("addr_info", [])
        if a.get("label") == PUBLIC_LABEL
    ]


def remove_public_address() -> None:
    for cidr in public_addresses():
        _ip("addr", "del", cidr, "dev", "lo", check=False)


def ensure_bridge(spec: NodeSpec) -> None:
    """The network's bridge, holding the subnet's gateway address (no forwarding, no NAT)."""
    with _bridge_lock:
        _ensure_bridge(spec)


def _ensure_bridge(spec: NodeSpec) -> None:
    prefix = ipaddress.ip_network(spec.cidr, strict=False).prefixlen
    if not _link_exists(spec.bridge):
        # Another network with an overlapping subnet would make routes ambiguous: refuse it.
        net = ipaddress.ip_network(spec.cidr, strict=False)
        for other in Path("/sys/class/net").iterdir():
            if other.name.startswith(BRIDGE_PREFIX):
                for addr in _addresses(other.name):
                    if ipaddress.ip_interface(addr).network.overlaps(net):
                        raise RuntimeError(
                            f"sandbox: subnet {spec.cidr} of network {spec.network_id} overlaps "
                            f"{addr} on {other.name}; node hosts need distinct subnets"
                        )
        _ip("link", "add", "name", spec.bridge, "type", "bridge")
    if f"{spec.gateway}/{prefix}" not in _addresses(spec.bridge):
        _ip("addr", "add", f"{spec.gateway}/{prefix}", "dev", spec.bridge)
    _ip("link", "set", spec.bridge, "up")


def _addresses(dev: str) -> list[str]:
    out = _ip("-j", "addr", "show", "dev", dev, check=False).stdout
    try:
        data = json.loads(out or "[]")
    except ValueError:
        return []
    return [f"{a['local']}/{a['prefixlen']}" for d in data for a in d.get("addr_info", [])]


def _setup_netns(spec: NodeSpec) -> None:
    prefix = ipaddress.ip_network(spec.cidr, strict=False).prefixlen
    if Path(f"/run/netns/{spec.netns}").exists():
        _ip("netns", "del", spec.netns, check=False)
    if _link_exists(spec.veth):
        _ip("link", "del", spec.veth, check=False)
    _ip("netns", "add", spec.netns)
    _ip("link", "add", spec.veth, "type", "veth", "peer", "name", "eth0", "netns", spec.netns)
    _ip("link", "set", spec.veth, "master", spec.bridge, "up")
    ns = ["netns", "exec", spec.netns, "ip"]
    _ip(*ns, "link", "set", "lo", "up")
    _ip(*ns, "link", "set", "eth0", "address", spec.mac)
    _ip(*ns, "addr", "add", f"{spec.fixed_ip}/{prefix}", "dev", "eth0")
    _ip(*ns, "link", "set", "eth0", "up")
    _ip(*ns, "route", "add", "default", "via", spec.gateway)
    # A node re-created at the same IP has a new veth: forget the old neighbour entry, or SSH
    # stalls ~40 s on it.
    for addr in [spec.fixed_ip, *spec.floating_ips]:
        _ip("neigh", "flush", "to", addr, check=False)
    sync_floating_ips(spec, [])


def sync_floating_ips(spec: NodeSpec, previous: list[str]) -> None:
    """Make the node answer at exactly spec.floating_ips (host routes + node addresses)."""
    ns = ["netns", "exec", spec.netns, "ip"]
    for fip in previous:
        if fip not in spec.floating_ips:
            _ip("route", "del", f"{fip}/32", check=False)
            _ip(*ns, "addr", "del", f"{fip}/32", "dev", "eth0", check=False)
    for fip in spec.floating_ips:
        if fip not in previous:
            _ip(*ns, "addr", "replace", f"{fip}/32", "dev", "eth0", check=False)
        _ip("route", "replace", f"{fip}/32", "dev", spec.bridge, "src", spec.gateway)


def _overlay(paths: SandboxPaths, spec: NodeSpec) -> Path:
    d = node_dir(paths, spec.server_id)
    upper, work, merged = d / "upper", d / "work", d / "root"
    for p in (upper, work, merged):
        p.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(merged):
        run(
            [
                "mount",
                "-t",
                "overlay",
                f"stackspray-{spec.short}",
                "-o",
                f"lowerdir={paths.base_image},upperdir={upper},workdir={work}",
                str(merged),
            ]
        )
    return merged


# cloud-init's Debian/Ubuntu template of /etc/hosts (canonical/cloud-init templates/hosts.debian.tmpl),
# as an image with cloud-init ships it.
HOSTS_TEMPLATE = """## template:jinja
{#
This file (/etc/cloud/templates/hosts.debian.tmpl) is only utilized
if enabled in cloud-config.  Specifically, in order to enable it
you need to add the following to config:
   manage_etc_hosts: True
-#}
# Your system has configured 'manage_etc_hosts' as True.
# As a result, if you wish for changes to this file to persist
# then you will need to either
# a.) make changes to the master file in /etc/cloud/templates/hosts.debian.tmpl
# b.) change or remove the value of 'manage_etc_hosts' in
#     /etc/cloud/cloud.cfg or cloud-config from user-data
#
{# The value '{{hostname}}' will be replaced with the local-hostname -#}
127.0.1.1 {{fqdn}} {{hostname}}
127.0.0.1 localhost

# The following lines are desirable for IPv6 capable hosts
::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters

"""


def render_etc_hosts(template: str, hostname: str) -> str:
    """/etc/hosts as cloud-init renders it from its template (the `## template:jinja` line off,
    jinja with hostname and fqdn; cloudinit/templater.py)."""
    body = template.split("\n", 1)[1] if template.startswith("## template:jinja") else template
    return jinja2.Template(body, keep_trailing_newline=True).render(hostname=hostname, fqdn=hostname)


def _customise(root: Path, spec: NodeSpec) -> None:
    (root / "etc" / "hostname").write_text(spec.hostname + "\n")
    # Every boot, as an image whose cloud-init has `manage_etc_hosts: true` does
    # (cloudinit/config/cc_update_etc_hosts.py, frequency PER_ALWAYS): /etc/hosts is rendered
    # again from the template; whatever was added to /etc/hosts alone is gone after a reboot or
    # an unshelve. The image's template is there from the first boot on.
    template = root / "etc" / "cloud" / "templates" / "hosts.debian.tmpl"
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        template.write_text(HOSTS_TEMPLATE)
    (root / "etc" / "hosts").write_text(render_etc_hosts(template.read_text(), spec.hostname))
    # The flavor's resources, for what a kubelet on a VM of that flavor would report (the node
    # host itself sees this machine's CPUs and memory).
    machine = root / "etc" / "stackspray-sandbox" / "machine.json"
    machine.parent.mkdir(exist_ok=True)
    machine.write_text(json.dumps(spec.machine) + "\n")
    mid = root / "etc" / "machine-id"
    if not mid.read_text().strip():
        mid.write_text(spec.server_id.replace("-", "") + "\n")
    if not list((root / "etc" / "ssh").glob("ssh_host_*_key")):
        run(["ssh-keygen", "-A", "-f", str(root)])
    ssh_dir = root / "home" / IMAGE_USER / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(spec.public_key.strip() + "\n" if spec.public_key else "")
    uid, gid = user_ids(root, IMAGE_USER)
    for p in (ssh_dir, keys):
        os.chown(p, uid, gid)
    keys.chmod(0o600)


def user_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return int(parts[2]), int(parts[3])
    raise RuntimeError(f"base image has no user {user}")


def start_node(paths: SandboxPaths, spec: NodeSpec) -> int:
    """Boot the node host for this server (idempotent); return the nspawn PID."""
    pid = node_pid(paths, spec.server_id)
    if pid:
        return pid
    d = node_dir(paths, spec.server_id)
    d.mkdir(parents=True, exist_ok=True)
    save_spec(paths, spec)
    try:
        ensure_bridge(spec)
        _setup_netns(spec)
        root = _overlay(paths, spec)
        _customise(root, spec)
    except Exception:
        _release(paths, spec.server_id)  # leave nothing half-made; the next attempt starts clean
        raise
    logf = open(d / "console.log", "ab")  # noqa: SIM115 (handed to the child)
    procs = " ".join(str(g / "cgroup.procs") for g in _node_cgroups(spec.short, create=True))
    proc = subprocess.Popen(
        [
            "sh",
            "-c",
            'for f in $0; do echo $$ > "$f" || exit 1; done; exec "$@"',
            procs,
            "systemd-nspawn",
            "-D",
            str(root),
            "--boot",
            f"--machine=spr-{spec.short}",
            f"--network-namespace-path=/run/netns/{spec.netns}",
            f"--hostname={spec.hostname}",
            *NSPAWN_FLAGS,
        ],
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    logf.close()
    _pidfile(paths, spec.server_id).write_text(str(proc.pid))
    log.info("node %s (%s) started: pid %s at %s", spec.hostname, spec.server_id, proc.pid, spec.fixed_ip)
    return proc.pid


def _systemd_hierarchies() -> list[Path]:
    """The cgroup hierarchies systemd keeps its tree in: name=systemd (v1 or hybrid) and the
    unified (v2) one, wherever mounted."""
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            _dev, target, fstype, options = line.split()[:4]
            if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
                found.append(Path(target))
    return found


def _node_cgroups(short: str, create: bool = False) -> list[Path]:
    """The node's own cgroup in each of systemd's hierarchies (made when `create`)."""
    groups = [h / CGROUP_PARENT / f"spr-{short}" for h in _systemd_hierarchies()]
    if create:
        for g in groups:
            g.mkdir(parents=True, exist_ok=True)
    return groups


def _remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup and what the container made below it, deepest first (a cgroup with
    processes left stays)."""
    if not top.is_dir():
        return
    for sub in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            sub.rmdir()
        except OSError:
            pass
    try:
        top.rmdir()
    except OSError:
        pass


def save_spec(paths: SandboxPaths, spec: NodeSpec) -> None:
    (node_dir(paths, spec.server_id) / "spec.json").write_text(json.dumps(asdict(spec), indent=1))


def load_spec(paths: SandboxPaths, server_id: str) -> NodeSpec | None:
    try:
        return NodeSpec(**json.loads((node_dir(paths, server_id) / "spec.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _container_init(nspawn_pid: int) -> int | None:
    """The container's PID 1 as seen from the host (nspawn's child)."""
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def kill_node(paths: SandboxPaths, server_id: str) -> bool:
    """Stop a node abruptly, as a crashed VM (fault injection). Return True if it was running."""
    pid = node_pid(paths, server_id)
    if not pid:
        return False
    _kill_container(pid)
    _wait_gone(pid, 10)
    return True


def _kill_container(nspawn_pid: int, init: int | None = None) -> None:
    """SIGKILL the container's init (which kills every process in its PID namespace) and nspawn."""
    for target in (init or _container_init(nspawn_pid), nspawn_pid):
        if target:
            try:
                os.kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return not pid_alive(pid)


def stop_node(paths: SandboxPaths, server_id: str, timeout: float = 10.0) -> None:
    """Shut the node down (its disk is kept) and release its namespace, veth and mount."""
    pid = node_pid(paths, server_id)
    if pid:
        init = _container_init(pid)
        # systemd-nspawn: SIGTERM asks the container's systemd to power off; then make sure.
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not _wait_gone(pid, timeout):
            _kill_container(pid, init)
            _wait_gone(pid, 5)
    _release(paths, server_id)


def _release(paths: SandboxPaths, server_id: str) -> None:
    d = node_dir(paths, server_id)
    spec = load_spec(paths, server_id)
    root = d / "root"
    if os.path.ismount(root):
        if run(["umount", str(root)], check=False).returncode != 0:
            run(["umount", "-l", str(root)], check=False)
    if spec:
        for fip in spec.floating_ips:
            _ip("route", "del", f"{fip}/32", check=False)
        if Path(f"/run/netns/{spec.netns}").exists():
            _ip("netns", "del", spec.netns, check=False)
        if _link_exists(spec.veth):
            _ip("link", "del", spec.veth, check=False)
        for group in _node_cgroups(spec.short):
            _remove_cgroup_tree(group)
    _pidfile(paths, server_id).unlink(missing_ok=True)


def destroy_node(paths: SandboxPaths, server_id: str) -> None:
    """Stop the node and delete its disk (the server was deleted)."""
    stop_node(paths, server_id, timeout=5)
    shutil.rmtree(node_dir(paths, server_id), ignore_errors=True)


def prune_bridges(paths: SandboxPaths) -> list[str]:
    """Delete the bridges no running node uses (their network was deleted or emptied)."""
    used = set()
    if paths.nodes.exists():
        for d in paths.nodes.iterdir():
            spec = load_spec(paths, d.name)
            if spec and is_running(paths, d.name):
                used.add(spec.bridge)
    removed = []
    for link in Path("/sys/class/net").iterdir():
        if link.name.startswith(BRIDGE_PREFIX) and link.name not in used:
            _ip("link", "del", link.name, check=False)
            removed.append(link.name)
    return removed


def _boot_file(paths: SandboxPaths, server_id: str) -> Path:
    return node_dir(paths, server_id) / "boot.json"


def save_boot(paths: SandboxPaths, server_id: str, record: dict) -> None:
    """How the node's last start went (the node agent's): boots, seconds to SSH, problems."""
    if node_dir(paths, server_id).exists():
        _boot_file(paths, server_id).write_text(json.dumps(record))


def load_boot(paths: SandboxPaths, server_id: str) -> dict | None:
    try:
        return json.loads(_boot_file(paths, server_id).read_text())
    except (FileNotFoundError, ValueError):
        return None


def console_tail(paths: SandboxPaths, server_id: str, lines: int = 1) -> str:
    """The last non-empty lines of the node's console (what its systemd printed)."""
    try:
        text = (node_dir(paths, server_id) / "console.log").read_bytes()[-4096:].decode(errors="replace")
    except FileNotFoundError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def list_nodes(paths: SandboxPaths) -> list[dict]:
    out = []
    if not paths.nodes.exists():
        return out
    for d in sorted(paths.nodes.iterdir()):
        spec = load_spec(paths, d.name)
        if spec:
            out.append(
                {
                    "server_id": spec.server_id,
                    "hostname": spec.hostname,
                    "fixed_ip": spec.fixed_ip,
                    "floating_ips": spec.floating_ips,
                    "running": is_running(paths, spec.server_id),
                    "boot": load_boot(paths, spec.server_id),
                }
            )
    return out


def ssh_ready(address: str, timeout: float = 0.5) -> bool:
    """True when something accepts TCP on port 22 and speaks SSH."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def cleanup_all(paths: SandboxPaths) -> None:
    """Stop every node and remove every bridge, namespace and mount of this sandbox."""
    if paths.nodes.exists():
        for d in paths.nodes.iterdir():
            stop_node(paths, d.name, timeout=5)
    for name in _our_netns():
        _ip("netns", "del", name, check=False)
    for link in Path("/sys/class/net").iterdir():
        if link.name.startswith((BRIDGE_PREFIX, VETH_PREFIX)):
            _ip("link", "del", link.name, check=False)
    remove_public_address()
    for mnt in _our_mounts(paths):
        run(["umount", "-l", mnt], check=False)
    for hierarchy in _systemd_hierarchies():
        _remove_cgroup_tree(hierarchy / CGROUP_PARENT)


def _our_netns() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir() if p.name.startswith(NETNS_PREFIX)) if d.exists() else []


def _our_mounts(paths: SandboxPaths) -> list[str]:
    prefix = str(paths.state) + "/"
    mounts = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(prefix):
                mounts.append(target)
    return mounts


def host_leftovers(paths: SandboxPaths) -> dict[str, list[str]]:
    """Namespaces, links, mounts and node processes of this sandbox still present on the host."""
    links = [
        p.name for p in Path("/sys/class/net").iterdir() if p.name.startswith((BRIDGE_PREFIX, VETH_PREFIX))
    ] + [f"lo {cidr} ({PUBLIC_LABEL})" for cidr in public_addresses()]
    nspawns = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                cmd
                and cmd[0].endswith(b"systemd-nspawn")
                and any(re.match(rb"--machine=spr-", c) for c in cmd)
            ):
                nspawns.append(entry.name)
    return {
        "netns": _our_netns(),
        "links": sorted(links),
        "mounts": _our_mounts(paths),
        "node_processes": sorted(nspawns),
    }
