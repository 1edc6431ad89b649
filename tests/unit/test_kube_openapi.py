"""The API stand-in's OpenAPI and validation, from the official Kubernetes 1.35 definitions."""

from __future__ import annotations

import json

import pytest
from stackspray_sandbox import kube_schemas
from stackspray_sandbox.standins.kube_api.apimachinery import PatchError, json_patch
from stackspray_sandbox.standins.kube_api.openapi import Schemas


@pytest.fixture(scope="module")
def schemas():
    return Schemas(json.loads(kube_schemas.ensure().read_text()))


def pod(**container):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", **container}]},
    }


@pytest.mark.parametrize(
    "obj,unknown,error",
    [
        (pod(), [], None),
        (
            pod(resources={"requests": {"cpu": "250m", "memory": 1024}}),
            [],
            None,
        ),  # Quantity: string or number
        (pod(imagee="x"), ["spec.containers[0].imagee"], None),
        (
            pod(image=5),
            [],
            "json: cannot unmarshal number into Go struct field Container.spec.containers.image",
        ),
        (
            pod(ports=[{"containerPort": "80"}]),
            [],
            "cannot unmarshal string into Go struct field ContainerPort",
        ),
    ],
)
def test_objects_are_checked_as_the_api_server_decodes_them(schemas, obj, unknown, error):
    got_unknown, got_error = schemas.check("", "v1", "Pod", obj)
    assert got_unknown == unknown
    assert (error is None and got_error is None) or (error and error in got_error), got_error


def test_kubectl_finds_server_side_field_validation_in_the_v3_document(schemas):
    doc = schemas.v3("apps", "v1", [("daemonsets", "DaemonSet", True)])
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "DaemonSet"}
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])
    ds = doc["components"]["schemas"]["io.k8s.api.apps.v1.DaemonSet"]
    assert ds["properties"]["spec"]["$ref"] == "#/components/schemas/io.k8s.api.apps.v1.DaemonSetSpec"
    assert ds["properties"]["kind"]["type"] == "string" and "enum" not in ds["properties"]["kind"]
    assert "io.k8s.api.core.v1.PodSpec" in doc["components"]["schemas"], "referenced definitions are included"


def test_json_patch_follows_rfc_6902():
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "replace", "path": "/spec/list/0", "value": 9},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "test", "path": "/spec/list/1", "value": 2},
        ],
    )
    assert out == {"metadata": {"labels": {"b": "2"}}, "spec": {"list": [9, 2, 3]}} and doc["spec"][
        "list"
    ] == [1, 2]
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "replace", "path": "/metadata/missing", "value": 1}])


def test_strategic_merge_merges_lists_by_their_merge_keys(schemas):
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"a": "1"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "side:1"},
                    ]
                }
            }
        },
    }
    # What kubectl apply sends when one container's image changes (with its ordering directive).
    patch = {
        "metadata": {"labels": {"b": "2"}},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{"name": "app", "image": "app:2"}],
                }
            }
        },
    }
    out = schemas.strategic_merge("apps", "v1", "Deployment", deploy, patch)
    containers = out["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "app", "image": "app:2", "env": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "side:1"},
    ]
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert schemas.check("apps", "v1", "Deployment", out) == ([], None), "no directive is left behind"
    gone = schemas.strategic_merge(
        "apps",
        "v1",
        "Deployment",
        deploy,
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
    )
    assert [c["name"] for c in gone["spec"]["template"]["spec"]["containers"]] == ["app"]
    # A list without a merge strategy is replaced (args of a container).
    replaced = schemas.strategic_merge(
        "",
        "v1",
        "Pod",
        {"spec": {"containers": [{"name": "c", "args": ["a", "b"]}]}},
        {"spec": {"containers": [{"name": "c", "args": ["z"]}]}},
    )
    assert replaced["spec"]["containers"][0]["args"] == ["z"]
