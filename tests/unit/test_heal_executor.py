"""heal's executor on the fake cloud, with the Node API as a small double whose Nodes follow
their servers: a rebooted worker that comes back is done after one soft reboot, a shelved one is
never touched, and a worker that never comes back climbs the ladder — both reboots recorded as
failed — to a replacement (refused here with the reason: its spec file is gone)."""

from __future__ import annotations

import functools

import pytest
from stackspray_sandbox.fakecloud import FakeCloud
from test_engine_on_fake_cloud import create, quiet, write_spec

from stackspray import autoscale, heal_check
from stackspray.cluster_state import Autoscale, HealSettings
from stackspray.errors import StackSprayError
from stackspray.heal import heal
from stackspray.spec import HealSpec
from stackspray.state import ClusterDir


class Nodes:
    """Nodes of the cluster's servers: Ready while `up` says so; a node in `recovers` comes up
    when its server has been rebooted and is ACTIVE again."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.up: dict[str, bool] = {}
        self.recovers: set[str] = set()

    def list_json(self, what: str) -> list[dict]:
        assert what == "nodes"
        out = []
        for s in self.cloud.resources("server"):
            name = s["name"]
            rebooted = any(op in ("SOFT", "HARD") for op, _ in self.cloud.calls) and name in self.recovers
            if rebooted and s["status"] == "ACTIVE" and s["task_state"] is None:
                self.up[name] = True
            ready = self.up.get(name, True) and s["status"] == "ACTIVE"
            cond = {
                "type": "Ready",
                "status": "True" if ready else "Unknown",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
            out.append({"metadata": {"name": name, "annotations": {}}, "status": {"conditions": [cond]}})
        return out


@pytest.fixture
def cluster(tmp_path):
    cloud = FakeCloud()
    root = tmp_path / "inventories"
    spec = write_spec(tmp_path, workers=3)
    spec.write_text(
        spec.read_text().replace("    count: 3\n", "    count: 3\n    heal: {reboot_timeout: 5s}\n")
    )
    create(cloud, spec, root)
    cdir = ClusterDir("lab", root)
    state = cdir.load()
    state.kubeconfig = str(tmp_path / "kubeconfig")  # what heal requires; the double answers instead
    cdir.save(state)
    return cloud, root, spec, cdir


def _server(cloud, name):
    return next(s for s in cloud.resources("server") if s["name"] == name)


def test_a_rebooted_worker_is_done_and_a_shelved_one_is_never_touched(cluster):
    cloud, root, _, cdir = cluster
    nodes = Nodes(cloud)
    cloud.server_action(_server(cloud, "lab-workers-3")["id"], "shelve")
    for _ in range(5):
        cloud.list("server")  # the shelve settles
    assert _server(cloud, "lab-workers-3")["status"] == "SHELVED_OFFLOADED"
    nodes.up["lab-workers-1"] = False
    nodes.recovers.add("lab-workers-1")
    before = len(cloud.calls)
    planned = heal("lab", root=root, dry_run=True, api=cloud, kube=nodes, progress=quiet())
    steps = {s["node"]: s["action"] for s in planned.steps}
    assert steps == {
        "lab-control-plane-1": "healthy",
        "lab-workers-1": "soft-reboot",  # NotReady since 2026-01-01: long past unhealthy_for
        "lab-workers-2": "healthy",
        "lab-workers-3": "skip",
    }
    assert not [c for c in cloud.calls[before:] if c[0] in ("SOFT", "HARD", "delete")], "a dry run acts"
    done = heal("lab", root=root, api=cloud, kube=nodes, progress=quiet())
    assert [(r["node"], r["remedy"], r["outcome"]) for r in done.remedies] == [
        ("lab-workers-1", "soft-reboot", "ok")
    ]
    acted = [c for c in cloud.calls[before:] if c[0] in ("SOFT", "HARD", "shelve", "unshelve", "delete")]
    assert acted == [("SOFT", "server")], acted
    assert _server(cloud, "lab-workers-3")["status"] == "SHELVED_OFFLOADED"
    assert cdir.load().heal == {}, "a healed node is forgotten"
    assert not done.unresolved


def test_a_worker_that_never_comes_back_climbs_the_ladder(cluster, monkeypatch):
    cloud, root, spec, cdir = cluster
    # Without the spec file the groups' settings are the defaults: a shorter reboot_timeout.
    monkeypatch.setattr(heal_check, "HealSpec", functools.partial(HealSpec, reboot_timeout=0.5))
    nodes = Nodes(cloud)
    nodes.up["lab-workers-2"] = False  # and it does not recover
    spec.unlink()
    with pytest.raises(StackSprayError, match="lab-workers-2 needs replacing.*spec"):
        heal("lab", root=root, api=cloud, kube=nodes, progress=quiet())
    mem = cdir.load().heal["lab-workers-2"]
    assert [(a.remedy, a.outcome) for a in mem.attempts] == [
        ("soft-reboot", "failed"),
        ("hard-reboot", "failed"),
    ]
    assert not mem.replacing and _server(cloud, "lab-workers-2")["status"] == "ACTIVE", "nothing deleted"


def test_a_replaced_servers_old_host_key_is_forgotten(tmp_path):
    from stackspray.inventory import forget_host_keys

    keys = (
        "10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld0000000000000000000000000000000000000000\n"
        "10.0.0.6 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeep000000000000000000000000000000000000000\n"
    )
    (tmp_path / "known_hosts").write_text(keys)
    forget_host_keys(tmp_path, ["10.0.0.5"])
    assert (tmp_path / "known_hosts").read_text().splitlines() == [keys.splitlines()[1]]
    assert not (tmp_path / "known_hosts.old").exists()


def test_the_autoscalers_round_reboots_and_reports_a_replacement_it_cannot_make(cluster):
    """heal.enable's check in the autoscaler's round (the agent's too): the same ladder, one rung
    a round, each decision an event once; the replacement is reported with the command that
    makes it, never attempted (no Kubespray there)."""
    cloud, root, _, cdir = cluster
    state = cdir.load()
    state.autoscale = Autoscale(heal={"workers": HealSettings(unhealthy_for=0, reboot_timeout=0.5)})
    cdir.save(state)
    nodes = Nodes(cloud)
    nodes.up["lab-workers-2"] = False
    rungs = []
    for _ in range(3):
        done = autoscale.heal_round("lab", cdir, cloud, nodes, quiet())
        rungs.append(([(r["remedy"], r["outcome"]) for r in done["remedies"]], done["replace"]))
    assert rungs == [
        ([("soft-reboot", "failed")], []),
        ([("hard-reboot", "failed")], []),
        ([], ["lab-workers-2"]),
    ]
    assert not any(op == "delete" for op, _ in cloud.calls), "no server is deleted by the round"
    told = [e for e in autoscale.events(cdir, 50) if e.get("action") == "heal"]
    assert [(e.get("decision"), e.get("outcome")) for e in told] == [
        ("soft-reboot", None),
        ("soft-reboot", "failed"),
        ("hard-reboot", None),
        ("hard-reboot", "failed"),
        ("replace", None),
    ]
    assert "`invoke heal --cluster lab` runs it" in told[-1]["reason"]
    again = autoscale.heal_round("lab", cdir, cloud, nodes, quiet())
    assert again["replace"] == ["lab-workers-2"]
    assert len([e for e in autoscale.events(cdir, 50) if e.get("action") == "heal"]) == 5, "told once"
