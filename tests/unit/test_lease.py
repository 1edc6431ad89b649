"""The node Lease (lease.py) against the API stand-in: one holder at a time across actors, who
holds it said while waiting, expiry as client-go's leader election reads it, release."""

from __future__ import annotations

import base64
import threading
import time

import kube_standin
import pytest

from stackspray import lease
from stackspray.kube import Kube, KubeError


@pytest.fixture
def api(tmp_path):
    s = kube_standin.start(tmp_path / "api")
    yield s
    kube_standin.stop(s)


def test_one_holder_at_a_time_and_release_frees_it(api):
    kube = Kube(api.kubeconfig)
    a, b = lease.NodeLease(kube, "a@x:1"), lease.NodeLease(kube, "b@y:2")
    assert a.try_acquire() is None
    assert a.try_acquire() is None  # renewing its own
    held = b.try_acquire()
    assert held is not None and held.identity == "a@x:1" and held.acquired and held.renewed
    a.release()
    assert b.try_acquire() is None
    assert a.try_acquire().identity == "b@y:2"
    got = kube_standin_lease(api)
    assert got["spec"]["holderIdentity"] == "b@y:2" and got["spec"]["leaseTransitions"] == 1


def kube_standin_lease(api) -> dict:
    return api.store.objects[("coordination.k8s.io/v1", "leases", "kube-system", lease.NAME)]


def test_a_lease_not_renewed_for_its_duration_is_taken(api):
    kube = Kube(api.kubeconfig)
    a, b = lease.NodeLease(kube, "a@x:1", duration=1), lease.NodeLease(kube, "b@y:2", duration=1)
    assert a.try_acquire() is None
    assert b.try_acquire() is not None  # first seen now: not expired for b yet
    time.sleep(1.3)
    assert b.try_acquire() is None  # a never renewed: b takes it


def _race(actors: list) -> list:
    """Every actor tries to take the Lease at the same moment; their answers."""
    results: list = [None] * len(actors)
    go = threading.Barrier(len(actors))

    def take(i: int) -> None:
        go.wait()
        results[i] = actors[i].try_acquire()

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(actors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_actors_taking_a_free_lease_at_once_get_one_holder(api):
    kube = Kube(api.kubeconfig)
    for round_ in range(4):
        actors = [lease.NodeLease(kube, f"r{round_}-{i}@h:{i}") for i in range(3)]
        results = _race(actors)
        winners = [i for i, r in enumerate(results) if r is None]
        assert len(winners) == 1, results
        actors[winners[0]].release()


def test_holding_waits_for_the_holder_says_who_and_gives_up_when_told(api):
    kube = Kube(api.kubeconfig)
    said: list[str] = []
    released_at: list[float] = []
    inside = threading.Event()

    def first() -> None:
        with lease.holding(kube, "scale", lambda _m: None, wait=5):
            inside.set()
            time.sleep(0.8)
            released_at.append(time.monotonic())

    t = threading.Thread(target=first)
    t.start()
    inside.wait(5)
    with pytest.raises(lease.LeaseBusy, match=r"being changed by scale@.*kubectl -n kube-system get lease"):
        with lease.holding(kube, "autoscaler", said.append, wait=0.5):
            pass
    with lease.holding(kube, "autoscaler", said.append, wait=10):
        entered = time.monotonic()
    t.join()
    assert released_at and entered >= released_at[0]
    assert any("held by scale@" in m for m in said), said
    assert kube_standin_lease(api)["spec"].get("holderIdentity") is None  # released


def test_an_account_without_the_lease_in_its_role_is_refused(api, tmp_path):
    admin = Kube(api.kubeconfig)
    core = admin.core

    core.create_namespaced_service_account("kube-system", {"metadata": {"name": "nobody"}})
    core.create_namespaced_secret(
        "kube-system",
        {
            "metadata": {
                "name": "nobody-token",
                "annotations": {"kubernetes.io/service-account.name": "nobody"},
            },
            "type": "kubernetes.io/service-account-token",
        },
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        data = core.read_namespaced_secret("nobody-token", "kube-system").data or {}
        if data.get("token"):
            break
        time.sleep(0.2)
    token = base64.b64decode(data["token"]).decode()
    kube = Kube(api.kubeconfig_for(token, tmp_path / "nobody.conf"))
    with pytest.raises(
        KubeError,
        match=r'leases.coordination.k8s.io "stackspray-nodes" is forbidden: User '
        r'"system:serviceaccount:kube-system:nobody" cannot get resource "leases"',
    ):
        lease.NodeLease(kube, "nobody@h:1").try_acquire()
