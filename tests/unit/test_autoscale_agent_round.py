"""One round of the autoscaler's agent (autoscale_agent.run) with exactly its own rights: its
objects applied as enable applies them, its ServiceAccount's token from the API stand-in's token
controller, the stand-in's RBAC judging every call, the fake cloud for OpenStack. A call the
agent makes that its Role does not allow fails the round here, in a second, before the sandbox."""

from __future__ import annotations

import base64
import time

import kube_standin
import pytest
from stackspray_sandbox.fakecloud import FakeCloud
from test_engine_on_fake_cloud import create, write_spec

from stackspray import autoscale_agent, lease
from stackspray.autoscale_setup import _agent_status
from stackspray.cluster_state import Autoscale, AutoscaleGroup, ClusterState
from stackspray.kube import Kube, KubeError
from stackspray.state import ClusterDir


@pytest.fixture
def world(tmp_path):
    cloud = FakeCloud()
    create(cloud, write_spec(tmp_path, "lab", workers=2), tmp_path / "inv")
    names = sorted(s["name"] for s in cloud.resources("server"))
    nodes = [
        {"name": n, "ip": "127.0.0.1", "control_plane": "control-plane" in n, "labels": {}, "machine": {}}
        for n in names
    ]
    api = kube_standin.start(tmp_path / "api", nodes)
    api.store.ready.update(dict.fromkeys(names, True))
    yield cloud, api, names
    kube_standin.stop(api)


def _agent_kubeconfig(api, admin: Kube, tmp_path, auto: Autoscale, su_rates: dict | None = None):
    for path, obj, replace in autoscale_agent.objects("lab", auto, su_rates):
        admin.put_object(path, obj, replace=replace)
    deadline = time.monotonic() + 5
    path = f"/api/v1/namespaces/kube-system/secrets/{autoscale_agent.TOKEN_SECRET}"
    while not ((admin.get_object(path) or {}).get("data") or {}).get("token"):
        assert time.monotonic() < deadline, "the token controller filled no token"
        time.sleep(0.2)
    token = base64.b64decode(admin.get_object(path)["data"]["token"]).decode()
    return api.kubeconfig_for(token, tmp_path / "agent.conf")


def test_a_round_with_the_agents_own_rights_reads_all_it_needs_and_reports(world, tmp_path):
    cloud, api, names = world
    admin = Kube(api.kubeconfig)
    auto = Autoscale(groups={"workers": AutoscaleGroup(2, 2, 30.0, 0.0)}, scale_down_delay=0.0)
    rates = {"m3": {"su_per_vcpu_hour": 3.0, "source": "your rates file /home/op/.config/x"}}
    conf = _agent_kubeconfig(api, admin, tmp_path, auto, rates)
    autoscale_agent.run(
        "lab", conf, home=tmp_path / "node", rounds=1, build="b1", api_for=lambda _f: (cloud, "cred-1")
    )
    # The SU rates the operator's machine shipped are the agent's (no rates file on the node).
    assert ClusterDir("lab", tmp_path / "node" / "inventories").load().su_rates == rates
    st = autoscale_agent.read_status(admin)
    assert st is not None and st.error is None, st
    assert (st.build, st.credential_id) == ("b1", "cred-1")
    decided = {d["node"]: d["action"] for d in st.last_round["decisions"] if d.get("node")}
    workers = [n for n in names if "workers" in n]
    assert {n: decided.get(n) for n in workers} == dict.fromkeys(workers, "noop"), st.last_round
    text = admin.get_object(f"{autoscale_agent.CM_PATH}/{autoscale_agent.STATUS}")["data"]["status"]
    assert "Agent:             stackspray" in text and "build b1" in text
    # It held the node Lease for the round and let it go.
    held = admin.read_lease(lease.NAMESPACE, lease.NAME)["spec"]
    assert held.get("holderIdentity") is None and held.get("leaseTransitions", 0) >= 1


def test_its_account_reads_no_secrets_and_changes_no_settings(world, tmp_path):
    cloud, api, _ = world
    admin = Kube(api.kubeconfig)
    conf = _agent_kubeconfig(api, admin, tmp_path, Autoscale(groups={"workers": AutoscaleGroup(0, 2)}))
    agent = Kube(conf)
    with pytest.raises(KubeError, match=r"secrets is forbidden: User \"system:serviceaccount:kube-system:"):
        agent.list_json("pods") and agent.get_object("/api/v1/namespaces/kube-system/secrets")
    with pytest.raises(KubeError, match="forbidden"):
        autoscale_agent.write_settings(agent, "lab", Autoscale())
    with pytest.raises(KubeError, match="forbidden"):
        agent.delete_object("/api/v1/nodes/lab-workers-1")


def test_status_says_when_the_agent_is_silent_failing_or_another_build(world, tmp_path):
    _, api, _ = world
    admin = Kube(api.kubeconfig)
    auto = Autoscale(
        groups={"workers": AutoscaleGroup(0, 2)}, service="cluster", agent_build="b1", agent_node="cp"
    )
    for path, obj, replace in autoscale_agent.objects("lab", auto):
        admin.put_object(path, obj, replace=replace)
    state = ClusterState(cluster="lab", kubeconfig=str(api.kubeconfig), autoscale=auto)
    out: dict = {}
    assert _agent_status(out, state, 5) is None and "written no status yet" in out["warning"]

    meta = {"version": "0.1.0", "build": "b1", "host": "cp", "credential_id": "c1", "error": None}
    autoscale_agent.write_status(admin, meta, {"at": "2026-12-06T10:00:00Z", "decisions": []}, [])
    out = {}
    assert _agent_status(out, state, 5) == {"at": "2026-12-06T10:00:00Z", "decisions": []}
    assert out["warning"] is None and out["agent"]["build"] == "b1"

    autoscale_agent.write_status(admin, {**meta, "error": "HTTP 403: nodes is forbidden"}, None, [])
    out = {}
    _agent_status(out, state, 5)
    assert (
        "last round failed: HTTP 403" in out["warning"]
        and "journalctl -u stackspray-autoscaler" in out["warning"]
    )

    autoscale_agent.write_status(admin, {**meta, "build": "b0"}, None, [])
    out = {}
    _agent_status(out, state, 5)
    assert "runs build b0, autoscale.enable installed b1" in out["warning"]

    cm = f"{autoscale_agent.CM_PATH}/{autoscale_agent.STATUS}"
    admin.patch_object(
        cm, {"metadata": {"annotations": {autoscale_agent.LAST_UPDATED: "2026-01-01T00:00:00Z"}}}
    )
    out = {}
    _agent_status(out, state, 5)
    assert "the agent is silent: its status was last written" in out["warning"]


@pytest.mark.parametrize(
    ("kubelet", "uncordoned"),
    [("1.34.7", True), ("1.31.0", False)],
    ids=["within-the-skew-takes-pods", "beyond-the-skew-stays-cordoned"],
)
def test_a_worker_an_upgrade_left_behind_is_uncordoned_by_the_agent_only_within_the_skew(
    world, tmp_path, kubelet, uncordoned
):
    """The agent has no Kubespray to upgrade a woken worker that missed an upgrade while shelved:
    within Kubernetes' version skew it takes pods as it is (and says what upgrades it), beyond it
    it stays cordoned and no round tries to finish its wake again."""
    cloud, api, names = world
    admin = Kube(api.kubeconfig)
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "kube-apiserver").write_text("1.35.2\n")
    worker = next(n for n in names if "workers" in n)
    (versions / worker).write_text(kubelet + "\n")
    api.store.config["versions_dir"] = str(versions)
    admin.cordon(worker)  # as an interrupted wake leaves it: ACTIVE, cordoned by stackspray
    auto = Autoscale(groups={"workers": AutoscaleGroup(0, 2, 30.0, 3600.0)}, scale_down_delay=3600.0)
    conf = _agent_kubeconfig(api, admin, tmp_path, auto)
    autoscale_agent.write_upgrade_behind(admin, [worker])
    autoscale_agent.run("lab", conf, home=tmp_path / "node", rounds=1, api_for=lambda _f: (cloud, "c"))
    st = autoscale_agent.read_status(admin)
    assert st is not None and st.error is None, st
    node = admin.node(worker)
    assert (not node.unschedulable, node.scaling is None) == (uncordoned, uncordoned), node
    woke = [e for e in st.events if e.get("node") == worker and e.get("action") == "unshelve"]
    if uncordoned:
        assert len(woke) == 1 and "within the version skew policy" in woke[0]["detail"], st.events
        assert "`invoke upgrade --to 1.35.2` upgrades it" in woke[0]["detail"]
    else:
        assert woke == [], st.events
        decided = {d["node"]: d["action"] for d in st.last_round["decisions"] if d.get("node")}
        assert decided[worker] == "noop", st.last_round
