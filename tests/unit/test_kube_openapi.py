"""The API stand-in's OpenAPI and validation, from the official Kubernetes 1.35 definitions."""

from __future__ import annotations

import json

import pytest

from stackspray.sandbox import kube_schemas
from stackspray.sandbox.standins.kube_api.apimachinery import PatchError, json_patch
from stackspray.sandbox.standins.kube_api.openapi import Schemas


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
