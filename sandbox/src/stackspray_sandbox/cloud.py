"""`sandbox.up` / `sandbox.down` / `sandbox.status`: the whole sandbox cloud's life cycle.

``up`` is idempotent: on a fresh machine it installs (apt, the services' venv, the node base
image), creates the databases and bootstraps the cloud; on a machine where that was done it
only starts what is not running and checks the cloud's resources exist.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets as pysecrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import openstack
import yaml

import stackspray
import stackspray_sandbox

from . import ceph, infra, kernel, kube_schemas, lanes, nodehost, nodeimage, processes, services
from .paths import SandboxPaths
from .services import APIS, CATALOG, HOST, REGION, SERVICE_USERS
from .shell import run

log = logging.getLogger(__name__)

SERVICE_PACKAGES = [
    "keystone==30.0.0",
    "nova==34.0.0",
    "neutron==29.0.0",
    "glance==33.0.0",
    "openstack-placement==16.0.0",
    "manila==23.0.1",
    "cinder==29.0.0",
    "octavia==19.0.0",
    "uwsgi",
    "PyMySQL",
]
DRIVERS_PKG = Path(__file__).parent / "drivers_pkg"

PROJECT = lanes.BASE_PROJECT
MEMBER_USER = lanes.BASE_MEMBER
ADMIN_USER = "admin"
IMAGE_NAME = "Featured-Ubuntu24"
EXTERNAL_NETWORK = "public"
EXTERNAL_CIDR = "172.24.4.0/24"
SHARE_TYPE = "cephfsnativetype"

# Jetstream2's sizes (shared/reference/jetstream2.md): name -> (vCPU, RAM GiB, root disk GB, GPU)
FLAVORS = {
    "m3.tiny": (1, 3, 20, None),
    "m3.small": (2, 6, 20, None),
    "m3.quad": (4, 15, 20, None),
    "m3.medium": (8, 30, 60, None),
    "m3.large": (16, 60, 60, None),
    "g3.small": (4, 15, 60, "NVIDIA A100 (1/5)"),
}
# Order matters: each group starts after the previous one is ready.
SERVICE_GROUPS = [
    [
        "glance-api",
        "placement-api",
        "neutron-api",
        "manila-api",
        "designate-central",
        "cinder-api",
        "octavia-api",
    ],
    [
        "nova-api",
        "nova-conductor",
        "nova-scheduler",
        "manila-scheduler",
        "manila-share",
        "designate-api",
        "cinder-scheduler",
        "cinder-volume",
        "octavia-worker",
    ],
    ["nova-compute", "designate-worker", "designate-producer", "designate-mdns"],
]
# Designate (DNS) in its own venv: its oslo libraries need not match the other services'.
DNS_PACKAGES = ["designate==23.0.0", "uwsgi", "PyMySQL"]


@dataclass
class UpReport:
    """What `up` did and how long each step took (seconds)."""

    steps: dict[str, float] = field(default_factory=dict)
    installed_apt: list[str] = field(default_factory=list)
    clouds_yaml: str = ""

    @property
    def total(self) -> float:
        return sum(self.steps.values())


class _Timer:
    """One stage of `up`: said when it starts and when it ends (with its time), and recorded."""

    def __init__(self, report: UpReport, name: str, say: Callable[[str], None]):
        self.report, self.name, self.say = report, name, say

    def __enter__(self):
        self.t0 = time.monotonic()
        self.say(f"{self.name} …")
        return self

    def __exit__(self, *exc):
        self.report.steps[self.name] = round(time.monotonic() - self.t0, 1)
        self.say(
            f"{self.name}: {'done' if exc[0] is None else 'FAILED'} in {self.report.steps[self.name]:.1f}s"
        )


def load_secrets(paths: SandboxPaths) -> dict[str, str]:
    """The sandbox's generated passwords, created on first use (file mode 0600)."""
    if paths.secrets.exists():
        return json.loads(paths.secrets.read_text())
    paths.home.mkdir(parents=True, exist_ok=True)
    values = {k: pysecrets.token_urlsafe(18) for k in ("db", "rabbit", "service", "admin", "member")}
    fd = os.open(paths.secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


# -- installs --------------------------------------------------------------------------------


def _drivers_digest() -> str:
    h = hashlib.sha256()
    for f in sorted(DRIVERS_PKG.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.relative_to(DRIVERS_PKG).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def install_services(paths: SandboxPaths) -> bool:
    """Create the services' venv and install the pinned services and our drivers; False if cached."""
    marker = paths.venv / ".stackspray-installed"
    wanted = json.dumps({"packages": SERVICE_PACKAGES, "drivers": _drivers_digest()})
    if marker.exists() and marker.read_text() == wanted:
        return False
    pip = [str(paths.bin("python")), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not paths.bin("python").exists():
        run([sys.executable, "-m", "venv", str(paths.venv)])
    run([*pip, *SERVICE_PACKAGES, "setuptools>=70.1", "wheel"], timeout=1800)
    with tempfile.TemporaryDirectory() as tmp:
        # Build from a copy so nothing is written into the source tree.
        shutil.copytree(DRIVERS_PKG, Path(tmp) / "drivers", ignore=shutil.ignore_patterns("__pycache__"))
        run([*pip, "--no-build-isolation", "--force-reinstall", "--no-deps", str(Path(tmp) / "drivers")])
    # Nova loads virt drivers only from the nova.virt package: re-export ours there.
    site = run(
        [str(paths.bin("python")), "-c", "import nova.virt, os; print(os.path.dirname(nova.virt.__file__))"]
    )
    Path(site.stdout.strip(), "stackspray_sandbox.py").write_text(
        "# stackspray sandbox only: nova's fake driver with boot-fault injection.\n"
        "from stackspray_sandbox_drivers.nova_fake import FaultInjectingFakeDriver  # noqa: F401\n"
    )
    marker.write_text(wanted)
    return True


def install_dns(paths: SandboxPaths) -> bool:
    """Designate's venv; False if cached."""
    marker = paths.dns_venv / ".stackspray-installed"
    wanted = json.dumps({"packages": DNS_PACKAGES})
    if marker.exists() and marker.read_text() == wanted:
        return False
    if not paths.dns_bin("python").exists():
        run([sys.executable, "-m", "venv", str(paths.dns_venv)])
    pip = [str(paths.dns_bin("python")), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, *DNS_PACKAGES, "setuptools>=70.1", "wheel"], timeout=1800)
    marker.write_text(wanted)
    return True


def _ensure_dns(paths: SandboxPaths, secrets: dict[str, str]) -> None:
    """The pool (designate-manage pool update, idempotent) and the project's zone."""
    run(
        [
            str(paths.dns_bin("designate-manage")),
            "--config-file",
            str(paths.etc / "designate/designate.conf"),
            "pool",
            "update",
            "--file",
            str(paths.etc / "designate/pools.yaml"),
        ],
        timeout=300,
    )
    _ensure_project_zone(secrets, 0)


def _ensure_project_zone(secrets: dict[str, str], lane: int) -> None:
    """The lane's project zone, made by the project's member as it exists in a Jetstream2
    allocation before any cluster."""
    member = member_connection(secrets, lane)
    name = lanes.zone(lane)
    zone = member.dns.find_zone(name)
    if zone is None:
        zone = member.dns.create_zone(name=name, email="dns-admin@sandbox.invalid", ttl=300)
    deadline = time.monotonic() + 60
    while member.dns.get_zone(zone).status != "ACTIVE":
        if time.monotonic() > deadline:
            raise processes.DaemonFailed(f"zone {name} did not turn ACTIVE (see logs/designate-worker.log)")
        time.sleep(0.5)


# -- the cloud -------------------------------------------------------------------------------


def _ensure_octavia_ca(paths: SandboxPaths) -> None:
    """A self-signed CA for Octavia's worker (made once; the key 0600)."""
    cert, key = services.octavia_ca(paths)
    if cert.exists() and key.exists():
        return
    key.parent.mkdir(parents=True, exist_ok=True)
    run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            "-subj", "/CN=stackspray sandbox octavia CA", "-keyout", str(key), "-out", str(cert),
        ]
    )  # fmt: skip
    key.chmod(0o600)


def _sync_databases(paths: SandboxPaths) -> None:
    def sync(item):
        name, commands = item
        marker = paths.state / f".db-synced-{name}"
        if marker.exists():
            return
        for cmd in commands:
            run(cmd, timeout=900)
        marker.touch()

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(sync, services.db_sync_commands(paths)))


def _keystone_setup(paths: SandboxPaths, secrets: dict[str, str]) -> None:
    conf = ["--config-file", str(paths.etc / "keystone/keystone.conf")]
    km = str(paths.bin("keystone-manage"))
    marker = paths.state / ".keystone-bootstrapped"
    if marker.exists():
        return
    run([km, *conf, "fernet_setup", "--keystone-user", "root", "--keystone-group", "root"])
    run([km, *conf, "credential_setup", "--keystone-user", "root", "--keystone-group", "root"])
    ks = APIS["keystone"]
    # The bootstrap password is passed through the environment, not argv.
    run(
        [
            km,
            *conf,
            "bootstrap",
            "--bootstrap-username",
            ADMIN_USER,
            "--bootstrap-project-name",
            "admin",
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-region-id",
            REGION,
            "--bootstrap-admin-url",
            ks.internal_url(),
            "--bootstrap-internal-url",
            ks.internal_url(),
            "--bootstrap-public-url",
            ks.public_url(),
        ],
        env={"OS_BOOTSTRAP_PASSWORD": secrets["admin"]},
    )
    marker.touch()


OPERATOR_CREDENTIALS = {
    "sandbox": ("sandbox-operator", True),
    "sandbox-restricted": ("sandbox-operator-restricted", False),
}


def member_connection(secrets: dict[str, str], lane: int = 0):
    """The lane's project member with its password, on the internal endpoints (bootstrap only)."""
    return openstack.connect(
        auth_url=APIS["keystone"].internal_url(),
        username=lanes.member(lane),
        password=secrets["member"],
        project_name=lanes.project(lane),
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
        interface="internal",
        load_yaml_config=False,
        load_envvars=False,
    )


def _ensure_operator_credentials(
    paths: SandboxPaths, secrets: dict[str, str], lane: int = 0
) -> dict[str, dict]:
    """The member's application credentials, as a Jetstream2 user makes them in Horizon: an
    unrestricted one (what stackspray needs: it creates each cluster's own credential) and a
    restricted one (for the test that it is refused). Kept 0600 in the sandbox home; made again
    when Keystone no longer has them."""
    folder = lanes.home(paths.home, lane)
    if lane:  # lane 0's folder is the home, which the rabbitmq user must be able to traverse
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    store = folder / "operator-credentials.json"
    member = member_connection(secrets, lane)
    user = member.current_user_id
    have = json.loads(store.read_text()) if store.exists() else {}
    existing = {c.name: c for c in member.identity.application_credentials(user=user)}
    out = {}
    for entry, (name, unrestricted) in OPERATOR_CREDENTIALS.items():
        known = have.get(entry)
        if known and name in existing and existing[name].id == known["id"]:
            out[entry] = known
            continue
        if name in existing:
            member.identity.delete_application_credential(user, existing[name].id)
        made = member.identity.create_application_credential(
            user=user,
            name=name,
            unrestricted=unrestricted,
            description="the sandbox operator's credential, as a Jetstream2 user makes one in Horizon",
        )
        out[entry] = {"id": made.id, "secret": made.secret}
    fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(out, fh)
    return out


def write_clouds_yaml(
    paths: SandboxPaths, secrets: dict[str, str], operator: dict[str, dict], lane: int = 0
) -> Path:
    """clouds.yaml (mode 0600): `sandbox`, an unrestricted application credential of the member,
    as Jetstream2 users authenticate (its command line takes application credentials only);
    `sandbox-restricted`, a restricted one; `sandbox-password`, the member's password; and
    `sandbox-admin`."""
    auth_url = APIS["keystone"].public_url()
    common = {"region_name": REGION, "interface": "public", "identity_api_version": 3}

    def app_credential(entry: str) -> dict:
        return {
            "auth_type": "v3applicationcredential",
            "auth": {
                "auth_url": auth_url,
                "application_credential_id": operator[entry]["id"],
                "application_credential_secret": operator[entry]["secret"],
            },
            **common,
        }

    data = {
        "clouds": {
            "sandbox": app_credential("sandbox"),
            "sandbox-restricted": app_credential("sandbox-restricted"),
            "sandbox-password": {
                "auth": {
                    "auth_url": auth_url,
                    "username": lanes.member(lane),
                    "password": secrets["member"],
                    "project_name": lanes.project(lane),
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                **common,
            },
            "sandbox-admin": {
                "auth": {
                    "auth_url": auth_url,
                    "username": ADMIN_USER,
                    "password": secrets["admin"],
                    "project_name": "admin",
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                **common,
            },
        }
    }
    target = lanes.home(paths.home, lane) / "clouds.yaml"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    return target


def admin_connection(paths: SandboxPaths, *, internal: bool = False):
    """An openstacksdk connection as the sandbox admin (internal=True bypasses the fault proxy)."""
    secrets = load_secrets(paths)
    auth_url = APIS["keystone"].internal_url() if internal else APIS["keystone"].public_url()
    return openstack.connect(
        auth_url=auth_url,
        username=ADMIN_USER,
        password=secrets["admin"],
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=REGION,
        interface="internal" if internal else "public",
        load_yaml_config=False,
        load_envvars=False,
    )


def _ensure_identity(conn, secrets: dict[str, str]) -> None:
    idn = conn.identity
    roles = {r.name: r for r in idn.roles()}
    for name in ("service", "member", "reader"):
        if name not in roles:
            roles[name] = idn.create_role(name=name)
    default = idn.find_domain("default") or idn.find_domain("Default")
    projects = {}
    for pname in ("service", PROJECT):
        projects[pname] = idn.find_project(pname, domain_id=default.id) or idn.create_project(
            name=pname, domain_id=default.id, description="stackspray sandbox"
        )

    def ensure_user(name: str, password: str, project, role_names):
        user = idn.find_user(name, domain_id=default.id)
        if user is None:
            user = idn.create_user(
                name=name, password=password, domain_id=default.id, default_project_id=project.id
            )
        for rn in role_names:
            idn.assign_project_role_to_user(project, user, roles[rn])

    for svc in SERVICE_USERS:
        ensure_user(svc, secrets["service"], projects["service"], ["admin", "service"])
    ensure_user(MEMBER_USER, secrets["member"], projects[PROJECT], ["member"])

    existing = {(s.name, s.type): s for s in idn.services()}
    endpoints = {(e.service_id, e.interface): e for e in idn.endpoints()}
    # Keystone's own endpoints came from its bootstrap; kept at the same addresses here.
    for name, stype in [("keystone", "identity"), *CATALOG]:
        svc = existing.get((name, stype)) or idn.create_service(name=name, type=stype, is_enabled=True)
        api = APIS[name]
        for interface, url in (
            ("public", api.public_url()),
            ("internal", api.internal_url()),
            ("admin", api.internal_url()),
        ):
            found = endpoints.get((svc.id, interface))
            if found is None:
                idn.create_endpoint(service_id=svc.id, interface=interface, url=url, region_id=REGION)
            elif found.url != url:  # a sandbox made before the public address moved
                idn.update_endpoint(found, url=url)


def _ensure_compute_resources(conn, paths: SandboxPaths) -> None:
    have = {f.name for f in conn.compute.flavors(is_public=None)}
    for name, (vcpus, ram_gib, disk, gpu) in FLAVORS.items():
        if name in have:
            continue
        flavor = conn.compute.create_flavor(
            name=name, vcpus=vcpus, ram=ram_gib * 1024, disk=disk, is_public=True
        )
        if gpu:
            # Marks the GPU; informational only in the sandbox (no GPU is scheduled here).
            conn.compute.create_flavor_extra_specs(flavor, {"gpu:model": gpu, "gpu:count": "1"})
    if not conn.image.find_image(IMAGE_NAME):
        img = paths.state / "featured-ubuntu24.raw"
        with open(img, "wb") as fh:
            fh.truncate(1024 * 1024)
        conn.image.create_image(
            name=IMAGE_NAME,
            filename=str(img),
            disk_format="raw",
            container_format="bare",
            visibility="public",
            os_distro="ubuntu",
            os_version="24.04",
            properties={"os_default_user": "ubuntu", "stackspray_sandbox": "true"},
        )


def _ensure_network_resources(conn) -> None:
    # Seen once on a warm start: neutron-api's first answers listed no network and refused the
    # admin's create by policy (403) a second later; a moment after, both were right. The
    # external network exists from the first up on, so a 403 here means "not ready yet".
    deadline = time.monotonic() + 30
    while True:
        try:
            net = conn.network.find_network(EXTERNAL_NETWORK)
            if net is None:
                net = conn.network.create_network(
                    name=EXTERNAL_NETWORK,
                    is_router_external=True,
                    is_shared=False,
                    provider_network_type="flat",
                    provider_physical_network="public",
                )
            break
        except openstack.exceptions.ForbiddenException:
            if time.monotonic() > deadline:
                raise
            log.info("neutron refused the admin's network call (starting up?): trying again")
            time.sleep(1)
    if not list(conn.network.subnets(network_id=net.id)):
        conn.network.create_subnet(
            network_id=net.id,
            name=f"{EXTERNAL_NETWORK}-subnet",
            ip_version=4,
            cidr=EXTERNAL_CIDR,
            gateway_ip="172.24.4.1",
            is_dhcp_enabled=False,
            allocation_pools=[{"start": "172.24.4.10", "end": "172.24.4.250"}],
        )


# What `openstack network auto allocated topology create` leaves in a Jetstream2 project (Neutron's
# auto_allocate service plugin: these names), created here directly for the sandbox project.
AUTO_NETWORK = "auto_allocated_network"
AUTO_SUBNET = "auto_allocated_subnet_v4"
AUTO_ROUTER = "auto_allocated_router"
AUTO_CIDR = "10.1.0.0/24"


def ensure_auto_allocated_topology(conn, lane: int = 0) -> None:
    """The lane's project's own network, subnet and router on `public` — the router that holds
    the project's router quota of 1, as on a fresh Jetstream2 allocation."""
    net_api = conn.network
    project = conn.identity.find_project(lanes.project(lane))
    public = net_api.find_network(EXTERNAL_NETWORK)
    net = next(
        iter(net_api.networks(name=AUTO_NETWORK, project_id=project.id)), None
    ) or net_api.create_network(name=AUTO_NETWORK, project_id=project.id)
    sub = next(iter(net_api.subnets(name=AUTO_SUBNET, network_id=net.id)), None) or net_api.create_subnet(
        name=AUTO_SUBNET,
        network_id=net.id,
        project_id=project.id,
        ip_version=4,
        cidr=lanes.cidr(AUTO_CIDR, lane),
    )
    router = next(iter(net_api.routers(name=AUTO_ROUTER, project_id=project.id)), None)
    if router is None:
        router = net_api.create_router(
            name=AUTO_ROUTER, project_id=project.id, external_gateway_info={"network_id": public.id}
        )
    ifaces = net_api.ports(device_id=router.id, device_owner="network:router_interface")
    if not any(ip["subnet_id"] == sub.id for p in ifaces for ip in p.fixed_ips):
        net_api.add_interface_to_router(router, subnet=sub.id)


def _ensure_share_type(conn) -> None:
    sfs = conn.shared_file_system
    resp = sfs.get("/types", microversion="2.46")
    resp.raise_for_status()
    if any(t["name"] == SHARE_TYPE for t in resp.json()["share_types"]):
        return
    body = {
        "share_type": {
            "name": SHARE_TYPE,
            "share_type_access:is_public": True,
            "extra_specs": {"driver_handles_share_servers": False},
        }
    }
    sfs.post("/types", json=body, microversion="2.46").raise_for_status()


def _discover_compute(paths: SandboxPaths, conn, timeout: float = 120) -> None:
    """Wait for nova-compute to register, then map it into cell1 (discover_hosts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up = [s for s in conn.compute.services() if s.binary == "nova-compute" and s.state == "up"]
        if up:
            break
        time.sleep(1)
    else:
        raise processes.DaemonFailed(
            "nova-compute did not report up; its log ends:\n" + processes.log_tail(paths, "nova-compute")
        )
    run(
        [
            str(paths.bin("nova-manage")),
            "--config-file",
            str(paths.etc / "nova/nova.conf"),
            "cell_v2",
            "discover_hosts",
        ]
    )
    # Placement must know the compute node before the first boot.
    while time.monotonic() < deadline:
        if list(conn.placement.resource_providers()):
            return
        time.sleep(1)
    raise processes.DaemonFailed("nova-compute did not register a resource provider in placement")


def helper_daemons(paths: SandboxPaths) -> dict[str, processes.Daemon]:
    """The fault proxy and the node agent: our own processes, run by this Python."""
    env = {"STACKSPRAY_SANDBOX_HOME": str(paths.home), "PYTHONUNBUFFERED": "1"}
    # Both packages as this process imports them (a checkout's, when installed editable).
    src = os.pathsep.join(
        dict.fromkeys(str(Path(m.__file__).parent.parent) for m in (stackspray, stackspray_sandbox))
    )
    env["PYTHONPATH"] = src + (os.pathsep + os.environ["PYTHONPATH"] if "PYTHONPATH" in os.environ else "")
    return {
        "fault-proxy": processes.Daemon(
            "fault-proxy",
            [sys.executable, "-m", "stackspray_sandbox.faultproxy"],
            env,
            ready_url=f"http://{HOST}:{services.FAULT_CONTROL_PORT}/faults",
        ),
        "node-agent": processes.Daemon(
            "node-agent",
            [sys.executable, "-m", "stackspray_sandbox.nodeagent"],
            env,
        ),
    }


def up(paths: SandboxPaths | None = None, progress: Callable[[str], None] | None = None) -> UpReport:
    """Install what is missing, start what is not running, bootstrap the cloud. Idempotent.

    Each stage is said as it starts and ends (`progress`, e.g. the terminal) and written to
    `<state>/logs/up-<UTC>.log`, so a first run's long installs can be told from a hang."""
    paths = paths or SandboxPaths.default()
    paths.home.mkdir(parents=True, exist_ok=True)
    # Owner only — but for the traversal bit start_rabbitmq adds: rabbitmq-server runs as its own
    # user below state/, and taking the bit away under a running broker stops it (EACCES in Mnesia).
    paths.home.chmod(0o700 | (paths.home.stat().st_mode & 0o001))
    paths.logs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    handler = logging.FileHandler(paths.logs / f"up-{stamp}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    t0 = time.monotonic()
    lock = threading.Lock()

    def say(message: str) -> None:
        line = f"[{time.monotonic() - t0:6.1f}s] {message}"
        with lock:
            log.info(line)
            if progress is not None:
                progress(line)

    try:
        return _up(paths, say)
    finally:
        log.removeHandler(handler)
        handler.close()


def _up(paths: SandboxPaths, say: Callable[[str], None]) -> UpReport:
    report = UpReport()
    for name, limit in kernel.raise_limits(paths).items():
        if "error" in limit:
            say(f"WARNING: {limit['error']}: fewer node hosts will boot")
        elif limit["now"] != limit["was"]:
            say(f"kernel: {name} {limit['was']} -> {limit['now']} (restored by sandbox.down)")
    with _Timer(report, "installs (apt, services venv, node base image)", say):
        # pip needs nothing from apt; debootstrap does: two lanes side by side.
        def services_lane() -> None:
            say("pip: the OpenStack services' venv (first time: a few minutes; cached afterwards)")
            if install_services(paths):
                say("pip: services installed")
            if install_dns(paths):
                say("pip: designate installed")
            if not kube_schemas.definitions_file(paths.home).exists():
                say("pip: the Kubernetes 1.35 object definitions for the API stand-in (kubernetes-validate)")
            kube_schemas.ensure(paths.home)

        def apt_then_base() -> None:
            missing = infra.missing_apt_packages()
            if missing:
                say(f"apt: installing {', '.join(missing)}")
            report.installed_apt = infra.install_apt_packages()
            if nodeimage.base_ready(paths.base_image):
                nodeimage.build_base(paths.base_image)
                return
            say("node base image: debootstrap of Debian 12 (first time: a few minutes)")
            started = time.monotonic()
            nodeimage.build_base(paths.base_image)
            say(f"node base image: built in {time.monotonic() - started:.1f}s")

        with ThreadPoolExecutor(max_workers=2) as pool:
            lanes = [pool.submit(services_lane), pool.submit(apt_then_base)]
            for lane in lanes:
                lane.result()
        # Debian's rados/rbd bindings into the services' venv: after both lanes (apt brings them).
        ceph.link_bindings(paths.bin("python"))
    secrets = load_secrets(paths)
    for d in services.state_dirs(paths):
        d.mkdir(parents=True, exist_ok=True)
    services.write_configs(paths, secrets, ceph.fsid(paths))
    _ensure_octavia_ca(paths)
    with _Timer(report, "mariadb + rabbitmq + ceph", say):
        with ThreadPoolExecutor(max_workers=3) as pool:
            started = [
                pool.submit(infra.start_mariadb, paths, secrets),
                pool.submit(infra.start_rabbitmq, paths, secrets),
                pool.submit(ceph.start_cluster, paths),
            ]
            for each in started:
                each.result()
    with _Timer(report, "database schemas", say):
        _sync_databases(paths)
    daemons = services.daemons(paths)
    helpers = helper_daemons(paths)
    with _Timer(report, "keystone", say):
        _keystone_setup(paths, secrets)
        nodehost.ensure_public_address(services.PUBLIC_HOST)
        processes.start(paths, daemons["keystone-api"])
        processes.start(paths, helpers["fault-proxy"])
        processes.wait_ready(paths, daemons["keystone-api"])
        processes.wait_ready(paths, helpers["fault-proxy"])
        conn = admin_connection(paths, internal=True)
        _ensure_identity(conn, secrets)
    with _Timer(report, "openstack services", say):
        for group in SERVICE_GROUPS:
            for name in group:
                processes.start(paths, daemons[name])
            for name in group:
                processes.wait_ready(paths, daemons[name], timeout=180)
        conn = admin_connection(paths, internal=True)
        _discover_compute(paths, conn)
    with _Timer(report, "cloud resources", say):
        _ensure_compute_resources(conn, paths)
        _ensure_network_resources(conn)
        ensure_auto_allocated_topology(conn)
        _ensure_share_type(conn)
        _wait_share_service(conn)
        _ensure_dns(paths, secrets)
    with _Timer(report, "node agent", say):
        processes.start(paths, helpers["node-agent"])
        processes.wait_ready(paths, helpers["node-agent"])
    report.clouds_yaml = str(write_clouds_yaml(paths, secrets, _ensure_operator_credentials(paths, secrets)))
    demo_key(paths)
    return report


def ensure_lane(paths: SandboxPaths, lane: int) -> Path:
    """Lane `lane` (>= 1) of a running sandbox (lanes.py): its project, member, router, zone,
    application credentials and clouds.yaml, made as `up` makes lane 0's. Idempotent; returns
    the lane's clouds.yaml."""
    if lane == 0:
        return lanes.home(paths.home, 0) / "clouds.yaml"
    secrets = load_secrets(paths)
    conn = admin_connection(paths, internal=True)
    idn = conn.identity
    default = idn.find_domain("default") or idn.find_domain("Default")
    name = lanes.project(lane)
    project = idn.find_project(name, domain_id=default.id) or idn.create_project(
        name=name, domain_id=default.id, description=f"stackspray sandbox, lane {lane}"
    )
    user = idn.find_user(lanes.member(lane), domain_id=default.id) or idn.create_user(
        name=lanes.member(lane),
        password=secrets["member"],
        domain_id=default.id,
        default_project_id=project.id,
    )
    idn.assign_project_role_to_user(project, user, idn.find_role("member"))
    ensure_auto_allocated_topology(conn, lane)
    _ensure_project_zone(secrets, lane)
    return write_clouds_yaml(paths, secrets, _ensure_operator_credentials(paths, secrets, lane), lane)


def demo_key(paths: SandboxPaths) -> Path:
    """An SSH key for trying clusters on the sandbox (clusters/sandbox-demo.yaml uses it)."""
    key = paths.home / "demo_id_ed25519"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stackspray-sandbox-demo", "-f", str(key)])
    return key


def _wait_share_service(conn, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = conn.shared_file_system.get("/services", microversion="2.7")
        if resp.ok and any(
            s["binary"] == "manila-share" and s["state"] == "up" for s in resp.json()["services"]
        ):
            return
        time.sleep(1)
    raise processes.DaemonFailed("manila-share did not report up (see logs/manila-share.log)")


# Stopped tier by tier (each tier in parallel): nodes first, databases last.
STOP_TIERS = [
    ["node-agent"],
    [
        "nova-compute",
        "manila-share",
        "manila-scheduler",
        "nova-scheduler",
        "nova-conductor",
        "designate-worker",
        "designate-producer",
        "designate-mdns",
        "designate-central",
        "cinder-volume",
        "cinder-scheduler",
        "octavia-worker",
    ],
    [
        "octavia-api",
        "cinder-api",
        "manila-api",
        "nova-api",
        "neutron-api",
        "placement-api",
        "glance-api",
        "designate-api",
        "fault-proxy",
    ],
    ["keystone-api"],
    ["ceph-mgr", "ceph-osd"],
    ["rabbitmq", "mariadb", "ceph-mon"],
    ["epmd"],
]
ALL_DAEMONS = [name for tier in STOP_TIERS for name in tier]


def down(paths: SandboxPaths | None = None) -> list[str]:
    """Stop everything the sandbox started (node hosts first); return the names that were running.

    State (databases, node disks) is kept for a warm restart; nothing is left running, mounted
    or attached.
    """

    paths = paths or SandboxPaths.default()

    def stop(name: str) -> bool:
        # uwsgi shuts down at once on SIGINT; on SIGTERM some apps (nova, manila) hang.
        sig = signal.SIGINT if name.endswith("-api") else signal.SIGTERM
        return processes.stop(paths, name, timeout=60 if name == "node-agent" else 20, sig=sig)

    stopped = []
    with ThreadPoolExecutor(max_workers=6) as pool:
        for tier in STOP_TIERS:
            stopped += [name for name, was in zip(tier, pool.map(stop, tier), strict=True) if was]
    # The agent stops its nodes on SIGTERM; anything it could not (it was killed) goes here.
    nodehost.cleanup_all(paths)
    kernel.restore_limits(paths)
    return stopped


def leftovers(paths: SandboxPaths | None = None) -> dict[str, list[str]]:
    """What of the sandbox still runs or is attached: processes, namespaces, links, mounts."""

    paths = paths or SandboxPaths.default()
    found: dict[str, list[str]] = {"processes": [], **nodehost.host_leftovers(paths)}
    for name in ALL_DAEMONS:
        pid = processes.running_pid(paths, name)
        if pid:
            found["processes"].append(f"{name} (pid {pid})")
    return {k: v for k, v in found.items() if v}


def status(paths: SandboxPaths | None = None) -> dict:
    """Each daemon's PID and readiness, the node hosts, and where clouds.yaml is."""

    paths = paths or SandboxPaths.default()
    daemons = (
        {**services.daemons(paths), **helper_daemons(paths), **ceph.daemons(paths)}
        if paths.venv.exists()
        else {}
    )
    out = {"home": str(paths.home), "clouds_yaml": str(paths.clouds_yaml), "daemons": {}, "nodes": []}
    for name in reversed(ALL_DAEMONS):
        pid = processes.running_pid(paths, name)
        d = daemons.get(name)
        ready = bool(pid) and (d is None or d.ready_url is None or processes.http_ready(d.ready_url))
        out["daemons"][name] = {"pid": pid, "ready": ready}
    out["nodes"] = nodehost.list_nodes(paths)
    out["kernel"] = kernel.status(paths)
    out["running"] = all(v["pid"] for v in out["daemons"].values())
    return out


def resident_memory_kib(paths: SandboxPaths | None = None) -> int:
    """Resident memory (KiB) of every process of the sandbox (daemons, their children, nodes)."""
    paths = paths or SandboxPaths.default()
    pgids = {processes.read_pid(paths, n) for n in ALL_DAEMONS} - {None}
    total = 0
    for pid in _pids_in_groups_and_descendants(pgids):
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def _pids_in_groups_and_descendants(pgids: set[int]) -> set[int]:
    table = processes.process_table()
    chosen = {p.pid for p in table if p.pgid in pgids}
    changed = True
    while changed:
        changed = False
        for p in table:
            if p.ppid in chosen and p.pid not in chosen:
                chosen.add(p.pid)
                changed = True
    return chosen
