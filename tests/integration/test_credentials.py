"""credentials.refresh against the sandbox: real Keystone application credentials, the node files
on the sandbox's first control-plane node (read with testinfra over SSH), the Secrets and
workloads of the Kubernetes API stand-in (through the official `kubernetes` client). After every
step of every rotation the credential in the Secrets must authenticate."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import testinfra
import yaml
from helpers import ROOT, built_cluster, kill_when, quiet
from keystoneauth1 import session
from keystoneauth1.identity import v3
from stackspray_sandbox import faults

from stackspray.credentials import stored
from stackspray.kube import Kube, KubeWorkloads, rollout_complete
from stackspray.rotation import SECRETS, RotationFailed, credential_in, refresh
from stackspray.scale import Request, scale_cluster
from stackspray.state import ClusterDir

# It edits this machine's crontab or user manager: one such module at a time (tests/conftest.py).
pytestmark = pytest.mark.host_scheduler

NODE_FILES = (
    "/etc/kubernetes/cinder_cloud_config",
    "/etc/kubernetes/cinder-csi-cloud-config-secret.yml",
    "/etc/kubernetes/external-openstack-cloud-config-secret.yml",
)


def authenticates(auth_url: str, cred_id: str | None, secret: str | None) -> bool:
    try:
        auth = v3.ApplicationCredential(
            auth_url=auth_url, application_credential_id=cred_id, application_credential_secret=secret
        )
        return bool(session.Session(auth=auth).get_token())
    except Exception:  # noqa: BLE001 (401/404: not valid)
        return False


class Cluster:
    def __init__(self, conn, name, inv, kubeconfig, fip, key) -> None:
        self.conn, self.name, self.inv = conn, name, inv
        self.cdir = ClusterDir(name, inv)
        self.work = KubeWorkloads(Kube(kubeconfig))
        self.host = testinfra.get_host(f"paramiko://ubuntu@{fip}", ssh_identity_file=str(key), sudo=True)
        self.auth_url = conn.config.get_auth_args()["auth_url"]

    def secret_creds(self) -> set[tuple]:
        return {credential_in(self.work.secret_text(n, "cloud.conf")) for n in SECRETS}

    def node_ids(self) -> set[str | None]:
        ids = set()
        for path in NODE_FILES:
            text = self.host.file(path).content_string
            if path.endswith(".yml"):
                text = base64.b64decode(yaml.safe_load(text)["data"]["cloud.conf"]).decode()
            ids.add(credential_in(text)[0])
        return ids

    def cluster_creds(self) -> list[str]:
        user = self.conn.current_user_id
        return sorted(
            c.id
            for c in self.conn.identity.application_credentials(user=user)
            if c.name.startswith(f"{self.name}-k8s-")
        )

    def assert_valid_in_cluster(self, step: str = "") -> str:
        """The Secrets agree on one credential, and it authenticates. Returns its id."""
        creds = self.secret_creds()
        assert len(creds) == 1, f"{step}: the Secrets disagree: {[c[0] for c in creds]}"
        cred_id, secret = next(iter(creds))
        assert authenticates(self.auth_url, cred_id, secret), f"{step}: the Secrets' credential does not work"
        return cred_id

    def generations(self) -> dict[str, int]:
        return {
            name: self.work.get(kind, name)["metadata"]["generation"]
            for kind, name in (
                ("daemonsets", "openstack-cloud-controller-manager"),
                ("deployments", "csi-cinder-controllerplugin"),
                ("daemonsets", "csi-cinder-nodeplugin"),
            )
        }

    def refresh(self, **kw):
        steps: list[str] = []

        def check(step: str) -> None:
            steps.append(step)
            self.assert_valid_in_cluster(step)

        result = refresh(self.name, progress=quiet(), root=self.inv, observer=check, **kw)
        return result, steps

    def cli(self, *args: str, **popen) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", "credentials.refresh", "--cluster", self.name, *args],
            cwd=ROOT,
            env=dict(os.environ, STACKSPRAY_INVENTORIES=str(self.inv), ANSIBLE_VERBOSITY="4"),
            capture_output=True,
            text=True,
            timeout=600,
        )


@pytest.fixture(scope="module")
def cluster(sandbox, conn, ssh_key, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cred")
    with built_cluster(sandbox, ssh_key, tmp, "cr", "10.97.0.0/24", workers=1) as (name, inv, result, _):
        yield Cluster(conn, name, inv, result.kubeconfig, result.state["floating_ip"]["address"], ssh_key)


def test_rotation_end_to_end(cluster):
    c = cluster
    old = stored(c.cdir)
    assert c.assert_valid_in_cluster() == old.id and c.node_ids() == {old.id}
    gens = c.generations()

    result, steps = c.refresh(force=True)

    assert result.outcome == "rotated" and result.previous["id"] == old.id
    new = stored(c.cdir)
    assert new.id == result.credential["id"] != old.id
    events = ["created", "verified", "inventory", "secrets", "nodes", "agent", "restart", "old deleted"]
    assert steps == events
    assert c.assert_valid_in_cluster() == new.id
    assert c.node_ids() == {new.id}
    assert all(g > gens[n] for n, g in c.generations().items()), "all three workloads were restarted"
    assert not authenticates(c.auth_url, old.id, old.secret), "the old credential is deleted"
    assert c.cluster_creds() == [new.id]
    state = c.cdir.load().to_dict()
    assert state["credential_rotations"][-1]["old_id"] == old.id
    assert new.secret not in json.dumps(state)
    # Node files are root's and 0600 (Kubespray leaves the Cinder CSI Secret manifest 0644).
    assert [(oct(c.host.file(p).mode), c.host.file(p).user) for p in NODE_FILES] == [("0o600", "root")] * 3


def test_inside_threshold_nothing_then_force_rotates(cluster):
    c = cluster
    before = stored(c.cdir)
    result, steps = c.refresh()
    assert result.outcome == "ok" and steps == [] and result.days_left > 89
    assert stored(c.cdir) == before and c.cluster_creds() == [before.id]
    out = c.cli("--json")
    assert out.returncode == 0 and json.loads(out.stdout)["outcome"] == "ok"
    result, _ = c.refresh(force=True)
    assert result.outcome == "rotated" and stored(c.cdir).id != before.id
    assert c.cluster_creds() == [stored(c.cdir).id]


def _assert_rolled_back(c: Cluster, old) -> None:
    assert stored(c.cdir) == old, "the inventory's credential file holds the old credential again"
    assert c.assert_valid_in_cluster() == old.id
    assert c.cluster_creds() == [old.id], "the new credential was deleted"
    assert c.cdir.load().rotation is None


def test_keystone_failure_on_create_changes_nothing(cluster):
    c = cluster
    old = stored(c.cdir)
    faults.inject("keystone", method="POST", path=r"/application_credentials$", status=503, count=5)
    with pytest.raises(RotationFailed, match="creating the new credential failed"):
        c.refresh(force=True)
    faults.clear()
    _assert_rolled_back(c, old)
    assert c.node_ids() == {old.id}


def test_push_failure_to_the_node_rolls_back(cluster):
    c = cluster
    old = stored(c.cdir)
    f = "/etc/kubernetes/cinder_cloud_config"
    c.host.run_test(f"cp -p {f} {f}.bak && sed -i '/^application-credential-id=/d' {f}")
    try:
        with pytest.raises(RotationFailed) as err:
            c.refresh(force=True)
    finally:
        c.host.run_test(f"mv {f}.bak {f}")
    assert "node files failed" in str(err.value) and "cinder_cloud_config" in str(err.value)
    _assert_rolled_back(c, old)
    assert c.node_ids() == {old.id}


def test_rollout_never_ready_rolls_back(cluster):
    c = cluster
    old = stored(c.cdir)
    c.work.apps.patch_namespaced_deployment(
        "csi-cinder-controllerplugin",
        "kube-system",
        {"metadata": {"annotations": {"stand-in.stackspray.io/fail-next-rollouts": "1"}}},
        _preload_content=False,
    )
    with pytest.raises(RotationFailed) as err:
        c.refresh(force=True, rollout_timeout=4)
    assert "restart failed" in str(err.value) and "csi-cinder-controllerplugin" in str(err.value)
    _assert_rolled_back(c, old)
    assert c.node_ids() == {old.id}


def test_killed_run_converges_and_no_secret_is_ever_shown(cluster):
    c = cluster
    old = stored(c.cdir)
    env = dict(os.environ, STACKSPRAY_INVENTORIES=str(c.inv), ANSIBLE_VERBOSITY="4")
    seen = kill_when(["credentials.refresh", "--cluster", c.name, "--force"], env, "Secrets kube-system/")
    assert "Secrets kube-system/" in seen, seen
    assert len(c.cluster_creds()) == 2, "killed mid-way: old and new both exist"

    out = c.cli("--force")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "did not finish" in out.stdout
    final = stored(c.cdir)
    assert c.cluster_creds() == [final.id] and final.id != old.id
    assert c.assert_valid_in_cluster() == final.id and c.node_ids() == {final.id}

    # Every secret this module's rotations made: in no output, log or artifact.
    secrets = {old.secret, final.secret}
    text = seen + out.stdout + out.stderr
    assert not any(s in text for s in secrets)
    allowed = {c.cdir.path / "group_vars" / "all" / "openstack-credential.yml"}
    for p in c.cdir.path.rglob("*"):
        if p.is_file() and p not in allowed and c.cdir.secrets not in p.parents:
            content = p.read_text(errors="ignore")
            assert not any(s in content for s in secrets), f"a secret is in {p}"
    for p in [*allowed, *c.cdir.secrets.glob("*")]:
        assert p.stat().st_mode & 0o077 == 0, f"{p} is readable by others"


def _shelve_the_worker(c) -> tuple[str, object]:
    """Shelve the cluster's worker; returns its name and the credential the cluster holds."""
    old = stored(c.cdir)
    scaled = scale_cluster(c.name, Request(shelve="all"), progress=quiet(), root=c.inv)
    assert scaled.ok, scaled.to_dict()
    return f"{c.name}-workers-1", old


def _unshelve_and_see_the_node_plugin_updated(c) -> None:
    """Unshelve the workers; the node plugin's new pods then start there too."""
    back = scale_cluster(c.name, Request(unshelve="all"), progress=quiet(), root=c.inv)
    assert back.ok, back.to_dict()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = c.work.get("daemonsets", "csi-cinder-nodeplugin")["status"]
        if st["numberAvailable"] == 2 and st["updatedNumberScheduled"] == 2:
            break
        time.sleep(1)
    assert st["numberAvailable"] == 2 and st["updatedNumberScheduled"] == 2, st


def test_refresh_while_a_worker_is_shelved_succeeds_and_the_worker_gets_it_back(cluster):
    """A weekly refresh meets shelved workers (the documented schedules shelve on evenings and
    weekends). The Cinder node plugin tolerates every taint, so the DaemonSet controller keeps a
    pod on the shelved node that can never become available, which holds a plain rollout of every
    other node (maxUnavailable 1): `kubectl rollout status` never returns. The refresh must finish
    all the same, and the shelved node run the new credential when it comes back."""
    c = cluster
    worker, old = _shelve_the_worker(c)
    try:
        # The node lifecycle controller: NotReady once nothing was heard for its grace period
        # (40 s on a Kubespray cluster, checked every 5 s).
        deadline = time.monotonic() + 75
        while time.monotonic() < deadline and c.work.kube.node(worker).ready:
            time.sleep(1)
        assert not c.work.kube.node(worker).ready
        before = c.work.get("daemonsets", "csi-cinder-nodeplugin")["status"]
        assert before["desiredNumberScheduled"] == 2 and before["numberAvailable"] == 1, before
        # What a plain `kubectl rollout restart` + `rollout status` meets: it never completes.
        c.work.apps.patch_namespaced_daemon_set(
            "csi-cinder-nodeplugin",
            "kube-system",
            {"spec": {"template": {"metadata": {"annotations": {"probe": str(time.time())}}}}},
            _preload_content=False,
        )
        time.sleep(2.5)
        stuck = c.work.get("daemonsets", "csi-cinder-nodeplugin")
        assert not rollout_complete("daemonsets", stuck), stuck["status"]
        assert stuck["status"]["updatedNumberScheduled"] < 2, "the Ready node is held at maxUnavailable 1"

        progress = quiet()
        result = refresh(c.name, force=True, progress=progress, root=c.inv, rollout_timeout=60)
        assert result.outcome == "rotated" and stored(c.cdir).id != old.id
        assert any(worker in line and "come back" in line for line in progress.lines), progress.lines
        ds = c.work.get("daemonsets", "csi-cinder-nodeplugin")
        assert ds["status"]["updatedNumberScheduled"] == 2 and ds["status"]["numberAvailable"] == 1
        strategy = ds["spec"].get("updateStrategy") or {}
        assert (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1) in (1, None), strategy
        assert "stackspray.io/max-unavailable-before" not in (ds["metadata"].get("annotations") or {})
        assert c.assert_valid_in_cluster() == stored(c.cdir).id
    finally:
        _unshelve_and_see_the_node_plugin_updated(c)


def test_refresh_right_after_a_shelve_succeeds_before_kubernetes_notices(cluster):
    """`scale --shelve` then at once `credentials.refresh` (a script, or two schedules a minute
    apart): for 40 s Kubernetes still calls the shelved node Ready, while the node plugin's new
    pod there can never start. The refresh goes by what the cloud says (the server is shelved),
    so it neither waits for that pod nor holds the other nodes' rollout behind it."""
    c = cluster
    worker, old = _shelve_the_worker(c)
    try:
        assert c.work.kube.node(worker).ready, "within the grace period the node still looks Ready"
        progress = quiet()
        result = refresh(c.name, force=True, progress=progress, root=c.inv, rollout_timeout=60)
        assert result.outcome == "rotated" and stored(c.cdir).id != old.id
        assert any(worker in line and "come back" in line for line in progress.lines), progress.lines
        assert c.assert_valid_in_cluster() == stored(c.cdir).id
    finally:
        _unshelve_and_see_the_node_plugin_updated(c)


# A progress line each step prints as it starts or ends, in order (see rotation.STEPS).
KILL_POINTS = (
    "created ",  # the new credential exists, its secret is kept
    "verified ",
    "Secrets kube-system/",  # the Secrets hold the new one
    "running cloud-credential.yml",  # the node files are being written
    "restarted and Ready",
    "deleted application credential",  # the old one is gone
)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_at_every_step_a_rerun_leaves_exactly_one_valid_credential(cluster, point):
    """SIGKILL `credentials.refresh --force` right after each step, then run it again (as the
    schedule would): afterwards exactly one credential of the cluster exists in Keystone, it
    authenticates, and the Secrets, the node files and the inventory's file all hold it."""
    c = cluster
    seen = kill_when(
        ["credentials.refresh", "--cluster", c.name, "--force"],
        dict(os.environ, STACKSPRAY_INVENTORIES=str(c.inv)),
        point,
    )
    assert point in seen, seen
    again = c.cli()
    assert again.returncode == 0, again.stdout + again.stderr
    final = stored(c.cdir)
    assert c.cluster_creds() == [final.id], "exactly one credential of the cluster is left"
    assert c.assert_valid_in_cluster(point) == final.id
    assert c.node_ids() == {final.id}
    assert c.cdir.load().rotation is None
    assert not (c.cdir.secrets / "credential-pending.yml").exists()


def test_schedule_installs_lists_and_removes(cluster, cron_daemon):
    from stackspray_sandbox.infra import install_apt_packages

    install_apt_packages()  # crontab comes from Debian's cron package
    c = cluster
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    env = dict(os.environ, STACKSPRAY_INVENTORIES=str(c.inv), STACKSPRAY_SCHEDULER="cron")

    def sched(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", "credentials.schedule", "--cluster", c.name, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )

    try:
        out = sched("--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["when"] == "Sun *-*-* 03:17:00"
        line = next(
            ln
            for ln in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout.splitlines()
            if ln.endswith(f"# stackspray:{c.name}:credentials-refresh")
        )
        assert line.startswith("17 3 * * 0 ") and f"credentials.refresh --cluster {c.name}" in line
        assert [j["id"] for j in json.loads(sched("--list", "--json").stdout)] == ["credentials-refresh"]
        # What cron runs, run now: inside the threshold it reports ok and exits 0.
        command = line.split(" ", 5)[5].rsplit(" # ", 1)[0]
        ran = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=600)
        assert ran.returncode == 0, ran.stdout
        log = c.inv / c.name / "logs" / "scheduled-credentials-refresh.log"
        assert "ok: " in log.read_text() and "expires in" in log.read_text()
        assert sched("--remove").returncode == 0
        assert json.loads(sched("--list", "--json").stdout) == []
    finally:
        if saved.returncode == 0:
            subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True)


def test_operator_credential_near_expiry_is_warned_about(cluster, tmp_path):
    """stackspray run with an (unrestricted) application credential of its own that expires in 5
    days: refresh says so, while the cluster's own credential needs nothing."""
    import datetime as dt

    c = cluster
    user = c.conn.current_user_id
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)
    own = c.conn.identity.create_application_credential(
        user=user,
        name=f"operator-{uuid.uuid4().hex[:6]}",
        unrestricted=True,
        expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    try:
        clouds = tmp_path / "clouds.yaml"
        clouds.write_text(
            yaml.safe_dump(
                {
                    "clouds": {
                        "sandbox": {
                            "auth_type": "v3applicationcredential",
                            "auth": {
                                "auth_url": c.auth_url,
                                "application_credential_id": own.id,
                                "application_credential_secret": own.secret,
                            },
                            "region_name": "RegionOne",
                            "interface": "public",
                            "identity_api_version": 3,
                        }
                    }
                }
            )
        )
        clouds.chmod(0o600)
        out = subprocess.run(
            [sys.executable, "-m", "invoke", "credentials.refresh", "--cluster", c.name, "--json"],
            cwd=ROOT,
            env=dict(os.environ, STACKSPRAY_INVENTORIES=str(c.inv), OS_CLIENT_CONFIG_FILE=str(clouds)),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert report["outcome"] == "ok"
        assert any("operator) application credential expires in 5 day(s)" in w for w in report["warnings"]), (
            report
        )
        assert "WARNING: your own (operator) application credential" in out.stderr
        assert own.secret not in out.stdout + out.stderr
    finally:
        c.conn.identity.delete_application_credential(user, own.id)


def test_destroy_removes_the_cluster_credential_and_schedules(cluster, cron_daemon):
    """Last in this module: destroy leaves no valid credential and no timer behind."""
    c = cluster
    env = dict(os.environ, STACKSPRAY_INVENTORIES=str(c.inv), STACKSPRAY_SCHEDULER="cron")
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    try:
        for args in (["credentials.schedule"], ["scale.schedule", "--at", "20:00", "--workers", "0"]):
            done = subprocess.run(
                [sys.executable, "-m", "invoke", *args, "--cluster", c.name],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr
        cred = stored(c.cdir)
        assert c.cluster_creds() == [cred.id]
        out = subprocess.run(
            [sys.executable, "-m", "invoke", "destroy-cluster", "--cluster", c.name, "--yes"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert c.cluster_creds() == []
        assert not authenticates(c.auth_url, cred.id, cred.secret)
        assert "removed scheduled jobs: credentials-refresh, scale-2000" in out.stdout
        crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
        assert f"stackspray:{c.name}:" not in crontab
    finally:
        if saved.returncode == 0:
            subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True)
