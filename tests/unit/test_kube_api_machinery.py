"""The Kubernetes API stand-in's machinery: selectors, ages and Table answers, checked against
the behaviour of the upstream functions they follow (cited in apimachinery.py)."""

from __future__ import annotations

import pytest
from stackspray_sandbox.standins.kube_api import apimachinery as am

POD = {
    "metadata": {"name": "web-1", "namespace": "jhub", "labels": {"app": "web", "tier": "front"}},
    "spec": {"nodeName": "demo-workers-1", "containers": [{"name": "a"}, {"name": "b"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
}


@pytest.mark.parametrize(
    "selector,selected",
    [
        ("", True),
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name=web-2", False),
        ("spec.nodeName=demo-workers-1,status.phase!=Succeeded,status.phase!=Failed", True),
        ("status.phase!=Running", False),
        ("metadata.namespace=jhub", True),
    ],
)
def test_field_selectors_on_pods(selector, selected):
    assert am.field_matcher("pods", selector)(POD) is selected


@pytest.mark.parametrize(
    "plural,selector", [("pods", "spec.foo=bar"), ("secrets", "spec.nodeName=x"), ("nodes", "x")]
)
def test_a_field_the_resource_cannot_be_selected_on_is_refused(plural, selector):
    with pytest.raises(am.SelectorError):
        am.field_matcher(plural, selector)


@pytest.mark.parametrize(
    "selector,selected",
    [
        ("app=web", True),
        ("app==web,tier=front", True),
        ("app!=web", False),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("app in (web,db)", True),
        ("app notin (web,db)", False),
        ("tier in (back)", False),
        ("app=web,tier notin (back)", True),
    ],
)
def test_label_selectors(selector, selected):
    assert am.label_matcher(selector)(POD) is selected


@pytest.mark.parametrize(
    "seconds,shown",
    [
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (20 * 86400, "20d"),
        (800 * 86400, "2y70d"),
    ],
)
def test_ages_read_as_kubectl_shows_them(seconds, shown):
    assert am.human_duration(seconds) == shown


def test_kubectl_gets_a_table_with_the_api_servers_columns():
    accept = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    )
    assert am.wants_table(accept) and not am.wants_table("application/json")
    t = am.table("pods", [POD], "42")
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert t["rows"][0]["cells"][:3] == ["web-1", "2/2", "Running"]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    node = {
        "metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "Unknown"}],
            "nodeInfo": {"kubeletVersion": "v1.35.4"},
        },
    }
    cells = am.table("nodes", [node], "1")["rows"][0]["cells"]
    assert cells[:3] == ["n1", "NotReady,SchedulingDisabled", "control-plane"] and cells[4] == "v1.35.4"
