"""Fixtures shared by every integration test: the sandbox cloud and handles on it.

The sandbox is started (or reused when it already runs) once per session through the same
entry point as ``invoke sandbox.up``. A broken environment fails the tests; nothing is skipped.

Side by side (pytest-xdist, as scripts/test runs them): worker gwN works in sandbox lane N — a
project of its own in the one sandbox cloud (stackspray_sandbox/lanes.py: its own clouds.yaml,
quotas, router, zone, faults, network ranges) — so two workers' clusters never meet. Each test
file runs on one worker (--dist loadfile: its module-scoped clusters are built once); the files
that edit this machine's crontab run one at a time; the one that stops the whole sandbox runs
alone, last.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import openstack
import paramiko
import pytest
from stackspray_sandbox import cloud, lanes
from stackspray_sandbox.paths import SandboxPaths
from stackspray_sandbox.specs import made_clusters

from stackspray.cluster import destroy_cluster
from stackspray.names import META_CLUSTER, cluster_tag
from stackspray.progress import Progress

_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw"):
    os.environ[lanes.LANE_ENV] = _WORKER[2:]

# Run first, so that side by side the longest files do not start last (seconds on a 2-core CI
# machine, 2026-12-07): the rest keeps collection order.
SLOW_FIRST = (
    "test_heal.py",
    "test_autoscale.py",
    "test_autoscale_agent.py",
    "test_hibernate.py",
    "test_scale.py",
    "test_credentials.py",
    "test_upgrade.py",
    "test_gpu_groups.py",
    "test_kubespray.py",
    "test_schedule_systemd.py",
)


def pytest_collection_modifyitems(config, items):
    """The slowest files first (pytest-xdist's loadfile hands out files in this order)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    # The file that stops the whole sandbox waits for every other worker to leave its sandbox
    # file: last of all, where the others are finishing anyway.
    rank["test_zz_teardown.py"] = len(rank) + 1
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))


@contextlib.contextmanager
def _flock(path: Path, mode: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, mode)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class Sandbox:
    paths: SandboxPaths
    report: cloud.UpReport
    was_running: bool

    @property
    def clouds_yaml(self) -> Path:
        return self.paths.clouds_yaml


def stop_session_ssh(basetemp: Path) -> list[int]:
    """Stop the ssh clients this session's Ansible runs left (jump-host proxies whose master is
    gone wait for a peer that no longer exists; once the sandbox's routes are down their packets
    would leave the machine). Only processes whose command line names this session's temp dir."""
    stopped = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0] == b"ssh" and any(str(basetemp).encode() in a for a in argv):
            try:
                os.kill(int(proc.name), 15)
                stopped.append(int(proc.name))
            except ProcessLookupError:
                pass
    return stopped


def sweep_made_clusters(paths: SandboxPaths, scratch: Path) -> list[str]:
    """Destroy what is left in the sandbox of the clusters test specs were written for (an
    interrupted run's: its quota and address ranges would fail unrelated tests later), found by
    their exact ownership marks; forget the names of which nothing is left. Returns the names
    destroyed."""
    ledger = made_clusters(paths)
    names = sorted(p.name for p in ledger.iterdir()) if ledger.is_dir() else []
    if not names:
        return []
    conn = openstack.connect(cloud="sandbox")
    marks = {m for g in conn.network.security_groups() for m in [g.description or "", *(g.tags or [])]}
    marks |= {m for n in conn.network.networks() for m in [n.description or "", *(n.tags or [])]}
    marks |= {m for f in conn.network.ips() for m in [f.description or "", *(f.tags or [])]}
    owners = {(s.metadata or {}).get(META_CLUSTER) for s in conn.compute.servers()}
    owners |= {(s.metadata or {}).get(META_CLUSTER) for s in conn.shared_file_system.shares()}
    left = [n for n in names if cluster_tag(n) in marks or n in owners]
    for name in left:
        destroy_cluster(name, cloud="sandbox", root=scratch, progress=Progress(emit=lambda m: None))
    for name in names:
        (ledger / name).unlink(missing_ok=True)
    return left


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """The running sandbox, in this worker's lane. One this test run started is stopped at the
    very end — by the last worker still using it, after every fixture that depends on it has
    cleaned up — and must leave nothing behind."""
    paths = SandboxPaths.default()
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    me = f"{run_id}/{_WORKER or 'main'}"
    record_file = paths.home / "test-run.json"
    with _flock(paths.home / "test-run.lock", fcntl.LOCK_EX):
        record = json.loads(record_file.read_text()) if record_file.exists() else {}
        if not record.get("workers"):
            # No run is using the sandbox: this one finds it up or down, and leaves it so. (A
            # second run started beside one that is still going shares its record.)
            record = {"run": run_id, "was_running": cloud.status(paths)["running"], "workers": []}
        report = cloud.up(paths)
        cloud.ensure_lane(paths, lanes.number())
        record["workers"].append(me)
        record_file.write_text(json.dumps(record))
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(paths.clouds_yaml)
    swept = sweep_made_clusters(paths, tmp_path_factory.mktemp("sweep"))
    if swept:
        print(f"\nclusters an interrupted earlier run left, destroyed first: {', '.join(swept)}")
    yield Sandbox(paths, report, record["was_running"])
    sweep_made_clusters(paths, tmp_path_factory.mktemp("sweep"))
    stop_session_ssh(tmp_path_factory.getbasetemp())
    with _flock(paths.home / "test-run.lock", fcntl.LOCK_EX):
        record = json.loads(record_file.read_text())
        record["workers"] = [w for w in record["workers"] if w != me]
        record_file.write_text(json.dumps(record))
        if not record["workers"] and not record["was_running"]:
            cloud.down(paths)
            left = cloud.leftovers(paths)
            assert left == {}, f"sandbox.down left these behind: {left}"


@pytest.fixture(scope="module", autouse=True)
def _sandbox_turn(request):
    """Every sandbox module holds the sandbox shared while it runs; one marked
    sandbox_exclusive (it stops the sandbox) waits until no other worker is in one; one marked
    host_scheduler (it edits this machine's crontab) waits until no other worker is in one such.
    (pytest-xdist's loadgroup would keep those on one worker, but it renames node ids through an
    attribute pytest 9 no longer reads, so a lock does it.)"""
    if not {"integration", "sandbox"} & set(request.node.path.parts):
        yield
        return
    home = SandboxPaths.default().home
    exclusive = request.node.get_closest_marker("sandbox_exclusive") is not None
    with contextlib.ExitStack() as held:
        if request.node.get_closest_marker("host_scheduler") is not None:
            held.enter_context(_flock(home / "test-host-scheduler.lock", fcntl.LOCK_EX))
        held.enter_context(_flock(home / "test-turn.lock", fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH))
        yield


@pytest.fixture(scope="session")
def conn(sandbox):
    """openstacksdk as the project member, through the public (fault-injecting) endpoints."""
    return openstack.connect(cloud="sandbox")


@pytest.fixture(scope="session")
def admin_conn(sandbox):
    return openstack.connect(cloud="sandbox-admin")


def project_resources(conn) -> dict[str, set[str]]:
    """What the project holds that a test could leave behind, as "name (id)" per type."""
    pid = conn.current_project_id

    def named(items) -> set[str]:
        return {f"{i.name} ({i.id})" for i in items}

    return {
        "security groups": named(
            g for g in conn.network.security_groups(project_id=pid) if g.name != "default"
        ),
        "networks": named(
            n for n in conn.network.networks(project_id=pid) if n.name != "auto_allocated_network"
        ),
        "servers": named(conn.compute.servers()),
        "floating IPs": {f"{f.floating_ip_address} ({f.id})" for f in conn.network.ips(project_id=pid)},
        "volumes": named(conn.block_storage.volumes()),
        "load balancers": named(conn.load_balancer.load_balancers()),
    }


def _leaks(conn, before: dict[str, set[str]]) -> dict[str, list[str]]:
    after = project_resources(conn)
    return {k: sorted(after[k] - before[k]) for k in after if after[k] - before[k]}


def _leaves_nothing(request):
    """Around an integration test or module: the project as it was before, afterwards."""
    if "integration" not in request.node.path.parts:
        yield
        return
    conn = request.getfixturevalue("conn")
    before = project_resources(conn)
    yield
    leaks = _leaks(conn, before)
    assert not leaks, f"{request.node.name} left these in the project: {leaks}"


@pytest.fixture(scope="module", autouse=True)
def _module_leaves_nothing(request):
    """An integration module (its module-scoped clusters included) leaves the project as it
    found it; a leak fails here, in the module that made it, not later in an unrelated quota."""
    yield from _leaves_nothing(request)


@pytest.fixture(autouse=True)
def _test_leaves_nothing(request):
    """Each integration test leaves the project as it found it (its cleanups have run)."""
    yield from _leaves_nothing(request)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> Path:
    """A throw-away ed25519 key made for this test session (never committed)."""
    d = tmp_path_factory.mktemp("ssh")
    key = d / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture(scope="session")
def keypair(conn, ssh_key):
    kp = conn.compute.create_keypair(
        name=unique("test-kp"), public_key=ssh_key.with_suffix(".pub").read_text()
    )
    yield kp
    conn.compute.delete_keypair(kp, ignore_missing=True)


_cidr_counter = iter(range(100, 250))


@dataclass
class Net:
    network: object
    subnet: object
    router: object


@pytest.fixture
def make_network(conn):
    """Factory: a network + subnet (distinct CIDR) on the project's router; deleted after the test."""
    created: list[Net] = []

    def make() -> Net:
        name = unique("test-net")
        net = conn.network.create_network(name=name)
        created.append(Net(net, None, None))
        sub = conn.network.create_subnet(
            name=name, network_id=net.id, ip_version=4, cidr=lanes.cidr(f"10.{next(_cidr_counter)}.0.0/24")
        )
        created[-1].subnet = sub
        # As on Jetstream2, the project has one router (quota 1), the auto-allocated one: join it.
        router = conn.network.find_router("auto_allocated_router")
        assert router is not None, "the sandbox project has no auto_allocated_router"
        created[-1].router = router
        conn.network.add_interface_to_router(router, subnet=sub.id)
        return created[-1]

    yield make
    for n in reversed(created):
        if n.router is not None:
            if n.subnet is not None:
                try:
                    conn.network.remove_interface_from_router(n.router, subnet=n.subnet.id)
                except openstack.exceptions.NotFoundException:
                    pass
        _wait_no_compute_ports(conn, n.network.id)
        conn.network.delete_network(n.network, ignore_missing=True)


def _wait_no_compute_ports(conn, network_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [
            p for p in conn.network.ports(network_id=network_id) if p.device_owner.startswith("compute:")
        ]:
            return
        time.sleep(0.5)


@pytest.fixture
def make_server(conn, keypair):
    """Factory: boot a server (m3.tiny, Featured-Ubuntu24) on a network; deleted after the test."""
    created = []

    def make(net: Net, name: str | None = None, wait: bool = True, status: str = "ACTIVE"):
        image = conn.image.find_image("Featured-Ubuntu24")
        flavor = conn.compute.find_flavor("m3.tiny")
        server = conn.compute.create_server(
            name=name or unique("test-vm"),
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": net.network.id}],
            key_name=keypair.name,
        )
        created.append(server)
        if wait:
            server = conn.compute.wait_for_server(server, status=status, failures=["ERROR"], wait=120)
        return server

    yield make
    for s in created:
        conn.compute.delete_server(s, ignore_missing=True)
    for s in created:
        conn.compute.wait_for_delete(s, wait=120)


def fixed_ip(server) -> str:
    for addrs in server.addresses.values():
        for a in addrs:
            if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a["version"] == 4:
                return a["addr"]
    raise AssertionError(f"server {server.name} has no fixed IPv4 address: {server.addresses}")


def ssh(address: str, key: Path, command: str, timeout: float = 30.0, user: str = "ubuntu") -> str:
    """Run a command over SSH (retrying the connection until `timeout`); return its stdout."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(
                address,
                username=user,
                key_filename=str(key),
                timeout=3,
                banner_timeout=5,
                auth_timeout=5,
                look_for_keys=False,
                allow_agent=False,
            )
            _, out, err = client.exec_command(command, timeout=30)
            rc = out.channel.recv_exit_status()
            text = out.read().decode()
            if rc != 0:
                raise AssertionError(f"`{command}` on {address} exited {rc}: {err.read().decode()}")
            return text
        except (OSError, paramiko.SSHException) as exc:
            last = exc
            time.sleep(0.3)
        finally:
            client.close()
    raise AssertionError(f"no SSH to {address} within {timeout}s: {last!r}")


def ssh_refused(address: str, key: Path, timeout: float = 4.0) -> bool:
    """True when no SSH session can be opened to the address (connection refused/unreachable)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            address,
            username="ubuntu",
            key_filename=str(key),
            timeout=timeout,
            banner_timeout=timeout,
            look_for_keys=False,
            allow_agent=False,
        )
    except (OSError, EOFError, paramiko.SSHException):
        # EOFError: the TCP connection was taken and then dropped mid-handshake (a node being
        # killed at that moment); no session was opened either.
        return True
    finally:
        client.close()
    return False


@pytest.fixture
def cron_daemon():
    """A running cron daemon, so an installed crontab line really runs: the one this machine
    runs, else Debian's `cron -f` started here for this test only (stopped by its PID after it,
    so no other test's crontab line can fire meanwhile)."""
    from stackspray_sandbox.infra import install_apt_packages

    from stackspray.schedule import cron_daemon_running

    install_apt_packages()  # crontab and cron come from Debian's cron package
    if cron_daemon_running():
        yield None
        return
    daemon = subprocess.Popen(["cron", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not cron_daemon_running():
            assert daemon.poll() is None, f"cron -f exited with {daemon.returncode}"
            assert time.monotonic() < deadline, "cron -f started but no cron process is seen"
            time.sleep(0.1)
        yield daemon.pid
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
