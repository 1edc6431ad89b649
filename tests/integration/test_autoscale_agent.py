"""The autoscaler's agent on the cluster, as a user runs it: `autoscale.enable` with the
defaults from another folder, OS_CLOUD exported; then the agent — a systemd system service on
the first control-plane node (a real node host), installed from wheels without any package
index — wakes shelved workers for pending pods and shelves idle ones, through its own
ServiceAccount (judged by the API stand-in's RBAC and the real kubectl) and the cluster's
application credential with access rules (judged by Keystone and Nova).

The workers are m3.tiny (1 vCPU): pods of 300m CPU fit two per worker next to Kubespray's DaemonSet
pods (calico-node 150m, nodelocaldns 100m), so 3 pods need exactly 2 workers (without that overhead
counted, three would seem to fit on one)."""

from __future__ import annotations

import calendar
import json
import shlex
import subprocess
import time

import pytest
import yaml
from conftest import ssh
from helpers import built_cluster, eventually, invoke, kube_tools
from kubernetes import client
from stackspray_sandbox import faults

from stackspray import autoscale_agent, lease
from stackspray.kube import Kube
from stackspray.state import ClusterDir

NS = "apps"
IDLE = 5


class Agent:
    def __init__(self, sandbox, conn, name, inv, kubeconfig, cwd, key):
        self.sandbox, self.conn, self.name, self.inv, self.cwd, self.key = sandbox, conn, name, inv, cwd, key
        self.kube = Kube(kubeconfig)
        self.apps = client.AppsV1Api(self.kube.api)
        self.w = [f"{name}-workers-{i}" for i in range(1, 4)]
        self.cp = f"{name}-control-plane-1"
        self.env = {"STACKSPRAY_INVENTORIES": str(inv)}
        self.cdir = ClusterDir(name, inv)

    def invoke(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return invoke(self.sandbox, self.cwd, *args, timeout=timeout, env=self.env)

    def node(self, command: str, timeout: float = 60) -> str:
        """A command as root on the first control-plane node (through its floating IP)."""
        fip = self.cdir.load().floating_ip.address
        return ssh(fip, self.key, f"sudo sh -c {shlex.quote(command)}", timeout=timeout)

    def servers(self) -> dict[str, str]:
        return {
            s.name: s.status
            for s in self.conn.compute.servers()
            if (s.metadata or {}).get("stackspray-cluster") == self.name
        }

    def active_workers(self) -> list[str]:
        states = self.servers()
        return sorted(n for n in self.w if states.get(n) == "ACTIVE")

    def status(self) -> dict:
        out = self.invoke("autoscale.status", "--cluster", self.name, "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        return json.loads(out.stdout)

    def deployment(self, name: str, replicas: int) -> None:
        container = client.V1Container(
            name="c", image="busybox", resources=client.V1ResourceRequirements(requests={"cpu": "300m"})
        )
        self.apps.create_namespaced_deployment(
            NS,
            client.V1Deployment(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1DeploymentSpec(
                    replicas=replicas,
                    selector=client.V1LabelSelector(match_labels={"app": name}),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels={"app": name}),
                        spec=client.V1PodSpec(containers=[container]),
                    ),
                ),
            ),
        )

    def running(self, app: str) -> dict[str, str]:
        pods = self.kube.core.list_namespaced_pod(NS, label_selector=f"app={app}").items
        ready = [
            p
            for p in pods
            if p.spec.node_name
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        return {p.metadata.name: p.spec.node_name for p in ready} if pods and len(ready) == len(pods) else {}

    def main_pid(self) -> int:
        return int(self.node(f"systemctl show -p MainPID --value {autoscale_agent.UNIT}").strip() or 0)


@pytest.fixture(scope="module")
def agent(sandbox, conn, ssh_key, tmp_path_factory):
    """1 control-plane + 3 m3.tiny workers, credential with access rules; the agent enabled
    with the defaults (min 0, max 3), short timers."""
    tmp = tmp_path_factory.mktemp("agent")
    elsewhere = tmp_path_factory.mktemp("operator-home")
    with built_cluster(
        sandbox, ssh_key, tmp, "ag", "10.69.0.0/24", workers=3, credential={"access_rules": True}
    ) as (name, inv, result, _):
        a = Agent(sandbox, conn, name, inv, result.kubeconfig, elsewhere, ssh_key)
        a.kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        out = a.invoke(
            "autoscale.enable",
            "--cluster",
            name,
            "--idle",
            f"{IDLE}s",
            "--pending-for",
            "0s",
            "--scale-down-delay",
            "0s",
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"loop: cluster (agent on {a.cp}" in out.stdout, out.stdout
        yield a


def test_no_loop_runs_on_the_operators_machine(agent):
    a = agent
    crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    assert f"stackspray:{a.name}:" not in crontab
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [ln for ln in ps.splitlines() if "autoscale.run" in ln and a.name in ln], ps
    st = a.status()
    assert st["service"] == "cluster" and st["agent"]["node"] == a.cp, st
    assert st["agent"]["build"] == a.cdir.load().autoscale.agent_build and not st["warning"], st
    # On the node: the service runs the installed release, not from any package index.
    assert a.node(f"systemctl is-active {autoscale_agent.UNIT}").strip() == "active"
    unit = a.node(f"systemctl cat {autoscale_agent.UNIT}")
    assert "Restart=on-failure" in unit and "/opt/stackspray/agent/venv-" in unit


def test_idle_workers_go_and_a_pending_deployment_wakes_exactly_what_it_needs(agent):
    a = agent
    # Nothing runs on the workers: after the idle time the agent shelves all three (min 0).
    assert eventually(lambda: a.active_workers() == [], timeout=240), a.servers()
    a.deployment("web", 3)  # 3 x 300m: two per m3.tiny worker (DaemonSets take 250m) -> 2 workers
    placed = eventually(lambda: a.running("web"), timeout=300)
    assert placed, a.status()
    woke = a.active_workers()
    assert len(woke) == 2 and set(placed.values()) == set(woke), (woke, placed)
    events = [e for e in a.status()["events"] if e.get("action") == "unshelve"]
    assert {e["node"] for e in events} >= set(woke), events
    time.sleep(2 * 10 + IDLE)
    assert a.active_workers() == woke, "nothing more is woken while the pods fit"
    a.apps.delete_namespaced_deployment("web", NS)
    assert eventually(lambda: a.active_workers() == [], timeout=240), a.servers()


def test_the_agent_killed_is_restarted_by_systemd(agent):
    a = agent
    before = a.main_pid()
    assert before > 0
    a.node(f"kill -9 {before}")
    after = eventually(lambda: (pid := a.main_pid()) and pid != before and pid, timeout=60)
    assert after and after != before
    assert a.node(f"systemctl is-active {autoscale_agent.UNIT}").strip() == "active"
    stamp = time.time()
    got = eventually(
        lambda: (s := autoscale_agent.read_status(a.kube)) and s.updated and _epoch(s.updated) >= stamp - 2,
        timeout=60,
    )
    assert got, "the restarted agent writes its status again"


def _epoch(iso: str) -> float:
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def test_a_manual_scale_waits_for_the_agents_lease(agent):
    """While the agent wakes a worker (its round holds the node Lease; Nova is made to take 15 s
    over the unshelve call), `invoke scale` from the operator's machine waits, says who holds
    the Lease, and then does its work."""
    a = agent
    assert eventually(lambda: a.active_workers() == [], timeout=240)
    delayed_before = sum(1 for f in faults.fired() if f["kind"] == "delay")
    faults.inject("nova", method="POST", path=r"/servers/[^/]+/action$", kind="delay", delay=15, count=1)
    a.deployment("one", 1)

    def holder() -> str:
        doc = a.kube.read_lease(lease.NAMESPACE, lease.NAME) or {}
        return (doc.get("spec") or {}).get("holderIdentity") or ""

    # Every round of the agent holds the Lease for a moment, idle or not: wait for the round that
    # acts — its unshelve call is the one Nova is made to hold for 15 s.
    assert eventually(
        lambda: sum(1 for f in faults.fired() if f["kind"] == "delay") > delayed_before, timeout=120
    ), "the agent's round sent its unshelve"
    assert holder().startswith("agent@"), "the agent's round holds the Lease while its unshelve waits"
    started = time.monotonic()
    out = a.invoke("scale", "--cluster", a.name, "--unshelve", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "waiting for the cluster's node lease" in out.stdout and "held by agent@" in out.stdout, out.stdout
    assert time.monotonic() - started >= 5, "it waited for the agent's slow unshelve"
    assert len(a.active_workers()) == 2, "the agent's worker and the one `scale` woke after it"
    a.apps.delete_namespaced_deployment("one", NS)


def test_the_agents_account_cannot_read_secrets_or_delete_nodes(agent):
    a = agent
    kubectl = kube_tools()["kubectl"]
    conf = a.cdir.secrets / "autoscaler-agent.kubeconfig"
    assert conf.stat().st_mode & 0o777 == 0o600
    # The kubeconfig names the node's own address; from here the API is at the floating IP.
    server = a.kube.server

    def can_i(*what: str) -> str:
        out = subprocess.run(
            [kubectl, "--kubeconfig", str(conf), "--server", server, "auth", "can-i", *what],
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    assert can_i("list", "secrets", "-n", "kube-system") == "no"
    assert can_i("get", "secrets", "-A") == "no"
    assert can_i("delete", "nodes") == "no"
    assert can_i("patch", "nodes") == "yes"
    assert can_i("create", "pods", "--subresource=eviction", "-n", NS) == "yes"
    refused = subprocess.run(
        [kubectl, "--kubeconfig", str(conf), "--server", server, "get", "secrets", "-n", "kube-system"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "Forbidden" in refused.stderr
    assert (
        'User "system:serviceaccount:kube-system:stackspray-autoscaler" cannot list resource "secrets"'
        in (refused.stderr)
    )


def test_the_cluster_credential_can_shelve_but_not_create_a_server(agent):
    """From the node, with the credential the agent uses: listing and a shelve action pass the
    access rules; creating a server does not."""
    a = agent
    script = (
        "import json;"
        "from stackspray.connection import connect_cloud_config;"
        "c, cid = connect_cloud_config('/etc/kubernetes/cinder_cloud_config');"
        "servers, flavors = list(c.compute.servers()), list(c.compute.flavors());"
        "print(json.dumps({'servers': len(servers), 'flavors': len(flavors)}));"
        "body = {'server': {'name': 'evil', 'flavorRef': 'x', 'imageRef': 'x'}};"
        "r = c.compute.post('/servers', json=body, raise_exc=False);"
        "print(r.status_code)"
    )
    out = a.node(f"/opt/stackspray/agent/venv-*/bin/python -c {shlex.quote(script)}")
    listed, code = out.strip().splitlines()
    assert json.loads(listed)["servers"] >= 4 and json.loads(listed)["flavors"] > 0
    assert code in ("401", "403"), out


def test_a_rotation_reaches_the_agent_and_the_old_credential_is_gone(agent):
    a = agent
    old = autoscale_agent.read_status(a.kube).credential_id
    out = a.invoke("credentials.refresh", "--cluster", a.name, "--force")
    assert out.returncode == 0, out.stdout + out.stderr
    new = a.cdir.load().credential.id
    assert new != old
    assert eventually(
        lambda: (s := autoscale_agent.read_status(a.kube)) and s.credential_id == new and not s.error,
        timeout=60,
    ), autoscale_agent.read_status(a.kube)
    ids = {c.id for c in a.conn.identity.application_credentials(user=a.conn.current_user_id)}
    assert old not in ids and new in ids


def test_a_window_is_kept_on_the_cluster_and_the_agent_applies_it_at_its_time(agent):
    """autoscale.schedule with the agent: the window goes into the agent's settings (no timer or
    crontab entry on the operator's machine, which may sleep through it); at its minute the agent
    holds the group at --min 1 and wakes a worker; --list shows it, --remove takes it away."""
    a = agent
    assert eventually(lambda: a.active_workers() == [], timeout=240), a.servers()
    soon = time.localtime(time.time() + 60)
    at = f"{soon.tm_hour:02d}:{soon.tm_min:02d}"
    out = a.invoke("autoscale.schedule", "--cluster", a.name, "--at", at, "--min", "1")
    assert out.returncode == 0 and "with cluster: the agent's settings" in out.stdout, out.stdout + out.stderr
    crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    assert f"stackspray:{a.name}:" not in crontab, crontab
    cm = a.kube.get_object(f"/api/v1/namespaces/kube-system/configmaps/{autoscale_agent.SETTINGS}")
    (window,) = json.loads(cm["data"]["settings.json"])["windows"]
    assert window["at"] == at and window["min"] == 1 and window["group"] == "workers", window
    listed = a.invoke("autoscale.schedule", "--cluster", a.name, "--list")
    assert window["id"] in listed.stdout and "(by the agent)" in listed.stdout, listed.stdout
    assert eventually(lambda: len(a.active_workers()) == 1, timeout=150), a.servers()
    groups = a.status()["groups"]
    assert groups["workers"]["min"] == 1 and groups["workers"]["window"].startswith(f"window {window['id']}")
    gone = a.invoke("autoscale.schedule", "--cluster", a.name, "--remove", window["id"])
    assert gone.returncode == 0 and window["id"] in gone.stdout, gone.stdout
    cm = a.kube.get_object(f"/api/v1/namespaces/kube-system/configmaps/{autoscale_agent.SETTINGS}")
    assert json.loads(cm["data"]["settings.json"])["windows"] == []


def test_heal_enabled_the_agent_reboots_a_killed_worker_and_never_a_shelved_one(agent):
    """heal.enable as a user runs it after giving the group short heal timers in the spec: the
    agent's next rounds find the worker whose node host was killed (ACTIVE, NotReady), soft-reboot
    it until it is Ready, say so in its events; the shelved workers are not touched."""
    a = agent
    spec = a.cdir.load().spec
    doc = yaml.safe_load(open(spec).read())
    doc["node_groups"]["workers"]["heal"] = {"unhealthy_for": "5s", "reboot_timeout": "90s"}
    open(spec, "w").write(yaml.safe_dump(doc))
    out = a.invoke("autoscale.limits", "--cluster", a.name, "--min", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert eventually(lambda: len(a.active_workers()) == 1, timeout=120), a.servers()
    out = a.invoke("heal.enable", "--cluster", a.name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "workers: unhealthy_for 5s" in out.stdout and "invoke heal --cluster" in out.stdout, out.stdout
    (victim,) = a.active_workers()
    shelved = {s.name: s.updated_at for s in a.conn.compute.servers() if s.name in a.w and s.name != victim}
    server = next(s for s in a.conn.compute.servers() if s.name == victim)
    assert faults.kill_node(server.id, paths=a.sandbox.paths)

    def rebooted() -> list[dict]:
        return [
            e
            for e in a.status()["events"]
            if e.get("action") == "heal" and e.get("node") == victim and e.get("outcome") == "ok"
        ]

    done = eventually(rebooted, timeout=300)
    assert done and done[-1]["decision"] == "soft-reboot", a.status()
    node = a.kube.core.read_node(victim)
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert {s.name: s.updated_at for s in a.conn.compute.servers() if s.name in shelved} == shelved, (
        "a shelved worker was touched"
    )
    st = a.status()
    assert st["heal"]["enabled"] and not st["warning"], st
    out = a.invoke("heal.disable", "--cluster", a.name)
    assert out.returncode == 0 and "not part of the autoscaler's round" in out.stdout, out.stdout


def test_disable_removes_the_agent_everywhere(agent):
    a = agent
    out = a.invoke("autoscale.disable", "--cluster", a.name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"service {autoscale_agent.UNIT}" in out.stdout
    gone = a.node(
        f"systemctl is-enabled {autoscale_agent.UNIT} 2>&1 || true; ls /opt/stackspray 2>&1 || true"
    )
    assert "not-found" in gone or "No such file" in gone, gone
    assert (
        a.kube.get_object(f"/api/v1/namespaces/kube-system/serviceaccounts/{autoscale_agent.ACCOUNT}") is None
    )
    assert not (a.cdir.secrets / "autoscaler-agent.kubeconfig").exists()
    assert a.status()["enabled"] is False
