"""The Kubespray stand-in's inventory validation makes every check Kubespray v2.31.0 makes.

The fixture lists upstream's roles/validate_inventory/tasks/main.yml (name, line, assert
conditions, when conditions), read from the pinned commit. The stand-in role must have each
task under the same name, citing the same line, asserting the same conditions on the same
`when`; the few places where the stand-in spells a condition differently are listed here with
why they are the same. A stand-in kinder than Kubespray (a check dropped or loosened) fails.
"""

import json
import re
from pathlib import Path

import stackspray_sandbox
import yaml

FIXTURE = Path(__file__).parent / "fixtures" / "kubespray-v2.31.0-validate_inventory.json"
ROLE = (
    Path(stackspray_sandbox.__file__).parent
    / "standins/kubespray/playbooks/roles/validate_inventory/tasks/main.yml"
)

# upstream spelling -> stand-in spelling, each the same test.
SAME = {
    # Jinja delimiters around a bare `that` are redundant (ansible warns about them).
    "{{(kubelet_max_pods|default(110))|int<=(2**(32-kube_network_node_prefix|int))-2}}": (
        "(kubelet_max_pods|default(110))|int<=(2**(32-kube_network_node_prefix|int))-2"
    ),
    # A string's truth is its being non-empty; the stand-in says so without a bare-variable
    # conditional.
    "cloud_provider": "cloud_provider|length>0",
    # The stand-in's own variable names carry the standin_ prefix.
    "removed_vars_found|length==0": "standin_removed_found|length==0",
}


def _norm(condition: str) -> str:
    text = re.sub(r"\s+", "", condition)
    return SAME.get(text, text)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _standin_tasks() -> dict[str, dict]:
    text = ROLE.read_text()
    tasks = yaml.safe_load(text)
    cited = dict(re.findall(r"^- name: (.*?)\s+# upstream:(\d+)$", text, re.M))
    by_name = {}
    for task in tasks:
        raw = next(k for k in cited if yaml.safe_load(f"x: {k}")["x"] == task["name"])
        module = "assert" if "ansible.builtin.assert" in task else "debug"
        body = task.get(f"ansible.builtin.{module}", {})
        by_name[task["name"]] = {
            "line": int(cited[raw]),
            "module": module,
            "that": [re.sub(r"\s+", "", c) for c in _as_list(body.get("that"))],
            "when": [re.sub(r"\s+", "", c) for c in _as_list(task.get("when"))],
        }
    return by_name


def test_every_upstream_check_is_in_the_standin_the_same_way():
    upstream = json.loads(FIXTURE.read_text())
    ours = _standin_tasks()
    assert len(upstream["tasks"]) == 26
    for task in upstream["tasks"]:
        name = task["name"]
        assert name in ours, f"stand-in lacks upstream task {name!r} (line {task['line']})"
        mine = ours[name]
        assert mine["line"] == task["line"], name
        assert mine["module"] == task["module"], name
        assert mine["that"] == [_norm(c) for c in _as_list(task["that"])], name
        assert mine["when"] == [_norm(c) for c in _as_list(task["when"])], name
    assert len(ours) == len(upstream["tasks"]), "the stand-in checks something Kubespray does not"


def test_the_standin_defaults_cite_where_upstream_sets_them():
    defaults = ROLE.parents[2] / "kubespray_defaults/defaults/main.yml"
    text = defaults.read_text()
    values = yaml.safe_load(text)
    # The versions block cites its upstream lines in the comment above it.
    block = {"kube_version", "kube_version_min_required"} | {
        f"{tool}_checksums" for tool in ("kubeadm", "kubelet", "kubectl")
    }
    uncited = [
        key
        for key in values
        if not key.startswith("standin_")
        and key not in block
        and not re.search(rf"^{key}:.*# (defaults|vars)/main/\w+\.yml:\d+", text, re.M)
    ]
    assert not uncited, f"defaults without an upstream file:line: {uncited}"
    # Every variable a stand-in check reads unguarded has a default, as upstream's does.
    role = ROLE.read_text()
    for var in ("kube_network_plugin", "container_manager", "etcd_deployment_type", "ipv6_stack"):
        assert var in values and var in role
