"""Adding and removing nodes: change one group's `count` in the spec file, then converge.

The spec stays the one source of truth. `add-nodes`/`remove-nodes` rewrite only the count's
value in the file — comments, order and layout stay as the user wrote them — and then run the
same converge as create-cluster (new workers: facts.yml + scale.yml --limit; removed nodes:
remove-node.yml before their VMs go). The file is written only after every check has passed
(spec, conflicts, quota, shelved nodes), so a refused change leaves the file as it was; once it
is written, an interrupted run is finished by re-running create-cluster with the same file.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from .cloudapi import CloudAPI
from .converge import ConvergeResult, create_cluster
from .errors import SpecError
from .progress import Progress
from .spec import parse_spec_text, spec_path

INT_TAG = "tag:yaml.org,2002:int"


def _child(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return v
    return None


def _no_such_group(source: str, group: str, names: list[str]) -> SpecError:
    return SpecError(source, [f"node_groups.{group}: no such group — the spec has: {', '.join(names)}"])


def edit_count(text: str, group: str, count: int, source: str = "<spec>") -> str:
    """Return `text` with `node_groups.<group>.count` set to `count`, nothing else changed.

    Refuses (SpecError naming the field) when the count is not a plain number written at that
    place — an anchor shared with another group, a quoted string — since rewriting it there would
    change more than the one value."""
    field = f"node_groups.{group}.count"
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"(file): not valid YAML: {exc}"]) from exc
    groups = _child(root, "node_groups")
    if not isinstance(groups, MappingNode):
        raise SpecError(source, ["node_groups: is required"])
    node = _child(groups, group)
    if node is None:
        raise _no_such_group(source, group, [k.value for k, _ in groups.value if isinstance(k, ScalarNode)])
    value = _child(node, "count")
    if value is None:
        raise SpecError(source, [f"{field}: is required"])
    if not isinstance(value, ScalarNode) or value.tag != INT_TAG or value.style:
        raise SpecError(source, [f"{field}: is not written as a plain number here — edit the file by hand"])
    new = text[: value.start_mark.index] + str(count) + text[value.end_mark.index :]
    expected = copy.deepcopy(yaml.safe_load(text))
    expected["node_groups"][group]["count"] = count
    try:
        same = yaml.safe_load(new) == expected
    except yaml.YAMLError:  # the value carried an anchor that others refer to
        same = False
    if not same:
        raise SpecError(
            source,
            [f"{field}: its value is shared with another field (a YAML anchor?) — edit the file by hand"],
        )
    return new


def write_spec_file(path: Path, text: str) -> None:
    """Replace the file at once (a reader sees the old or the new spec, never half), keeping its mode."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resize_group(
    spec: str | os.PathLike[str],
    group: str,
    count: int,
    *,
    remove: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    root: Path | None = None,
    kubernetes: bool = True,
    forks: int | None = None,
    api: CloudAPI | None = None,
) -> ConvergeResult:
    """Add `count` nodes to `group` (or with `remove`, take them away): write the new count into
    the spec file and converge the cluster on it. Nodes are removed highest-numbered first; the
    spec's own rules apply (an odd control-plane count, at least one control-plane node).

    Returns create_cluster's result with `resize`: {cluster, spec, group, from, to}."""
    progress = progress or Progress()
    command = "remove-nodes" if remove else "add-nodes"
    path = spec_path(spec)
    if count < 1:
        raise SpecError(str(path), [f"--count: must be at least 1 (got {count})"])
    delta = -count if remove else count
    text = path.read_text()  # read once: what is parsed is what write_spec compares against
    current = parse_spec_text(text, str(path))
    g = current.group(group)
    if g is None:
        raise _no_such_group(str(path), group, [x.name for x in current.node_groups])
    new = g.count + delta
    if new < 0:
        raise SpecError(
            str(path), [f"node_groups.{group}.count: is {g.count}; removing {count} would leave fewer than 0"]
        )
    new_text = edit_count(text, group, new, str(path))
    new_spec = parse_spec_text(new_text, str(path))
    field = f"node_groups.{group}.count"
    progress(f"{command}: {path}: {field} {g.count} -> {new}")

    def write_spec() -> None:
        if path.read_text() != text:
            raise SpecError(str(path), ["(file): changed while this command waited — re-run it"])
        write_spec_file(path, new_text)
        progress(f"{path}: {field} is now {new}")

    result = create_cluster(
        new_spec,
        dry_run=dry_run,
        progress=progress,
        root=root,
        kubernetes=kubernetes,
        before_changes=write_spec,
        command=command,
        forks=forks,
        api=api,
    )
    result.resize = {
        "cluster": new_spec.name,
        "spec": str(path),
        "group": group,
        "from": g.count,
        "to": new,
    }
    return result
