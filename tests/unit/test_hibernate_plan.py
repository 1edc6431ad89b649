"""hibernate's and wake's planners, table-driven: each fixture in fixtures/hibernate/ gives the
nodes as observed and what the state remembers, and either every step expected (action, node, a
part of its reason) in order, or the refusal's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackspray.cluster_state import ClusterState, Hibernation
from stackspray.hibernate_plan import (
    HibernateError,
    NodeView,
    hibernated_refusal,
    plan_hibernate,
    plan_wake,
)

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "hibernate").glob("*.json"))


def _plan(doc: dict):
    nodes = [NodeView(**n) for n in doc["nodes"]]
    record = Hibernation(**doc["record"]) if doc.get("record") else None
    if doc["command"] == "hibernate":
        return plan_hibernate(
            nodes,
            record,
            backups=doc["backups"],
            agent=doc["agent"],
            rotation_pending=doc.get("rotation_pending", False),
        )
    return plan_wake(nodes, record, want=doc.get("want"), agent=doc.get("agent", False))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_plan(fixture):
    doc = json.loads(fixture.read_text())
    if "error" in doc:
        with pytest.raises(HibernateError) as refused:
            _plan(doc)
        assert doc["error"] in str(refused.value)
        return
    steps = _plan(doc)
    got = [(s.action, s.node) for s in steps]
    assert got == [(a, n) for a, n, _ in doc["expect"]]
    for step, (_, _, reason) in zip(steps, doc["expect"], strict=True):
        assert reason in step.reason, step


def test_the_fixtures_cover_both_commands_and_their_refusals():
    docs = [json.loads(f.read_text()) for f in FIXTURES]
    for command in ("hibernate", "wake"):
        assert sum(d["command"] == command and "expect" in d for d in docs) >= 4
        assert sum(d["command"] == command and "error" in d for d in docs) >= 2


def test_the_control_plane_sleeps_last_and_wakes_first():
    nodes = [NodeView("c-workers-1", "ACTIVE"), NodeView("c-control-plane-1", "ACTIVE", control_plane=True)]
    shelves = [
        s.node for s in plan_hibernate(nodes, None, backups=False, agent=False) if s.action == "shelve"
    ]
    assert shelves == ["c-workers-1", "c-control-plane-1"]
    asleep = [NodeView(n.name, "SHELVED_OFFLOADED", n.control_plane) for n in nodes]
    record = Hibernation("hibernated", "x", ["c-workers-1"])
    wakes = [s.node for s in plan_wake(asleep, record) if s.action == "unshelve"]
    assert wakes == ["c-control-plane-1", "c-workers-1"]


def test_the_refusal_names_the_state_and_the_way_out():
    state = ClusterState(cluster="lab", hibernation=Hibernation("hibernated", "2026-12-04T19:00:00Z"))
    why = hibernated_refusal(state, "scale")
    assert "hibernated" in why and "invoke wake --cluster lab" in why and "scale" in why
    state.hibernation.phase = "hibernating"
    assert "invoke hibernate --cluster lab` again" in hibernated_refusal(state, "scale")
    state.hibernation = None
    assert hibernated_refusal(state, "scale") is None
