"""plan_destroy, table-driven from tests/unit/destroy_plans/*.json (what the cluster owns -> the
delete actions in dependency order, explicit no-op when nothing is left)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackspray.observe import DESTROY_KINDS
from stackspray.plan import DESTROY_ORDER, Res, plan_destroy

FIXTURES = sorted((Path(__file__).parent / "destroy_plans").glob("*.json"))


def owned(d: dict) -> dict[str, list[Res]]:
    return {
        kind: [Res(r["id"], r["name"], True, r.get("status", ""), r.get("detail", {})) for r in items]
        for kind, items in d.items()
    }


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_destroy_plan_fixture(fixture):
    case = json.loads(fixture.read_text())
    actions = plan_destroy(
        case["cluster"], owned(case["owned"]), delete_volumes=case.get("delete_volumes", False)
    )
    assert [[a.kind, a.resource, a.name] for a in actions] == case["actions"], case["description"]
    for phrase in case.get("reasons_say", []):
        assert any(phrase in a.reason for a in actions), (phrase, [a.reason for a in actions])
    for a in actions:
        assert a.reason, f"every action says why: {a}"
        if a.kind != "noop":
            assert a.detail["id"], "the executor acts on ids, not names"


def test_destroy_looks_up_and_plans_the_same_kinds():
    assert tuple(DESTROY_KINDS) == tuple(DESTROY_ORDER)


def test_destroy_plan_is_pure():
    case = json.loads((Path(__file__).parent / "destroy_plans" / "whole_cluster.json").read_text())
    o = owned(case["owned"])
    assert plan_destroy("demo", o) == plan_destroy("demo", o)
