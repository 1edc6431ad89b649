"""The planner, table-driven from tests/unit/plans/*.json (spec + observed -> changes, no-ops)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackspray.plan import Observed, Res, plan, summary
from stackspray.spec import parse_spec

FIXTURES = sorted((Path(__file__).parent / "plans").glob("*.json"))


def res(d: dict | None) -> Res | None:
    if d is None:
        return None
    return Res(d["id"], d["name"], d.get("owned", True), d.get("status", ""), d.get("detail", {}))


def observed(d: dict) -> Observed:
    obs = Observed()
    for key in ("network", "subnet", "router", "keypair", "floating_ip", "share", "access_rule"):
        setattr(obs, key, res(d.get(key)))
    for key in ("security_groups", "server_groups", "ports", "servers"):
        setattr(obs, key, {k: res(v) for k, v in d.get(key, {}).items()})
    obs.server_group_limit = d.get("server_group_limit", -1)
    obs.router_mode = d.get("router_mode", "own")
    return obs


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_plan_fixture(fixture):
    case = json.loads(fixture.read_text())
    actions = plan(parse_spec(case["spec"], env={}), observed(case["observed"]))
    got = [[a.kind, a.resource, a.name] for a in actions if a.kind != "noop"]
    assert got == case["changes"], case["description"]
    assert summary(actions)["noop"] == case["noops"], case["description"]
    for a in actions:
        assert a.reason, f"every action says why: {a}"


def test_large_group_is_spread_over_server_groups_of_the_quota_size():
    case = json.loads((Path(__file__).parent / "plans" / "large_group_split.json").read_text())
    actions = plan(parse_spec(case["spec"], env={}), observed(case["observed"]))
    groups = [
        a.detail["server_group"]
        for a in actions
        if a.resource == "server" and a.detail.get("group") == "workers"
    ]
    assert groups.count("demo-workers-1") == 10 and groups.count("demo-workers-2") == 2


def test_converged_plan_is_stable_and_pure():
    case = json.loads((Path(__file__).parent / "plans" / "converged.json").read_text())
    spec = parse_spec(case["spec"], env={})
    obs = observed(case["observed"])
    assert plan(spec, obs) == plan(spec, obs)


def test_first_control_plane_node_is_never_removed():
    case = json.loads((Path(__file__).parent / "plans" / "converged.json").read_text())
    spec = dict(case["spec"])
    obs = observed(case["observed"])
    obs.servers["demo-control-plane-3"] = Res(
        "v9", "demo-control-plane-3", True, "ACTIVE", {"group": "control-plane", "flavor": "m3.small"}
    )
    obs.servers["demo-control-plane-1"] = Res(
        "v1", "demo-control-plane-1", True, "ACTIVE", {"group": "control-plane", "flavor": "m3.small"}
    )
    actions = plan(parse_spec(spec, env={}), obs)
    deletes = [a.name for a in actions if a.kind == "delete" and a.resource == "server"]
    assert deletes == ["demo-control-plane-3"]
    assert not [a for a in actions if a.kind == "conflict"]
