"""The stand-in's CustomResourceDefinitions: served once created (cert-manager's when Kubespray's
cert_manager_enabled is set), refused when misnamed. Created, used and deleted over HTTP by the
real kubectl: tests/integration/test_kubectl.py `test_a_crd_serves_its_kind_until_it_is_deleted`."""

from __future__ import annotations

import pytest
from stackspray_sandbox.standins.kube_api import store as store_module
from stackspray_sandbox.standins.kube_api.store import ApiError, Store, check_crd, resource_info


def crd(plural: str, group: str, kind: str, versions=(("v1", True, True),), name: str | None = None) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name or f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": plural, "kind": kind},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": v,
                    "served": served,
                    "storage": stored,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
                for v, served, stored in versions
            ],
        },
    }


def _without_schema(body: dict) -> dict:
    for v in body["spec"]["versions"]:
        v.pop("schema")
    return body


@pytest.fixture
def store(tmp_path):
    s = Store({"state_file": str(tmp_path / "state.json"), "nodes": [], "cert_manager": True})
    yield s
    store_module.serve_custom_resources([])  # RESOURCES is the module's: leave it as built in


def test_cert_managers_crds_and_namespace_come_with_cert_manager_enabled(store, tmp_path):
    assert resource_info("cert-manager.io", "v1", "clusterissuers") == ("ClusterIssuer", False)
    assert resource_info("acme.cert-manager.io", "v1", "challenges") == ("Challenge", True)
    assert ("v1", "namespaces", "", "cert-manager") in store.objects
    Store({"state_file": str(tmp_path / "other.json"), "nodes": []})
    assert resource_info("cert-manager.io", "v1", "clusterissuers") is None  # not without it


def test_a_crd_is_served_by_its_served_versions_and_established(store):
    key = ("apiextensions.k8s.io/v1", "customresourcedefinitions", "", "widgets.example.org")
    body = crd("widgets", "example.org", "Widget", (("v1", True, True), ("v2", False, False)))
    store.put_object(key, body, None)
    store.serve_crds()
    assert resource_info("example.org", "v1", "widgets") == ("Widget", True)
    assert resource_info("example.org", "v2", "widgets") is None  # not served
    view = store.object_view(key[0], key[1], store.objects[key])
    assert {c["type"]: c["status"] for c in view["status"]["conditions"]} == {
        "NamesAccepted": "True",
        "Established": "True",
    }


@pytest.mark.parametrize(
    "body, words",
    [
        (crd("widgets", "example.org", "Widget", name="widget.example.org"), "must be spec.names.plural"),
        (crd("widgets", "example.org", "Widget", (("v1", True, False),)), "exactly one version"),
        (crd("", "example.org", "Widget"), "Required value"),
        (_without_schema(crd("widgets", "example.org", "Widget")), "schemas are required"),
    ],
    ids=["misnamed", "no-storage-version", "no-plural", "no-schema"],
)
def test_invalid_crds_are_refused_as_the_api_server_does(body, words):
    with pytest.raises(ApiError) as err:
        check_crd(body)
    assert err.value.code == 422 and words in err.value.message
