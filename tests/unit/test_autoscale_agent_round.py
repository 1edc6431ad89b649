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
from stackspray.cluster_state import Autoscale, AutoscaleGroup
from stackspray.kube import Kube, KubeError


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


def _agent_kubeconfig(api, admin: Kube, tmp_path, auto: Autoscale):
    for path, obj, replace in autoscale_agent.objects("lab", auto):
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
    conf = _agent_kubeconfig(api, admin, tmp_path, auto)
    autoscale_agent.run(
        "lab", conf, home=tmp_path / "node", rounds=1, build="b1", api_for=lambda _f: (cloud, "cred-1")
    )
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
