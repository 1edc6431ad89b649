"""The soft-scaling planner, table-driven from tests/unit/scale_plans/*.json, and flag validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackspray.scale import NodeView, Request, ScaleError, make_request, plan_scale, su_per_hour

CASES = sorted((Path(__file__).parent / "scale_plans").glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_plan(path):
    case = json.loads(path.read_text())
    nodes = [NodeView(**n) for n in case["nodes"]]
    r = case["request"]
    req = Request(
        shelve=r.get("shelve"),
        unshelve=r.get("unshelve"),
        workers=r.get("workers"),
        nodes=tuple(r.get("nodes", ())),
    )
    if "error" in case:
        with pytest.raises(ScaleError) as err:
            plan_scale(nodes, req)
        assert case["error"] in str(err.value)
        return
    steps = plan_scale(nodes, req)
    assert {s.node: s.action for s in steps} == case["expect"], case["description"]
    assert [s.node for s in steps] == [s.node for s in steps if s.node.startswith("c-control")] + [
        s.node for s in steps if not s.node.startswith("c-control")
    ], "control plane first"
    assert su_per_hour(nodes) == case["su_before"]
    assert su_per_hour(nodes, steps) == case["su_after"]


def test_cases_exist():
    assert len(CASES) >= 10


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({"shelve": True}, Request(shelve="all")),
        ({"unshelve": True}, Request(unshelve="all")),
        ({"shelve": "3"}, Request(shelve=3)),
        ({"workers": 0}, Request(workers=0)),
        ({"unshelve": True, "nodes": "a, b"}, Request(unshelve="all", nodes=("a", "b"))),
    ],
)
def test_make_request(flags, expected):
    assert make_request(**flags) == expected


@pytest.mark.parametrize(
    "flags, message",
    [
        ({}, "exactly one of --shelve [N], --unshelve [N] or --workers N"),
        ({"shelve": True, "workers": 2}, "got --shelve and --workers"),
        ({"shelve": "x"}, "--shelve: expected a number of workers"),
        ({"unshelve": "0"}, "at least 1"),
        ({"workers": -1}, "0 or more"),
        ({"workers": 2, "nodes": "a"}, "--nodes goes with --shelve or --unshelve"),
        ({"shelve": "2", "nodes": "a"}, "either a number of workers or --nodes"),
    ],
)
def test_make_request_refuses(flags, message):
    with pytest.raises(ScaleError) as err:
        make_request(**flags)
    assert message in str(err.value)
