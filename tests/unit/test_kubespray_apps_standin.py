"""The API stand-in runs kube-system's workloads as Kubespray v2.31.0's kubernetes-apps roles
apply them (CoreDNS with its dns-autoscaler and budget, NodeLocal DNSCache, calico-kube-controllers),
their pods made by the controllers and placed by the scheduler — so the autoscaler, drains and
shelves meet them on workers, as on a real cluster."""

from __future__ import annotations

import time

import kube_standin
import pytest
from stackspray_sandbox.standins.kube_api import scheduler
from stackspray_sandbox.standins.kube_api.store import COREDNS_AFFINITY

from stackspray.kube import Kube

M = {"vcpus": 2, "ram_mb": 6144}
APPS = {"dns_min_replicas": 2, "coredns_pdb": True, "nodelocaldns": True, "calico": True}


@pytest.fixture
def api(tmp_path):
    nodes = [
        {"name": "c-control-plane-1", "ip": "127.0.0.1", "control_plane": True, "labels": {}, "machine": M},
        {"name": "c-workers-1", "ip": "127.0.0.2", "labels": {}, "machine": M},
        {"name": "c-workers-2", "ip": "127.0.0.3", "labels": {}, "machine": M},
    ]
    standin = kube_standin.start(tmp_path / "api", nodes, {"kubespray_apps": APPS})
    standin.store.ready.update(dict.fromkeys((n["name"] for n in nodes), True))
    yield standin
    kube_standin.stop(standin)


def _kube_system(kube: Kube, want: int) -> list[dict]:
    deadline = time.monotonic() + 10
    pods: list[dict] = []
    while time.monotonic() < deadline:
        pods = [
            p
            for p in kube.list_json("pods")
            if p["metadata"]["namespace"] == "kube-system"
            and p["metadata"]["name"].startswith(
                ("coredns-", "dns-autoscaler-", "calico-kube-", "nodelocaldns-")
            )
        ]
        if len(pods) == want and all(p["spec"].get("nodeName") for p in pods):
            return pods
        time.sleep(0.1)
    raise AssertionError(
        f"{len(pods)} of {want} Kubespray pods bound: {[p['metadata']['name'] for p in pods]}"
    )


def test_kubesprays_kube_system_workloads_run_spread_and_prioritized(api):
    kube = Kube(api.kubeconfig)
    pods = _kube_system(kube, 2 + 1 + 1 + 3)  # coredns x2, dns-autoscaler, calico-kube-controllers, DS x3
    where: dict[str, list[str]] = {}
    for p in pods:
        app = p["metadata"]["labels"]["k8s-app"]
        where.setdefault(app, []).append(p["spec"]["nodeName"])
    # CoreDNS's preferred anti-affinity puts its two replicas on two nodes.
    assert len(set(where["kube-dns"])) == 2, where
    assert sorted(where["node-local-dns"]) == ["c-control-plane-1", "c-workers-1", "c-workers-2"]
    by_app = {p["metadata"]["labels"]["k8s-app"]: p for p in pods}
    assert by_app["kube-dns"]["spec"]["priority"] == 2000000000
    assert by_app["node-local-dns"]["spec"]["priority"] == 2000001000
    (owner,) = by_app["kube-dns"]["metadata"]["ownerReferences"]
    assert owner["kind"] == "ReplicaSet" and owner["name"].startswith("coredns-")
    budgets = {b["metadata"]["name"]: b for b in kube.list_json("poddisruptionbudgets")}
    assert budgets["coredns"]["spec"]["maxUnavailable"] == "30%"
    assert budgets["coredns"]["status"]["disruptionsAllowed"] == 1


def test_a_drained_worker_s_kube_system_pods_come_back_elsewhere(api):
    kube = Kube(api.kubeconfig)
    pods = _kube_system(kube, 7)
    busy = next(
        p["spec"]["nodeName"]
        for p in pods
        if p["metadata"]["labels"]["k8s-app"] == "kube-dns" and p["spec"]["nodeName"] != "c-control-plane-1"
    )
    kube.cordon(busy)
    result = kube.drain(busy, timeout=20)
    assert result.ok, result.blocked
    moved = _kube_system(kube, 7)
    deployments = [p for p in moved if p["metadata"]["labels"]["k8s-app"] != "node-local-dns"]
    assert all(p["spec"]["nodeName"] != busy for p in deployments), [
        (p["metadata"]["name"], p["spec"]["nodeName"]) for p in deployments
    ]


def test_the_scheduler_prefers_a_node_without_the_pods_a_pod_avoids():
    pod = {
        "metadata": {"namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "affinity": COREDNS_AFFINITY,
        },
    }
    twin = {"metadata": {"namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}}}
    stranger = {"metadata": {"namespace": "default", "labels": {"k8s-app": "kube-dns"}}}
    assert scheduler.anti_affinity_penalty(pod, [twin, twin]) == 200
    assert scheduler.anti_affinity_penalty(pod, [stranger]) == 0
    nodes = [
        {"metadata": {"name": n}, "status": {"allocatable": {"cpu": cpu, "memory": "4Gi"}}}
        for n, cpu in (("big", "8"), ("small", "2"))
    ]
    # The node with more free CPU loses to the one without a twin.
    assert scheduler.choose(pod, nodes, {"big": [twin]}) == ("small", "")
    assert scheduler.choose(pod, nodes, {}) == ("big", "")
