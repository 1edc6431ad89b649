"""The node agent: makes the sandbox's node hosts follow Nova.

Polls Nova and Neutron (as admin, on the internal endpoints so injected faults never reach it)
and reconciles: a server that is ACTIVE gets a running node host; SHELVED/SHUTOFF/ERROR stops
it (its disk is kept); a deleted server's node is destroyed; floating IPs follow Neutron.
A node killed by fault injection stays down until Nova's record of the server changes (a
reboot, a stop/start), as a crashed VM would.

Run as ``python -m stackspray_sandbox.nodeagent`` (``sandbox.up`` does). SIGTERM stops every
node and exits.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import faults, nodehost
from .cloud import admin_connection
from .paths import SandboxPaths

log = logging.getLogger("stackspray_sandbox.nodeagent")

RUNNING_STATES = {"ACTIVE"}
STOPPED_STATES = {
    "SHELVED",
    "SHELVED_OFFLOADED",
    "SHUTOFF",
    "SUSPENDED",
    "PAUSED",
    "ERROR",
    "SOFT_DELETED",
    "DELETED",
    "HARD_REBOOT",
    "REBOOT",
}
POLL_SECONDS = 0.5
# A node host that is not SSH-ready 30 s after it was started failed for the sandbox's own
# reasons (a real VM would not): it is stopped and started again, up to this many boots.
BOOT_ATTEMPTS = 3
SSH_READY_SECONDS = 30.0


def _hostname(server) -> str:
    name = server.hostname or server.name or server.id
    name = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")
    return name[:63] or server.id[:8]


class Agent:
    def __init__(self, paths: SandboxPaths) -> None:
        self.paths = paths
        self.conn = admin_connection(paths, internal=True)
        # server id -> Nova's `updated` when we last started its node (crash memory)
        self.started_for: dict[str, str] = {}
        self.subnets: dict[str, tuple[str, str]] = {}
        self.pool = ThreadPoolExecutor(max_workers=8)

    def _public_key(self, server) -> str:
        """The server's keypair, looked up at each node start: a keypair name can be reused with
        another key after the first one is deleted, so nothing is cached across servers."""
        if not server.key_name:
            return ""
        try:
            return self.conn.compute.get_keypair(server.key_name, user_id=server.user_id).public_key
        except Exception:  # the keypair was deleted after boot: nothing to authorise
            log.warning("keypair %s of server %s not found", server.key_name, server.id)
            return ""

    def _subnet(self, subnet_id: str) -> tuple[str, str]:
        if subnet_id not in self.subnets:
            sn = self.conn.network.get_subnet(subnet_id)
            self.subnets[subnet_id] = (sn.cidr, sn.gateway_ip or "")
        return self.subnets[subnet_id]

    def spec_for(self, server, ports, fips_by_port) -> nodehost.NodeSpec | None:
        mine = sorted((p for p in ports if p.device_id == server.id), key=lambda p: p.created_at or "")
        if not mine:
            return None
        port = mine[0]
        ips = [ip for ip in port.fixed_ips if ":" not in ip["ip_address"]]
        if not ips:
            return None
        cidr, gateway = self._subnet(ips[0]["subnet_id"])
        if not gateway:
            log.warning("server %s: subnet %s has no gateway; node unreachable", server.id, cidr)
            return None
        return nodehost.NodeSpec(
            server_id=server.id,
            hostname=_hostname(server),
            network_id=port.network_id,
            fixed_ip=ips[0]["ip_address"],
            cidr=cidr,
            gateway=gateway,
            mac=port.mac_address,
            public_key=self._public_key(server),
            floating_ips=sorted(fips_by_port.get(port.id, [])),
            machine=_machine(server),
        )

    def reconcile(self) -> None:
        servers = list(self.conn.compute.servers(all_projects=True))
        ports = list(self.conn.network.ports())
        fips_by_port: dict[str, list[str]] = {}
        for fip in self.conn.network.ips():
            if fip.port_id:
                fips_by_port.setdefault(fip.port_id, []).append(fip.floating_ip_address)
        known = {s.id for s in servers}
        jobs = []
        for server in servers:
            running = nodehost.is_running(self.paths, server.id)
            if server.status in RUNNING_STATES:
                if running:
                    spec = nodehost.load_spec(self.paths, server.id)
                    fips = sorted(fips_by_port.get(_first_port_id(server.id, ports), []))
                    if spec and spec.floating_ips != fips:
                        previous = spec.floating_ips
                        spec.floating_ips = fips
                        nodehost.sync_floating_ips(spec, previous)
                        nodehost.save_spec(self.paths, spec)
                    continue
                if self.started_for.get(server.id) == server.updated_at:
                    continue  # crashed (killed) while ACTIVE: stays down until Nova changes it
                spec = self.spec_for(server, ports, fips_by_port)
                if spec:
                    self.started_for[server.id] = server.updated_at
                    jobs.append(self.pool.submit(self._start, spec))
            elif server.status in STOPPED_STATES and running:
                jobs.append(self.pool.submit(nodehost.stop_node, self.paths, server.id))
        if self.paths.nodes.exists():
            for d in self.paths.nodes.iterdir():
                if d.name not in known:
                    jobs.append(self.pool.submit(nodehost.destroy_node, self.paths, d.name))
        for job in jobs:
            try:
                job.result()
            except Exception:
                log.exception("node operation failed")
        if jobs:
            for bridge in nodehost.prune_bridges(self.paths):
                log.info("bridge %s removed: no running node uses it", bridge)

    def _start(self, spec: nodehost.NodeSpec) -> None:
        if faults.take_silent_os(self.paths, spec.hostname):
            # Injected: ACTIVE in Nova, no OS answering (the host is not booted at all).
            nodehost.node_dir(self.paths, spec.server_id).mkdir(parents=True, exist_ok=True)
            nodehost.save_spec(self.paths, spec)
            nodehost.save_boot(
                self.paths,
                spec.server_id,
                {
                    "boots": 0,
                    "ready_seconds": None,
                    "problems": ["fault: the OS never answers"],
                    "silent": True,
                },
            )
            log.warning("node %s: silent-OS fault, not booted", spec.hostname)
            return
        problems: list[str] = []
        for boot in range(1, BOOT_ATTEMPTS + 1):
            t0 = time.monotonic()
            try:
                nodehost.start_node(self.paths, spec)
            except Exception:
                self.started_for.pop(spec.server_id, None)  # not a crash: retry on the next pass
                raise
            while time.monotonic() < t0 + SSH_READY_SECONDS:
                if nodehost.ssh_ready(spec.fixed_ip):
                    seconds = round(time.monotonic() - t0, 2)
                    log.info("node %s ssh-ready in %.2fs (boot %d)", spec.hostname, seconds, boot)
                    nodehost.save_boot(
                        self.paths,
                        spec.server_id,
                        {"boots": boot, "ready_seconds": seconds, "problems": problems},
                    )
                    return
                time.sleep(0.1)
            last = nodehost.console_tail(self.paths, spec.server_id)
            problems.append(f"boot {boot}: not ssh-ready after {SSH_READY_SECONDS:.0f}s (console: {last})")
            log.warning("node %s %s", spec.hostname, problems[-1])
            if boot < BOOT_ATTEMPTS:
                nodehost.stop_node(self.paths, spec.server_id)
        nodehost.save_boot(
            self.paths, spec.server_id, {"boots": BOOT_ATTEMPTS, "ready_seconds": None, "problems": problems}
        )

    def stop_all(self) -> None:
        if not self.paths.nodes.exists():
            return
        ids = [d.name for d in self.paths.nodes.iterdir()]
        list(self.pool.map(lambda i: nodehost.stop_node(self.paths, i), ids))


def _first_port_id(server_id: str, ports) -> str | None:
    mine = sorted((p for p in ports if p.device_id == server_id), key=lambda p: p.created_at or "")
    return mine[0].id if mine else None


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paths = SandboxPaths.default()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent = Agent(paths)
    log.info("node agent running")
    delay = POLL_SECONDS
    while not stop.is_set():
        try:
            agent.reconcile()
            delay = POLL_SECONDS
        except Exception:
            log.exception("reconcile failed; retrying")
            delay = min(delay * 2, 5)
        stop.wait(delay)
    log.info("node agent stopping its nodes")
    agent.stop_all()


def _machine(server) -> dict[str, int]:
    """What a VM of the server's flavor would show its kubelet: vCPUs, RAM and GPUs (Jetstream2's
    `gpu:count` extra spec). Nova embeds the flavor in the server (microversion 2.47 and later)."""
    flavor = server.flavor or {}
    get = flavor.get if isinstance(flavor, dict) else lambda k, d=None: getattr(flavor, k, d)
    extra = get("extra_specs") or {}
    try:
        gpus = int(extra.get("gpu:count", 0) or 0)
    except (TypeError, ValueError):
        gpus = 0
    return {"vcpus": int(get("vcpus", 0) or 0), "ram_mb": int(get("ram", 0) or 0), "gpus": gpus}


if __name__ == "__main__":
    main()
