"""add-nodes/remove-nodes rewrite one count in the spec file and nothing else; bad requests are
refused before the cloud is asked anything (these tests have no cloud: reaching it would fail)."""

from __future__ import annotations

import pytest
import yaml

from stackspray.errors import SpecError
from stackspray.resize import edit_count, resize_group

SPEC = """\
# demo cluster — owned by the research computing team
name: demo
cloud: nowhere   # no such cloud: a test that reached it would fail
keypair: {name: my-key}
node_groups:
  control-plane:
    flavor: m3.small
    count: 1        # etcd: keep it odd
  workers:
    flavor: m3.small
    count: 2        # raised for the spring workshop
  gpu: {flavor: g3.medium, count: 0, extra_groups: [gpu-node]}
"""


@pytest.mark.parametrize(
    ("group", "count", "changed_line"),
    [
        ("workers", 5, "    count: 5        # raised for the spring workshop"),
        ("workers", 0, "    count: 0        # raised for the spring workshop"),
        ("control-plane", 3, "    count: 3        # etcd: keep it odd"),
        ("gpu", 12, "  gpu: {flavor: g3.medium, count: 12, extra_groups: [gpu-node]}"),
    ],
)
def test_only_the_one_count_changes(group, count, changed_line):
    new = edit_count(SPEC, group, count)
    old_lines, new_lines = SPEC.splitlines(), new.splitlines()
    diff = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert [b for _, b in diff] == [changed_line]
    assert yaml.safe_load(new)["node_groups"][group]["count"] == count


@pytest.mark.parametrize(
    ("text", "group", "message"),
    [
        (SPEC, "wokers", "node_groups.wokers: no such group — the spec has: control-plane, workers, gpu"),
        (
            SPEC.replace("count: 2 ", "count: '2'"),
            "workers",
            "node_groups.workers.count: is not written as a plain",
        ),
        (
            SPEC.replace("flavor: m3.small\n    count: 1", "flavor: m3.small\n    count: &n 1").replace(
                "count: 2 ", "count: *n"
            ),
            "workers",
            "its value is shared with another field",
        ),
        (
            SPEC.replace("    count: 2        # raised for the spring workshop\n", ""),
            "workers",
            "count: is required",
        ),
        ("name: demo\n", "workers", "node_groups: is required"),
        ("node_groups: [\n", "workers", "not valid YAML"),
    ],
)
def test_what_cannot_be_rewritten_in_place_is_refused(text, group, message):
    with pytest.raises(SpecError) as err:
        edit_count(text, group, 4, "demo.yaml")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("group", "count", "remove", "message"),
    [
        ("workers", 0, False, "--count: must be at least 1 (got 0)"),
        ("workers", -2, True, "--count: must be at least 1 (got -2)"),
        ("workers", 3, True, "node_groups.workers.count: is 2; removing 3 would leave fewer than 0"),
        ("control-plane", 1, False, "node_groups.control-plane.count: 2 is even"),
        ("control-plane", 1, True, "node_groups.control-plane.count: must be at least 1"),
        ("wokers", 1, False, "node_groups.wokers: no such group — the spec has: control-plane, workers, gpu"),
    ],
)
def test_bad_requests_are_refused_and_the_file_is_untouched(tmp_path, group, count, remove, message):
    path = tmp_path / "demo.yaml"
    path.write_text(SPEC)
    with pytest.raises(SpecError) as err:
        resize_group(path, group, count, remove=remove, root=tmp_path / "inventories")
    assert message in str(err.value)
    assert path.read_text() == SPEC
    assert not (tmp_path / "inventories").exists()
