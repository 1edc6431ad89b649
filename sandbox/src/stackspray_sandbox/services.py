"""Configuration of the sandbox's upstream OpenStack services and the daemons that run them.

Each API is served twice: the service itself on loopback at its *internal* port (used by the
services among themselves) and the fault-injection proxy on the *public* port the catalog
gives to clients, so a test can make client calls fail without touching the services' own
traffic. The public endpoints are at PUBLIC_HOST, an address the sandbox adds to this machine's
loopback (nodehost.ensure_public_address): this machine reaches it, and so does every
node host, through its default route to the network's bridge — as Jetstream2's VMs reach its
public API (the cloud controller, Cinder CSI and stackspray's autoscaler agent on a node call
it). Settings that matter are commented with why (see shared/reference/sandbox-recipe.md).
"""

from __future__ import annotations

import configparser
import io
from dataclasses import dataclass
from pathlib import Path

import yaml

from .paths import SandboxPaths
from .processes import Daemon

HOST = "127.0.0.1"
# RFC 2544's benchmarking range: never routed on the internet, so it cannot collide with a real
# address this machine or a node talks to.
PUBLIC_HOST = "198.18.0.1"
REGION = "RegionOne"
DB_PORT = 3307
RABBIT_PORT = 5672
FAULT_CONTROL_PORT = 7999


@dataclass(frozen=True)
class Api:
    name: str  # service name, also the DB name and the service user
    service_type: str
    internal_port: int
    public_port: int
    path: str = ""  # version path in the catalog

    def internal_url(self) -> str:
        return f"http://{HOST}:{self.internal_port}{self.path}"

    def public_url(self) -> str:
        return f"http://{PUBLIC_HOST}:{self.public_port}{self.path}"


APIS = {
    "keystone": Api("keystone", "identity", 35357, 5000, "/v3"),
    "glance": Api("glance", "image", 39292, 9292),
    "placement": Api("placement", "placement", 38778, 8778),
    "neutron": Api("neutron", "network", 39696, 9696),
    "nova": Api("nova", "compute", 38774, 8774, "/v2.1"),
    "manila": Api("manila", "shared-file-system", 38786, 8786, "/v2"),
    "designate": Api("designate", "dns", 39001, 9001),
    # The project in the path, as OpenStack-Ansible and Kolla register Cinder, and as the access
    # rules for Cinder CSI (stackspray.access_rules: /v3/*/volumes) expect.
    "cinder": Api("cinder", "block-storage", 38776, 8776, "/v3/%(project_id)s"),
    # Unversioned, as Octavia is registered (clients discover /v2 from the root).
    "octavia": Api("octavia", "load-balancer", 39876, 9876),
}
# Designate's mini-DNS: serves the zones from Designate's database (zone transfers and queries).
# The sandbox's pool uses the `fake` backend (no DNS server is configured) and names mdns itself
# as the pool's nameserver and NOTIFY target, so the worker's serial polls are answered and zones
# and records turn ACTIVE as on a cloud with real nameservers (designate/worker/tasks/zone.py).
MDNS_PORT = 5354
DEFAULT_POOL_ID = "794ccc2c-d751-44fe-b57f-8894c9f5c842"  # designate's default_pool_id
# The project's zone, as Jetstream2 gives each allocation one under projects.jetstream-cloud.org.
PROJECT_ZONE = "sandbox.projects.jetstream-cloud.org."
# Services with a catalog entry besides keystone's own (keystone-manage bootstrap makes that).
CATALOG = [
    ("glance", "image"),
    ("placement", "placement"),
    ("neutron", "network"),
    ("nova", "compute"),
    ("manila", "shared-file-system"),
    ("manila", "sharev2"),  # python-manilaclient looks for this type
    ("designate", "dns"),
    # Cinder under the official type and the legacy one older clients (and Nova's default
    # catalog_info) look up.
    ("cinder", "block-storage"),
    ("cinder", "volumev3"),
    ("octavia", "load-balancer"),
]
DATABASES = [
    "keystone",
    "glance",
    "placement",
    "neutron",
    "nova",
    "nova_api",
    "nova_cell0",
    "manila",
    "designate",
    "cinder",
    "octavia",
]
SERVICE_USERS = ["glance", "placement", "neutron", "nova", "manila", "designate", "cinder", "octavia"]

# Jetstream2's research-allocation defaults (shared/reference/jetstream2.md): 150 cores,
# 585 GB RAM, 10 floating IPs. The instance count is not published; 100 leaves room for the
# 20-worker benchmark.
QUOTA_CORES = 150
QUOTA_RAM_MB = 585 * 1024
QUOTA_INSTANCES = 100
QUOTA_FLOATING_IPS = 10
QUOTA_ROUTERS = 1
# Volume storage: Jetstream2's 1 TB default (shared/reference/jetstream2.md); the volume count is
# Cinder's own default (cinder/quota.py quota_volumes), which Jetstream2 does not publish.
QUOTA_VOLUME_GB = 1000
QUOTA_VOLUMES = 10
QUOTA_VOLUME_SNAPSHOTS = 10


def db_url(name: str, password: str) -> str:
    user = "nova" if name.startswith("nova") else name
    return f"mysql+pymysql://{user}:{password}@{HOST}:{DB_PORT}/{name}?charset=utf8"


def render_ini(sections: dict[str, dict[str, object]]) -> str:
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # keep option case
    for section, options in sections.items():
        if section != "DEFAULT":
            parser.add_section(section)
        for key, value in options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            parser.set(section, key, str(value))
    buf = io.StringIO()
    parser.write(buf)
    return buf.getvalue()


def _authtoken(secrets: dict[str, str], user: str) -> dict[str, object]:
    # service_type: keystonemiddleware checks an application credential's access rules against
    # each request only when it knows its service's type; without it, it refuses every token of
    # such a credential (auth_token/__init__.py validate_allowed_request). Set, so the sandbox
    # enforces access rules as a cloud that supports them does.
    api = next(a for a in APIS.values() if a.name == user)
    return {
        "service_type": api.service_type,
        "www_authenticate_uri": APIS["keystone"].public_url().removesuffix("/v3"),
        "auth_url": APIS["keystone"].internal_url(),
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": secrets["service"],
        "region_name": REGION,
        "service_token_roles_required": True,
    }


def _service_auth(secrets: dict[str, str], user: str = "nova") -> dict[str, object]:
    return {
        "auth_type": "password",
        "auth_url": APIS["keystone"].internal_url(),
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": secrets["service"],
        "region_name": REGION,
        "valid_interfaces": "internal",
    }


def configs(paths: SandboxPaths, secrets: dict[str, str], ceph_fsid: str = "") -> dict[str, str]:
    """Every config file of the cloud, relative to ``paths.etc``, with its text."""
    st = paths.state
    transport = f"rabbit://stackspray:{secrets['rabbit']}@{HOST}:{RABBIT_PORT}/"
    locks = {"lock_path": str(st / "locks")}
    out: dict[str, str] = {}

    out["keystone/keystone.conf"] = render_ini(
        {
            "DEFAULT": {},
            "database": {"connection": db_url("keystone", secrets["db"])},
            "token": {"provider": "fernet"},
            "fernet_tokens": {"key_repository": str(st / "keystone" / "fernet-keys")},
            "credential": {"key_repository": str(st / "keystone" / "credential-keys")},
            # Without a cache every authenticated request costs ~0.5 s of token validation.
            "cache": {"enabled": True, "backend": "oslo_cache.dict"},
        }
    )

    out["glance/glance-api.conf"] = render_ini(
        {
            "DEFAULT": {"enabled_backends": "fs:file", "workers": 1},
            "database": {"connection": db_url("glance", secrets["db"])},
            "glance_store": {"default_backend": "fs"},
            "fs": {"filesystem_store_datadir": str(st / "glance" / "images")},
            "os_glance_staging_store": {"filesystem_store_datadir": str(st / "glance" / "staging")},
            "os_glance_tasks_store": {"filesystem_store_datadir": str(st / "glance" / "tasks")},
            "keystone_authtoken": _authtoken(secrets, "glance"),
            "paste_deploy": {"flavor": "keystone"},
            "oslo_concurrency": locks,
        }
    )
    out["glance/glance-api-paste.ini"] = (paths.venv / "etc/glance/glance-api-paste.ini").read_text()

    out["placement/placement.conf"] = render_ini(
        {
            "placement_database": {"connection": db_url("placement", secrets["db"])},
            "api": {"auth_strategy": "keystone"},
            "keystone_authtoken": _authtoken(secrets, "placement"),
        }
    )

    out["neutron/neutron.conf"] = render_ini(
        {
            "DEFAULT": {
                "core_plugin": "ml2",
                "service_plugins": "router",
                "auth_strategy": "keystone",
                "transport_url": transport,
                # No agents run, so no port ever reports status to Nova; Nova does not wait
                # for it either (vif_plugging_is_fatal = false).
                "notify_nova_on_port_status_changes": False,
                "notify_nova_on_port_data_changes": False,
                "api_workers": 1,
                "rpc_workers": 0,
                "state_path": str(st / "neutron"),
            },
            "database": {"connection": db_url("neutron", secrets["db"])},
            "keystone_authtoken": _authtoken(secrets, "neutron"),
            "nova": _service_auth(secrets, "neutron"),
            # Jetstream2's project defaults: 10 floating IPs, ONE router (general/policies.md,
            # "Router Quota Policies"), which the auto-allocated topology already uses.
            "quotas": {"quota_floatingip": QUOTA_FLOATING_IPS, "quota_router": QUOTA_ROUTERS},
            "oslo_concurrency": locks,
            "oslo_messaging_notifications": {"driver": "noop"},
        }
    )
    out["neutron/plugins/ml2/ml2_conf.ini"] = render_ini(
        {
            "ml2": {
                "type_drivers": "flat,vxlan",
                "tenant_network_types": "vxlan",
                # Our sandbox-only driver binds every port (no agents run here).
                "mechanism_drivers": "stackspray_sandbox",
                "extension_drivers": "port_security",
            },
            "ml2_type_flat": {"flat_networks": "public"},
            "ml2_type_vxlan": {"vni_ranges": "1:1000"},
        }
    )
    out["neutron/api-paste.ini"] = (paths.venv / "etc/neutron/api-paste.ini").read_text()

    nova_common: dict[str, dict[str, object]] = {
        "DEFAULT": {
            "transport_url": transport,
            "compute_driver": "stackspray_sandbox.FaultInjectingFakeDriver",
            "host": "sandbox-compute",
            "my_ip": HOST,
            "state_path": str(st / "nova"),
            "instances_path": str(st / "nova" / "instances"),
            # Nothing will ever plug a VIF; do not wait for Neutron's event.
            "vif_plugging_is_fatal": False,
            "vif_plugging_timeout": 0,
            # Offload right after shelve, as Jetstream2 does: SHELVED_OFFLOADED costs 0 SU.
            "shelved_offload_time": 0,
            # Fake instances live in nova-compute's memory and vanish on its restart; without
            # this, a warm restart of the sandbox would power every server off.
            "sync_power_state_interval": -1,
            "osapi_compute_workers": 1,
            "metadata_workers": 1,
        },
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": _authtoken(secrets, "nova"),
        "placement": _service_auth(secrets, "nova"),
        "neutron": _service_auth(secrets, "nova"),
        "glance": {"valid_interfaces": "internal", "region_name": REGION},
        # A member's server delete fails without this: Neutron's policy on compute-owned ports.
        "service_user": {"send_service_user_token": True, **_service_auth(secrets, "nova")},
        "conductor": {"workers": 1},
        "scheduler": {"workers": 1, "max_attempts": 1},
        "vnc": {"enabled": False},
        "spice": {"enabled": False},
        "serial_console": {"enabled": False},
        "oslo_concurrency": locks,
        "oslo_messaging_notifications": {"driver": "noop"},
        "quota": {"cores": QUOTA_CORES, "ram": QUOTA_RAM_MB, "instances": QUOTA_INSTANCES},
        "filter_scheduler": {"track_instance_changes": False},
        "cinder": {"os_region_name": REGION, **_service_auth(secrets, "nova")},
    }
    nova_full = dict(nova_common)
    nova_full["database"] = {"connection": db_url("nova", secrets["db"])}
    nova_full["api_database"] = {"connection": db_url("nova_api", secrets["db"])}
    out["nova/nova.conf"] = render_ini(nova_full)
    # nova-compute must not have database access (it is refused at start when it does).
    out["nova/nova-compute.conf"] = render_ini(nova_common)
    out["nova/api-paste.ini"] = (paths.venv / "etc/nova/api-paste.ini").read_text()

    out["manila/manila.conf"] = render_ini(
        {
            "DEFAULT": {
                "transport_url": transport,
                "auth_strategy": "keystone",
                "enabled_share_backends": "cephfs",
                "enabled_share_protocols": "NFS,CIFS,CEPHFS",
                "default_share_type": "cephfsnativetype",
                "state_path": str(st / "manila"),
                "api_paste_config": str(paths.etc / "manila" / "api-paste.ini"),
                "osapi_share_workers": 1,
                "host": "sandbox-share",
            },
            "database": {"connection": db_url("manila", secrets["db"])},
            "keystone_authtoken": _authtoken(secrets, "manila"),
            "oslo_concurrency": locks,
            "oslo_messaging_notifications": {"driver": "noop"},
            "cephfs": {
                "share_driver": "stackspray_sandbox_drivers.manila_cephfs.CephFSDummyDriver",
                "driver_handles_share_servers": False,
                "share_backend_name": "cephfs",
                "dummy_driver_default_driver_method_delay": 0,
            },
        }
    )
    out["manila/api-paste.ini"] = (paths.venv / "etc/manila/api-paste.ini").read_text()

    cinder_conf = paths.etc / "cinder" / "cinder.conf"
    out["cinder/cinder.conf"] = render_ini(
        {
            "DEFAULT": {
                "transport_url": transport,
                "auth_strategy": "keystone",
                "enabled_backends": "ceph",
                "state_path": str(st / "cinder"),
                "api_paste_config": str(paths.etc / "cinder" / "api-paste.ini"),
                "osapi_volume_workers": 1,
                "host": "sandbox-volume",
                "glance_api_servers": APIS["glance"].internal_url(),
                "quota_volumes": QUOTA_VOLUMES,
                "quota_gigabytes": QUOTA_VOLUME_GB,
                "quota_snapshots": QUOTA_VOLUME_SNAPSHOTS,
                # Volumes from an image are converted to raw in this folder before `rbd import`.
                "image_conversion_dir": str(st / "cinder" / "conversion"),
                # Which list filters the API accepts (`?name=` among them); the default path is
                # /etc/cinder, where a pip install puts nothing.
                "resource_query_filters_file": str(paths.venv / "etc/cinder/resource_filters.json"),
            },
            "database": {"connection": db_url("cinder", secrets["db"])},
            "keystone_authtoken": _authtoken(secrets, "cinder"),
            "nova": _service_auth(secrets, "cinder"),
            "service_user": {"send_service_user_token": True, **_service_auth(secrets, "cinder")},
            "oslo_concurrency": locks,
            "oslo_messaging_notifications": {"driver": "noop"},
            # The services run as root here, with no sudo/rootwrap set up: privsep's helper is
            # started directly (oslo.privsep's helper_command), as devstack does when it has no
            # sudoers for the service.
            **{
                section: {"helper_command": f"{paths.bin('privsep-helper')} --config-file {cinder_conf}"}
                for section in ("cinder_sys_admin", "privsep_osbrick")
            },
            # Ceph's rbd-openstack guide, as Jetstream2 runs its volumes (ceph.py says why RBD).
            "ceph": {
                "volume_driver": "cinder.volume.drivers.rbd.RBDDriver",
                "volume_backend_name": "ceph",
                "rbd_pool": "volumes",
                "rbd_user": "cinder",
                "rbd_ceph_conf": str(paths.etc / "ceph" / "ceph.conf"),
                "rbd_secret_uuid": ceph_fsid,
                "rbd_flatten_volume_from_snapshot": False,
            },
        }
    )
    out["cinder/api-paste.ini"] = (paths.venv / "etc/cinder/api-paste.ini").read_text()

    out["octavia/octavia.conf"] = render_ini(
        {
            "DEFAULT": {"transport_url": transport},
            "api_settings": {
                "auth_strategy": "keystone",
                "enabled_provider_drivers": "amphora:The Octavia Amphora driver.,"
                "octavia:Deprecated alias of the Octavia Amphora driver.",
                "default_provider_driver": "amphora",
            },
            "database": {"connection": db_url("octavia", secrets["db"])},
            # Amphorae are VMs running HAProxy, which the sandbox cannot boot: the worker runs its
            # flows with Octavia's no-op compute and amphora drivers (as its no-op test jobs do),
            # and the network driver makes the real VIP port in Neutron (octavia_network.py), so
            # a load balancer holds an address on the cluster's subnet as on a real cloud.
            "controller_worker": {
                "amphora_driver": "amphora_noop_driver",
                "compute_driver": "compute_noop_driver",
                "network_driver": "stackspray_sandbox_vip_ports",
                "loadbalancer_topology": "SINGLE",
                "client_ca": str(octavia_ca(paths)[0]),
                "workers": 1,
            },
            # The worker signs each amphora's agent certificate even when no amphora boots.
            "certificates": {
                "ca_certificate": str(octavia_ca(paths)[0]),
                "ca_private_key": str(octavia_ca(paths)[1]),
            },
            "task_flow": {"jobboard_enabled": False},
            "oslo_messaging": {"topic": "octavia_prov"},
            "keystone_authtoken": _authtoken(secrets, "octavia"),
            "service_auth": _service_auth(secrets, "octavia"),
            "neutron": {"region_name": REGION, "valid_interfaces": "internal"},
            "oslo_concurrency": locks,
            "oslo_messaging_notifications": {"driver": "noop"},
        }
    )

    one = {"workers": 1}
    out["designate/designate.conf"] = render_ini(
        {
            "DEFAULT": {"transport_url": transport},
            "storage:sqlalchemy": {"connection": db_url("designate", secrets["db"])},
            "service:api": {
                **one,
                "auth_strategy": "keystone",
                "enable_api_v2": True,
                "enable_api_admin": True,
                "api_base_uri": APIS["designate"].public_url() + "/",
            },
            "service:central": one,
            "service:worker": {**one, "poll_delay": 1, "poll_retry_interval": 1},
            "service:producer": one,
            "service:mdns": {**one, "listen": f"{HOST}:{MDNS_PORT}"},
            "keystone_authtoken": _authtoken(secrets, "designate"),
            "oslo_concurrency": locks,
            "oslo_messaging_notifications": {"driver": "noop"},
        }
    )
    out["designate/api-paste.ini"] = (paths.dns_venv / "etc/designate/api-paste.ini").read_text()
    mdns = {"host": HOST, "port": MDNS_PORT}
    out["designate/pools.yaml"] = yaml.safe_dump(
        [
            {
                "name": "default",
                "id": DEFAULT_POOL_ID,
                "description": "sandbox pool: fake backend, mdns answers the serial polls",
                "ns_records": [{"hostname": "ns1.sandbox.invalid.", "priority": 1}],
                "nameservers": [mdns],
                "targets": [
                    {"type": "fake", "description": "no DNS server", "masters": [mdns], "options": mdns}
                ],
            }
        ]
    )
    return out


def octavia_ca(paths: SandboxPaths) -> tuple[Path, Path]:
    """The certificate and key of the CA Octavia's worker signs amphora certificates with."""
    folder = paths.state / "octavia"
    return folder / "ca.pem", folder / "ca.key"


def write_configs(paths: SandboxPaths, secrets: dict[str, str], ceph_fsid: str) -> None:
    for rel, text in configs(paths, secrets, ceph_fsid).items():
        target = paths.etc / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o600)  # they hold passwords


def _uwsgi(
    paths: SandboxPaths, api: Api, module: str, env: dict[str, str], extra=(), uwsgi: Path | None = None
) -> Daemon:
    argv = [
        str(uwsgi or paths.bin("uwsgi")),
        "--http-socket",
        f"{HOST}:{api.internal_port}",
        "--module",
        f"{module}:application",
        "--master",
        "--processes",
        "1",
        "--threads",
        "4",
        "--die-on-term",
        "--lazy-apps",
        "--need-app",
        "--buffer-size",
        "65535",
        # --http-socket does not keep connections alive; saying so stops clients from reusing
        # a closed one (a POST on it fails with "connection reset").
        "--add-header",
        "Connection: close",
        *extra,
    ]
    return Daemon(f"{api.name}-api", argv, env, ready_url=f"http://{HOST}:{api.internal_port}/")


def daemons(paths: SandboxPaths) -> dict[str, Daemon]:
    """The OpenStack daemons, keyed by name, in a start order that satisfies their dependencies."""
    etc = paths.etc
    faults_env = {"STACKSPRAY_SANDBOX_FAULTS": str(paths.faults)}
    bin_ = paths.bin
    nova_env = {"OS_NOVA_CONFIG_DIR": str(etc / "nova"), "OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf"}
    return {
        "keystone-api": _uwsgi(
            paths,
            APIS["keystone"],
            "keystone.wsgi.api",
            {"OS_KEYSTONE_CONFIG_FILES": str(etc / "keystone/keystone.conf")},
        ),
        "glance-api": _uwsgi(
            paths,
            APIS["glance"],
            "glance.wsgi.api",
            {"OS_GLANCE_CONFIG_DIR": str(etc / "glance")},
            extra=("--http-chunked-input", "--http-raw-body"),
        ),
        "placement-api": _uwsgi(
            paths,
            APIS["placement"],
            "placement.wsgi.api",
            {"OS_PLACEMENT_CONFIG_DIR": str(etc / "placement")},
        ),
        "neutron-api": _uwsgi(
            paths,
            APIS["neutron"],
            "neutron.wsgi.api",
            {
                "OS_NEUTRON_CONFIG_DIR": str(etc / "neutron"),
                "OS_NEUTRON_CONFIG_FILES": "neutron.conf;plugins/ml2/ml2_conf.ini",
            },
        ),
        "nova-api": _uwsgi(paths, APIS["nova"], "nova.wsgi.osapi_compute", nova_env),
        "nova-conductor": Daemon(
            "nova-conductor", [str(bin_("nova-conductor")), "--config-file", str(etc / "nova/nova.conf")]
        ),
        "nova-scheduler": Daemon(
            "nova-scheduler", [str(bin_("nova-scheduler")), "--config-file", str(etc / "nova/nova.conf")]
        ),
        "nova-compute": Daemon(
            "nova-compute",
            [str(bin_("nova-compute")), "--config-file", str(etc / "nova/nova-compute.conf")],
            faults_env,
        ),
        # Manila, Cinder and Octavia: the API under uwsgi and each service's daemons, all reading
        # <service>/<service>.conf.
        **{
            f"{service}-api": _uwsgi(
                paths,
                APIS[service],
                f"{service}.wsgi.api",
                {},
                extra=("--pyargv", f"--config-file {etc / service / f'{service}.conf'}"),
            )
            for service in ("manila", "cinder", "octavia")
        },
        **{
            f"{service}-{part}": Daemon(
                f"{service}-{part}",
                [str(bin_(f"{service}-{part}")), "--config-file", str(etc / service / f"{service}.conf")],
            )
            for service, part in (
                ("manila", "scheduler"),
                ("manila", "share"),
                ("cinder", "scheduler"),
                ("cinder", "volume"),
                ("octavia", "worker"),
            )
        },
        "designate-api": _uwsgi(
            paths,
            APIS["designate"],
            "designate.wsgi.api",
            {"OS_DESIGNATE_CONFIG_DIR": str(etc / "designate")},
            uwsgi=paths.dns_bin("uwsgi"),
        ),
        **{
            f"designate-{part}": Daemon(
                f"designate-{part}",
                [
                    str(paths.dns_bin(f"designate-{part}")),
                    "--config-file",
                    str(etc / "designate/designate.conf"),
                ],
            )
            for part in ("central", "worker", "producer", "mdns")
        },
    }


def db_sync_commands(paths: SandboxPaths) -> list[tuple[str, list[list[str]]]]:
    """Per service, the commands that create its schema (run once on a new database)."""
    etc = paths.etc
    b = paths.bin
    nova_conf = ["--config-file", str(etc / "nova/nova.conf")]

    def manage(tool: str, conf: str, *args: str) -> list[str]:
        return [str(b(tool)), "--config-file", str(etc / conf), *args]

    return [
        ("keystone", [manage("keystone-manage", "keystone/keystone.conf", "db_sync")]),
        ("glance", [manage("glance-manage", "glance/glance-api.conf", "db_sync")]),
        ("placement", [manage("placement-manage", "placement/placement.conf", "db", "sync")]),
        (
            "neutron",
            [
                manage(
                    "neutron-db-manage",
                    "neutron/neutron.conf",
                    "--config-file",
                    str(etc / "neutron/plugins/ml2/ml2_conf.ini"),
                    "upgrade",
                    "heads",
                )
            ],
        ),
        (
            "nova",
            [
                [str(b("nova-manage")), *nova_conf, "api_db", "sync"],
                [str(b("nova-manage")), *nova_conf, "cell_v2", "map_cell0"],
                [str(b("nova-manage")), *nova_conf, "cell_v2", "create_cell", "--name", "cell1"],
                [str(b("nova-manage")), *nova_conf, "db", "sync"],
            ],
        ),
        ("manila", [manage("manila-manage", "manila/manila.conf", "db", "sync")]),
        ("cinder", [manage("cinder-manage", "cinder/cinder.conf", "db", "sync")]),
        ("octavia", [manage("octavia-db-manage", "octavia/octavia.conf", "upgrade", "head")]),
        (
            "designate",
            [
                [
                    str(paths.dns_bin("designate-manage")),
                    "--config-file",
                    str(etc / "designate/designate.conf"),
                    "database",
                    "sync",
                ]
            ],
        ),
    ]


def state_dirs(paths: SandboxPaths) -> list[Path]:
    st = paths.state
    return [
        st / "locks",
        st / "keystone" / "fernet-keys",
        st / "keystone" / "credential-keys",
        st / "glance" / "images",
        st / "glance" / "staging",
        st / "glance" / "tasks",
        st / "neutron",
        st / "nova" / "instances",
        st / "manila",
        st / "cinder" / "conversion",
        paths.faults,
        paths.nodes,
    ]
