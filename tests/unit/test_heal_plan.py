"""heal's planner, table-driven: each fixture in fixtures/heal/ gives the nodes as observed, the
groups' settings, heal's memory and the time, and the step expected for every node (its action
and a part of its reason)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackspray.heal_plan import Attempt, NodeHealth, NodeMemory, backoff_after, plan_heal
from stackspray.spec import HealSpec

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "heal").glob("*.json"))


def _memory(raw: dict) -> NodeMemory:
    attempts = [Attempt(**a) for a in raw.get("attempts", [])]
    return NodeMemory(**{**raw, "attempts": attempts})


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_plan(fixture):
    doc = json.loads(fixture.read_text())
    steps = plan_heal(
        [NodeHealth(**n) for n in doc["nodes"]],
        {g: HealSpec(**s) for g, s in doc.get("settings", {}).items()},
        {n: _memory(m) for n, m in doc.get("memory", {}).items()},
        doc["now"],
        doc.get("blocked"),
    )
    assert [s.node for s in steps] == [n["name"] for n in doc["nodes"]]
    for step, (node, action, reason) in zip(steps, doc["expect"], strict=True):
        assert (step.node, step.action) == (node, action), step
        assert reason in step.reason, step


def test_every_fixture_is_a_plan_with_an_expectation_per_node():
    assert len(FIXTURES) >= 10
    for f in FIXTURES:
        doc = json.loads(f.read_text())
        assert len(doc["expect"]) == len(doc["nodes"]), f.name


def test_max_unhealthy_and_backoff_arithmetic():
    assert [HealSpec(max_unhealthy="40%").max_unhealthy_of(n) for n in (1, 2, 3, 5, 10)] == [1, 1, 1, 2, 4]
    assert HealSpec(max_unhealthy="2").max_unhealthy_of(3) == 2
    assert HealSpec(max_unhealthy="0%").max_unhealthy_of(10) == 0
    assert [backoff_after(n) for n in (1, 2, 3, 4, 9)] == [300, 600, 1200, 1800, 1800]
