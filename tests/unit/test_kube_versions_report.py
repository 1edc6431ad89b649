"""What status and verify say of the cluster's Kubernetes versions, read from the API (the
in-process stand-in, whose versions the Kubespray stand-in's files set): the API server's
version, every kubelet, and verify's judgement — the same version passes, one left behind within
the skew warns, one more than three minors behind fails."""

from __future__ import annotations

import kube_standin
import pytest

from stackspray.cluster import _versions
from stackspray.cluster_state import ClusterState, Hibernation
from stackspray.state import ClusterDir
from stackspray.verify import VerifyResult, _check_versions, _read_kube

NODES = ["lab-control-plane-1", "lab-workers-1", "lab-workers-2", "lab-workers-3"]


@pytest.fixture
def api(tmp_path):
    nodes = [
        {"name": n, "ip": "127.0.0.1", "control_plane": "control-plane" in n, "labels": {}, "machine": {}}
        for n in NODES
    ]
    served = kube_standin.start(tmp_path / "api", nodes)
    versions = tmp_path / "versions"
    versions.mkdir()
    for name, v in (
        ("kube-apiserver", "1.35.4"),
        (NODES[0], "1.35.4"),
        (NODES[1], "1.34.7"),
        (NODES[2], "1.31.0"),
    ):
        (versions / name).write_text(v + "\n")
    served.store.config["versions_dir"] = str(versions)
    yield served
    kube_standin.stop(served)


def test_status_reports_the_server_and_every_kubelet_and_who_is_behind(api, tmp_path):
    state = ClusterState(cluster="lab", kubeconfig=str(api.kubeconfig), upgrade_behind=[NODES[1]])
    got = _versions(state)
    assert got["server"] == "v1.35.4" and got["note"] is None and got["behind"] == [NODES[1]]
    assert got["kubelets"] == {
        NODES[0]: "v1.35.4",
        NODES[1]: "v1.34.7",
        NODES[2]: "v1.31.0",
        NODES[3]: "v1.35.4",
    }
    state.hibernation = Hibernation("hibernated", "x")
    assert _versions(state)["note"] == "not read: the cluster is hibernated"


def test_status_says_when_it_cannot_know(tmp_path):
    dead = tmp_path / "kubeconfig"
    dead.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "current-context: c\n"
    )
    got = _versions(ClusterState(cluster="lab", kubeconfig=str(dead)))
    assert got["server"] is None and got["note"].startswith("not read:")


def test_verify_passes_the_same_warns_within_the_skew_and_fails_beyond(api, tmp_path):
    cdir = ClusterDir("lab", tmp_path / "inv")
    cdir.save(ClusterState(cluster="lab", kubeconfig=str(api.kubeconfig), upgrade_behind=[NODES[1]]))
    result = VerifyResult("lab")
    _check_versions(cdir, _read_kube(str(api.kubeconfig)), result)
    rows = result.results["kubernetes versions"]
    outcome = {next(n for n in NODES if check.startswith(n + " ")): o for check, o in rows.items()}
    assert outcome == {NODES[0]: "PASS", NODES[1]: "WARN", NODES[2]: "FAIL", NODES[3]: "PASS"}
    assert any("left behind by an upgrade" in w for w in result.warnings.values())
    assert any("more than 3 minor releases behind" in f for f in result.failures.values())
    assert result.nodes == [], "the versions row is not a node"
