"""upgrade's planner, table-driven: each fixture in fixtures/upgrade/ gives the nodes as observed,
the API server's version and the version asked for, and either the steps expected (action, node,
batch, a part of the reason) with the workers left behind and the batch size, or the refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stackspray.errors import SpecError
from stackspray.upgrade import edit_kube_version
from stackspray.upgrade_plan import (
    SUPPORTED,
    NodeView,
    UpgradeError,
    batch_size,
    plan_upgrade,
    version,
    within_skew,
)

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "upgrade").glob("*.json"))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_plan(fixture):
    doc = json.loads(fixture.read_text())

    def plan():
        return plan_upgrade(
            [NodeView(**n) for n in doc["nodes"]],
            doc["server"],
            doc["to"],
            serial=doc.get("serial", "20%"),
            wake_shelved=doc.get("wake_shelved", False),
            refusal=doc.get("refusal"),
        )

    if "error" in doc:
        with pytest.raises(UpgradeError) as refused:
            plan()
        assert doc["error"] in str(refused.value)
        return
    got = plan()
    assert [(s.action, s.node, s.batch) for s in got.steps] == [(a, n, b) for a, n, b, _ in doc["expect"]]
    for step, (*_, reason) in zip(got.steps, doc["expect"], strict=True):
        assert reason in step.reason, step
    assert got.behind == doc["behind"] and got.batch_size == doc["batch_size"]


def test_the_fixtures_cover_every_refusal_the_issue_names():
    errors = {json.loads(f.read_text()).get("error") for f in FIXTURES}
    for words in ("no checksums", "does not downgrade", "first", "not Ready", "rotation"):
        assert any(e and words in e for e in errors), words


def test_the_supported_versions_are_kubesprays_kubelet_checksums():
    """The list is exactly Kubespray v2.31.0's kubelet_checksums['amd64'] keys (read from the
    pinned commit into the fixture, with its source)."""
    upstream = json.loads((FIXTURES[0].parent.parent / "kubespray-v2.31.0-kubelet-versions.json").read_text())
    assert "1c9add48975060f45396b34d8e022c30d7f80dab" in upstream["source"]
    assert sorted(SUPPORTED, key=version) == sorted(upstream["kubelet_checksums_amd64"], key=version)
    assert list(SUPPORTED) == sorted(SUPPORTED, key=version)


@pytest.mark.parametrize(
    "serial, hosts, size",
    [("20%", 1, 1), ("20%", 4, 1), ("20%", 5, 1), ("20%", 10, 2), ("50%", 3, 1), ("2", 9, 2)],
)
def test_ansibles_batch_size(serial, hosts, size):
    assert batch_size(serial, hosts) == size


@pytest.mark.parametrize(
    "text, expected_line",
    [
        (
            "name: lab\nkubernetes:\n  kube_version: 1.34.7  # pinned\n  foo: 1\n",
            '  kube_version: "1.35.4"  # pinned',
        ),
        ("name: lab\nkubernetes:\n  foo: 1\n", '  kube_version: "1.35.4"'),
        ("name: lab\nkubernetes:\n    kube_version: '1.34.7'\n", '    kube_version: "1.35.4"'),
        ("name: lab\n", 'kubernetes:\n  kube_version: "1.35.4"'),
    ],
)
def test_the_spec_gets_the_new_version_and_nothing_else_changes(text, expected_line):
    new = edit_kube_version(text, "1.35.4")
    assert expected_line in new
    before, after = yaml.safe_load(text), yaml.safe_load(new)
    assert after["kubernetes"]["kube_version"] == "1.35.4"
    after["kubernetes"].pop("kube_version")
    before.setdefault("kubernetes", {}).pop("kube_version", None)
    assert after == before


@pytest.mark.parametrize(
    "text",
    ["name: lab\nkubernetes: {foo: 1}\n", "name: lab\nkubernetes:\nx: 1\n"],
)
def test_a_spec_where_the_version_cannot_be_rewritten_alone_is_refused(text):
    with pytest.raises(SpecError, match="kube"):
        edit_kube_version(text, "1.35.4")


@pytest.mark.parametrize(
    ("kubelet", "server", "within"),
    [
        ("v1.35.2", "v1.35.2", True),
        ("1.32.9", "v1.35.0", True),
        ("v1.31.0", "v1.35.4", False),
        ("v1.36.0", "v1.35.4", False),
        ("", "v1.35.4", True),  # unknown: not judged (an agent round must not fail on it)
        ("v1.35.4", "v1.35.4+k3s1", True),
    ],
)
def test_within_the_version_skew(kubelet, server, within):
    assert within_skew(kubelet, server) is within
