"""MariaDB and RabbitMQ for the sandbox: Debian's packages, private state, our own PIDs."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import time
from pathlib import Path

from .ceph import APT_PACKAGES as CEPH_APT_PACKAGES
from .paths import SandboxPaths
from .processes import Daemon, DaemonFailed, log_tail, running_pid, start
from .services import DATABASES, DB_PORT, HOST, RABBIT_PORT
from .shell import run

APT_PACKAGES = [
    "mariadb-server",
    "rabbitmq-server",
    "debootstrap",
    "systemd-container",  # systemd-nspawn
    "iproute2",
    "openssh-client",
    "kmod",
    # crontab: stackspray's schedules fall back to it where no systemd user manager runs (tests).
    "cron",
    # openssl: the Kubespray stand-in makes the Kubernetes API stand-in's TLS certificate with it.
    "openssl",
    # Ceph (ceph.py) for Cinder's RBD backend, and qemu-img, which Cinder converts images with.
    *CEPH_APT_PACKAGES,
    "qemu-utils",
]


def missing_apt_packages() -> list[str]:
    missing = []
    for pkg in APT_PACKAGES:
        proc = run(["dpkg-query", "-W", "-f=${Status}", pkg], check=False)
        if "install ok installed" not in proc.stdout:
            missing.append(pkg)
    return missing


def install_apt_packages() -> list[str]:
    """Install what is missing from Debian without starting the packages' own system services."""
    missing = missing_apt_packages()
    if not missing:
        return []
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        # Debian's convention for "install, but do not start": exit 101.
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-q"], env=env, timeout=600)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env, timeout=900)
    finally:
        if ours:
            policy.unlink(missing_ok=True)
    return missing


# -- MariaDB ---------------------------------------------------------------------------------


def _db_dir(paths: SandboxPaths) -> Path:
    return paths.state / "mariadb"


def _db_socket(paths: SandboxPaths) -> Path:
    return paths.run / "mariadb.sock"


def mariadb_daemon(paths: SandboxPaths) -> Daemon:
    return Daemon(
        "mariadb",
        [
            "mariadbd",
            "--no-defaults",
            "--user=root",
            f"--datadir={_db_dir(paths)}",
            f"--bind-address={HOST}",
            f"--port={DB_PORT}",
            f"--socket={_db_socket(paths)}",
            f"--pid-file={paths.run / 'mariadbd.pid'}",
            "--max-connections=1000",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=128M",
            "--innodb-flush-log-at-trx-commit=2",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
        ],
    )


def start_mariadb(paths: SandboxPaths, secrets: dict[str, str]) -> None:
    datadir = _db_dir(paths)
    fresh = not (datadir / "mysql").exists()
    if fresh:
        if datadir.exists():
            shutil.rmtree(datadir)
        datadir.mkdir(parents=True)
        run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=root",
                f"--datadir={datadir}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            timeout=300,
        )
    start(paths, mariadb_daemon(paths))
    _wait_port(paths, "mariadb", DB_PORT, 60)
    if fresh:
        _mysql(paths, "DELETE FROM mysql.user WHERE User=''; FLUSH PRIVILEGES;")
    stmts = []
    for db in DATABASES:
        user = "nova" if db.startswith("nova") else db
        stmts.append(f"CREATE DATABASE IF NOT EXISTS {db};")
        stmts.append(f"CREATE USER IF NOT EXISTS '{user}'@'{HOST}' IDENTIFIED BY '{secrets['db']}';")
        stmts.append(f"GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'{HOST}';")
    stmts.append("FLUSH PRIVILEGES;")
    _mysql(paths, "\n".join(stmts))


def _mysql(paths: SandboxPaths, sql: str) -> None:
    # root authenticates through the socket (unix_socket plugin): no password on any command line
    run(["mariadb", "--no-defaults", f"--socket={_db_socket(paths)}", "-u", "root"], input=sql)


# -- RabbitMQ --------------------------------------------------------------------------------


def _rabbit_env(paths: SandboxPaths) -> dict[str, str]:
    base = paths.state / "rabbitmq"
    return {
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_NODENAME": "stackspray@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(RABBIT_PORT),
        "RABBITMQ_DIST_PORT": "25672",
        "ERL_EPMD_ADDRESS": HOST,
        "HOME": "/var/lib/rabbitmq",
    }


def start_rabbitmq(paths: SandboxPaths, secrets: dict[str, str]) -> None:
    base = paths.state / "rabbitmq"
    for sub in ("mnesia", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "enabled_plugins").write_text("[].\n")
    rabbit = pwd.getpwnam("rabbitmq")
    for p in [base, *base.rglob("*")]:
        os.chown(p, rabbit.pw_uid, rabbit.pw_gid)
    # The state dir's parents must be traversable by the rabbitmq user.
    for parent in base.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
    env = _rabbit_env(paths)
    # epmd is started by us in the foreground so that its PID is ours to stop.
    start(paths, Daemon("epmd", ["epmd", "-address", HOST], {"ERL_EPMD_ADDRESS": HOST}))
    start(
        paths,
        Daemon(
            "rabbitmq",
            ["runuser", "-u", "rabbitmq", "--", "/usr/lib/rabbitmq/bin/rabbitmq-server"],
            env,
            cwd="/var/lib/rabbitmq",
        ),
    )
    _wait_port(paths, "rabbitmq", RABBIT_PORT, 90)
    ctl = ["runuser", "-u", "rabbitmq", "--", "/usr/lib/rabbitmq/bin/rabbitmqctl"]
    users = run([*ctl, "list_users", "-q"], env=env).stdout
    if "stackspray" not in users.split():
        # The password goes through stdin, never argv.
        run([*ctl, "add_user", "stackspray"], env=env, input=secrets["rabbit"] + "\n")
    run([*ctl, "set_permissions", "-p", "/", "stackspray", ".*", ".*", ".*"], env=env)


def _wait_port(paths: SandboxPaths, name: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running_pid(paths, name):
            raise DaemonFailed(f"{name} exited while starting; its log ends:\n{log_tail(paths, name)}")
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.3)
    raise DaemonFailed(f"{name} did not listen on {HOST}:{port} in {timeout:.0f}s:\n{log_tail(paths, name)}")
