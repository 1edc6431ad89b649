"""The stand-in's Deployment, ReplicaSet and garbage-collector controllers (controllers.py, run by
store.py's Store): a Deployment gets a ReplicaSet and its pods, an evicted pod is replaced and
scheduled elsewhere, a scale-down removes unscheduled pods first, a delete cascades."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from stackspray_sandbox.standins.kube_api import controllers
from stackspray_sandbox.standins.kube_api import store as store_module
from stackspray_sandbox.standins.kube_api.store import Store

MACHINE = {"vcpus": 2, "ram_mb": 6144, "gpus": 0}


@pytest.fixture
def store(tmp_path):
    config = {
        "state_file": str(tmp_path / "state.json"),
        "nodes": [
            {"name": "cp-1", "ip": "10.0.0.1", "control_plane": True, "machine": MACHINE},
            {"name": "w-1", "ip": "10.0.0.2", "machine": MACHINE},
            {"name": "w-2", "ip": "10.0.0.3", "machine": MACHINE},
        ],
    }
    s = Store(config)
    s.ready = {"cp-1": True, "w-1": True, "w-2": True}
    return s


def deployment(store: Store, name: str, replicas: int, cpu: str = "500m") -> dict:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}]
                },
            },
        },
    }
    return store.put_object(("apps/v1", "deployments", "default", name), body, None)


def settle(store: Store) -> None:
    for _ in range(3):
        store.sync_controllers()
        store.schedule_pending()


def pods_of_app(store: Store, app: str) -> list[dict]:
    return [p for p in store.pods.values() if (p["metadata"].get("labels") or {}).get("app") == app]


def test_a_deployment_gets_a_replica_set_and_scheduled_pods(store):
    d = deployment(store, "web", 3)
    settle(store)
    sets = store.owned("replicasets", "default", d["metadata"]["uid"])
    assert len(sets) == 1
    (rs_key, rs) = sets[0]
    h = rs["metadata"]["labels"][controllers.TEMPLATE_HASH_LABEL]
    assert rs_key[3] == f"web-{h}" and len(h) >= 8 and set(h) <= set(controllers.ALPHANUMS)
    pods = pods_of_app(store, "web")
    assert len(pods) == 3
    assert all(p["metadata"]["name"].startswith(f"web-{h}-") for p in pods)
    assert all(controllers.controller_uid(p) == rs["metadata"]["uid"] for p in pods)
    assert {p["spec"]["nodeName"] for p in pods} <= {"w-1", "w-2"}, "the control plane is tainted"
    status = store.object_view(
        "apps/v1", "deployments", store.objects[("apps/v1", "deployments", "default", "web")]
    )["status"]
    assert status["replicas"] == status["readyReplicas"] == status["updatedReplicas"] == 3
    assert status["conditions"][0] == {
        "type": "Available",
        "status": "True",
        "reason": "MinimumReplicasAvailable",
        "message": "Deployment has minimum availability.",
    }


def test_an_evicted_pod_is_replaced_on_a_node_that_can_take_it(store):
    deployment(store, "web", 2)
    settle(store)
    store.nodes["w-1"]["spec"]["unschedulable"] = True  # cordoned, as a drain does first
    for p in [p for p in pods_of_app(store, "web") if p["spec"]["nodeName"] == "w-1"]:
        store.evict("default", p["metadata"]["name"])
    settle(store)
    pods = pods_of_app(store, "web")
    assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} == {"w-2"}


def test_pods_that_fit_nowhere_stay_pending_with_the_schedulers_reason(store):
    deployment(store, "big", 1, cpu="8")
    settle(store)
    (pod,) = pods_of_app(store, "big")
    view = store.pod_view(pod)
    assert view["status"]["phase"] == "Pending"
    cond = view["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "Unschedulable")
    assert "Insufficient cpu" in cond["message"]


def test_scaling_down_removes_unscheduled_pods_first(store):
    d = deployment(store, "web", 5, cpu="900m")  # 2 fit per worker: one stays Pending
    settle(store)
    assert sum(1 for p in pods_of_app(store, "web") if not p["spec"].get("nodeName")) == 1
    d["spec"]["replicas"] = 4
    settle(store)
    pods = pods_of_app(store, "web")
    assert len(pods) == 4 and all(p["spec"].get("nodeName") for p in pods)


def test_a_new_template_gets_a_new_replica_set_and_the_old_one_goes_to_zero(store):
    d = deployment(store, "web", 2)
    settle(store)
    old = {p["metadata"]["name"] for p in pods_of_app(store, "web")}
    d["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}
    settle(store)
    sets = dict(store.owned("replicasets", "default", d["metadata"]["uid"]))
    assert sorted(rs["spec"]["replicas"] for rs in sets.values()) == [0, 2]
    assert sorted(rs["metadata"]["annotations"][controllers.REVISION] for rs in sets.values()) == ["1", "2"]
    assert not old & {p["metadata"]["name"] for p in pods_of_app(store, "web")}


@pytest.mark.parametrize("orphan", [False, True])
def test_deleting_a_deployment_cascades_or_orphans(store, orphan):
    d = deployment(store, "web", 2)
    settle(store)
    del store.objects[("apps/v1", "deployments", "default", "web")]
    store.cascade(d["metadata"]["uid"], "default", orphan=orphan)
    settle(store)
    sets = [k for k in store.objects if k[1] == "replicasets"]
    if orphan:
        assert len(sets) == 1 and len(pods_of_app(store, "web")) == 2
        rs = store.objects[sets[0]]
        assert not rs["metadata"]["ownerReferences"]
    else:
        assert not sets and not pods_of_app(store, "web")


def test_pods_to_delete_ranks_as_active_pods():
    pods = [
        {
            "metadata": {"name": "old-ready", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "a"},
        },
        {
            "metadata": {"name": "new-ready", "creationTimestamp": "2026-01-02T00:00:00Z"},
            "spec": {"nodeName": "a"},
        },
        {
            "metadata": {"name": "on-down", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "b"},
        },
        {"metadata": {"name": "pending", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}},
    ]
    order = [p["metadata"]["name"] for p in controllers.pods_to_delete(pods, 4, {"a": True, "b": False})]
    assert order == ["pending", "on-down", "new-ready", "old-ready"]


def test_pod_names_and_hashes_have_the_upstream_form():
    name = controllers.pod_name("web-5d8f9c7b6", random.Random(1))
    assert name.startswith("web-5d8f9c7b6-") and len(name.rsplit("-", 1)[1]) == 5
    assert controllers.template_hash({"a": 1}) == controllers.template_hash({"a": 1})
    assert controllers.template_hash({"a": 1}) != controllers.template_hash({"a": 2})
    assert controllers.template_hash({"a": 1}) != controllers.template_hash({"a": 1}, collision_count=1)


def test_a_daemonsets_status_counts_only_the_nodes_that_should_run_it(store):
    """DaemonSets kept with the other objects are counted as the DaemonSet controller counts them:
    kube-proxy tolerates everything (every node); one selecting workers skips the control plane."""
    proxy = store.object_view(
        "apps/v1", "daemonsets", store.objects[("apps/v1", "daemonsets", "kube-system", "kube-proxy")]
    )
    assert proxy["status"]["desiredNumberScheduled"] == 3
    body = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "x"}]},
            },
        },
    }
    agent = store.object_view(
        "apps/v1", "daemonsets", store.put_object(("apps/v1", "daemonsets", "default", "agent"), body, None)
    )
    assert agent["status"]["desiredNumberScheduled"] == 2, (
        "the control plane's NoSchedule taint is not tolerated"
    )
    store.ready["w-2"] = False
    agent = store.object_view(
        "apps/v1", "daemonsets", store.objects[("apps/v1", "daemonsets", "default", "agent")]
    )
    # A NotReady node gets the unreachable taints: the controller's daemon-pod tolerations cover
    # the NoExecute one, not NoSchedule, so it is left out (NodeShouldRunDaemonPod's shouldRun);
    # kube-proxy, which tolerates every taint, still counts it.
    assert (agent["status"]["desiredNumberScheduled"], agent["status"]["numberReady"]) == (1, 1)
    proxy = store.object_view(
        "apps/v1", "daemonsets", store.objects[("apps/v1", "daemonsets", "kube-system", "kube-proxy")]
    )
    assert (proxy["status"]["desiredNumberScheduled"], proxy["status"]["numberReady"]) == (3, 2)


def test_a_daemonset_rollout_advances_whether_or_not_a_client_looks(tmp_path, monkeypatch):
    """The DaemonSet controller runs on its own (run_daemonset_controller), as the real one does
    (woken by pod and node events): a rollout left unwatched for a few seconds has moved on by
    then. A controller that acted only when a client read the object (as this stand-in's did)
    would make a slowly polling client's rollout slower — one node per look — and a fast poller's
    faster than the cluster's."""
    nodes = [{"name": "cp-1", "ip": "10.0.0.1", "control_plane": True, "machine": MACHINE}] + [
        {"name": f"w-{i}", "ip": f"10.0.0.{i + 1}", "machine": MACHINE} for i in range(1, 4)
    ]
    monkeypatch.setattr(store_module, "POD_STARTUP", 0.3)  # the same rules, faster
    config = {"state_file": str(tmp_path / "state.json"), "nodes": nodes, "cloud_conf": "[Global]\n"}
    s = Store({**config, "tick": 0.1})
    s.apply_cloud_config()
    s.ready = {n["name"]: True for n in nodes}
    w = s.workloads[("daemonsets", "csi-cinder-nodeplugin")]
    desired = s.workload_view(w)["status"]["desiredNumberScheduled"]
    assert desired >= 3
    for pod in w["pods"].values():
        pod["since"] -= 10  # every pod has been available for a while
    threading.Thread(target=s.run_daemonset_controller, daemon=True).start()
    merged = {"metadata": w["metadata"], "spec": json.loads(json.dumps(w["spec"]))}
    merged["spec"]["template"]["metadata"]["annotations"] = {"restartedAt": "now"}
    with s.lock:
        s.patch_workload(w, merged)
    # maxUnavailable 1: one node at a time, each POD_STARTUP seconds; nobody reads meanwhile.
    time.sleep(desired * (store_module.POD_STARTUP + store_module.DAEMONSET_RESYNC) + 1.0)
    status = s.workload_view(w)["status"]
    assert status["updatedNumberScheduled"] == desired, status
    assert status["numberAvailable"] == desired, status


def test_pods_on_an_unreachable_node_are_evicted_after_their_toleration_and_made_again(store):
    """DefaultTolerationSeconds gives every pod 300 s (here the Kubespray variable's 30); the taint
    eviction controller deletes it when they have passed on a NotReady node, its ReplicaSet makes
    a new one, which waits Pending while no node is Ready; DaemonSet and static pods stay."""
    store.config["default_unreachable_toleration_seconds"] = "30"
    deployment(store, "web", 2)
    settle(store)
    pods = pods_of_app(store, "web")
    tol = {t["key"]: t.get("tolerationSeconds") for t in pods[0]["spec"]["tolerations"]}
    assert tol == {"node.kubernetes.io/not-ready": 300, "node.kubernetes.io/unreachable": 30}
    store.add_system_pod("calico-node-abcde", "w-1", owner=("DaemonSet", "calico-node"))
    store.ready = {"cp-1": True, "w-1": False, "w-2": False}
    down = store_module.now()
    store.ready_since = {"w-1": down, "w-2": down}
    t0 = store_module._epoch(down)
    store.evict_from_unreachable_nodes(t0 + 29)
    assert {p["metadata"]["name"] for p in pods_of_app(store, "web")} == {p["metadata"]["name"] for p in pods}
    store.evict_from_unreachable_nodes(t0 + 31)
    settle(store)
    again = pods_of_app(store, "web")
    assert len(again) == 2 and not {p["metadata"]["name"] for p in again} & {
        p["metadata"]["name"] for p in pods
    }
    assert all(not p["spec"].get("nodeName") for p in again)  # nowhere Ready to go (cp-1 is tainted)
    assert ("kube-system", "calico-node-abcde") in store.pods
    reasons = [o["reason"] for k, o in store.objects.items() if k[1] == "events"]
    assert reasons.count("TaintManagerEviction") == 2


def test_a_pod_that_tolerates_the_taint_for_ever_is_never_evicted(store):
    body = {
        "metadata": {"name": "keeper"},
        "spec": {
            "nodeName": "w-1",
            "containers": [{"name": "c", "image": "x"}],
            "tolerations": [{"operator": "Exists"}],
        },
    }
    store.store_pod("default", body)
    store.ready = {"cp-1": True, "w-1": False, "w-2": True}
    store.ready_since = {"w-1": "2026-01-01T00:00:00Z"}
    store.evict_from_unreachable_nodes()
    assert ("default", "keeper") in store.pods
