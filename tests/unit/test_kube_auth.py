"""The API stand-in's authentication and RBAC (standins/kube_api/auth.py) and its reading of
kubectl's protobuf bodies (protobuf.py), against what kube-apiserver v1.35 answers."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from stackspray_sandbox.standins.kube_api import auth, protobuf

FIXTURES = Path(__file__).parent / "fixtures" / "kubectl-v1.35.2"
RBAC = auth.RBAC_GV
SA = auth.User(
    "system:serviceaccount:kube-system:agent",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system", auth.AUTHENTICATED),
)


def _objects() -> dict:
    rule = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "patch"]}
    evict = {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}
    lease = {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "update"],
        "resourceNames": ["stackspray"],
    }
    subject = [{"kind": "ServiceAccount", "name": "agent", "namespace": "kube-system"}]
    return {
        ("v1", "serviceaccounts", "kube-system", "agent"): {"metadata": {"name": "agent", "uid": "u-1"}},
        (RBAC, "clusterroles", "", "agent"): {"rules": [rule, evict]},
        (RBAC, "clusterrolebindings", "", "agent"): {
            "roleRef": {"kind": "ClusterRole", "name": "agent"},
            "subjects": subject,
        },
        (RBAC, "roles", "kube-system", "agent"): {"rules": [lease]},
        (RBAC, "rolebindings", "kube-system", "agent"): {
            "roleRef": {"kind": "Role", "name": "agent"},
            "subjects": subject,
        },
    }


@pytest.mark.parametrize(
    "method, path, query, verb, resource, sub, ns, name",
    [
        ("GET", "/api/v1/nodes", {}, "list", "nodes", "", "", ""),
        ("GET", "/api/v1/nodes", {"watch": "true"}, "watch", "nodes", "", "", ""),
        ("GET", "/api/v1/nodes/n1", {}, "get", "nodes", "", "", "n1"),
        ("PATCH", "/api/v1/nodes/n1", {}, "patch", "nodes", "", "", "n1"),
        ("POST", "/api/v1/namespaces/a/pods/p/eviction", {}, "create", "pods", "eviction", "a", "p"),
        ("DELETE", "/api/v1/namespaces/a/pods", {}, "deletecollection", "pods", "", "a", ""),
        ("GET", "/api/v1/namespaces/default", {}, "get", "namespaces", "", "default", "default"),
        (
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x",
            {},
            "update",
            "leases",
            "",
            "kube-system",
            "x",
        ),
        (
            "GET",
            "/api/v1/namespaces/a/pods",
            {"fieldSelector": "metadata.name=p"},
            "list",
            "pods",
            "",
            "a",
            "p",
        ),
    ],
)
def test_a_request_is_read_as_requestinfo_reads_it(method, path, query, verb, resource, sub, ns, name):
    a = auth.request_attributes(SA, method, path, query)
    assert (a.verb, a.resource, a.subresource, a.namespace, a.name) == (verb, resource, sub, ns, name)
    assert a.resource_request


def test_rbac_allows_what_is_bound_and_nothing_else():
    objects = _objects()

    def can(method, path, query=None):
        return auth.authorize(auth.request_attributes(SA, method, path, query or {}), objects)[0]

    assert can("PATCH", "/api/v1/nodes/n1") and can("GET", "/api/v1/nodes", {"watch": "1"})
    assert can("POST", "/api/v1/namespaces/apps/pods/p/eviction")
    assert not can("DELETE", "/api/v1/nodes/n1")
    assert not can("DELETE", "/api/v1/namespaces/apps/pods/p")  # eviction is not delete
    assert not can("GET", "/api/v1/namespaces/kube-system/secrets")
    assert can("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/stackspray")
    assert not can("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/other")
    # A RoleBinding grants only in its own namespace.
    assert not can("PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases/stackspray")
    # Discovery and self reviews: every authenticated user (bootstrap policy).
    assert can("GET", "/api") and can("GET", "/apis/apps/v1") and can("GET", "/version")
    assert can("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    # The binding's subject is this account only.
    other = auth.User("system:serviceaccount:default:agent", ("system:authenticated",))
    a = auth.request_attributes(other, "GET", "/api/v1/nodes", {})
    assert not auth.authorize(a, objects)[0]


def test_the_refusal_says_what_kube_apiserver_says():
    a = auth.request_attributes(SA, "GET", "/api/v1/namespaces/kube-system/secrets", {})
    assert auth.forbidden_message(a) == (
        'secrets is forbidden: User "system:serviceaccount:kube-system:agent" cannot list resource '
        '"secrets" in API group "" in the namespace "kube-system"'
    )
    a = auth.request_attributes(SA, "DELETE", "/api/v1/nodes/n1", {})
    assert auth.forbidden_message(a) == (
        'nodes "n1" is forbidden: User "system:serviceaccount:kube-system:agent" cannot delete '
        'resource "nodes" in API group "" at the cluster scope'
    )
    a = auth.request_attributes(SA, "POST", "/apis/apps/v1/namespaces/a/deployments/d/scale", {})
    assert 'resource "deployments/scale" in API group "apps"' in auth.forbidden_message(a)


def test_a_token_secret_is_filled_while_its_account_lives_and_authenticates_as_it():
    objects = _objects()
    key = ("v1", "secrets", "kube-system", "agent-token")
    objects[key] = {
        "type": auth.TOKEN_TYPE,
        "metadata": {"name": "agent-token", "annotations": {auth.SA_NAME: "agent"}},
    }
    touched = []
    assert auth.sync_tokens(objects, "CA", touched.append) == [key]
    data = objects[key]["data"]
    assert base64.b64decode(data["ca.crt"]) == b"CA" and base64.b64decode(data["namespace"]) == b"kube-system"
    token = base64.b64decode(data["token"]).decode()
    assert len(token) >= 40 and touched
    assert auth.sync_tokens(objects, "CA", touched.append) == []  # filled once
    user = auth.authenticate(f"Bearer {token}", "admin-token", objects)
    assert user == SA
    assert auth.authenticate("Bearer admin-token", "admin-token", objects).name == "kubernetes-admin"
    with pytest.raises(auth.Unauthorized):
        auth.authenticate("Bearer nope", "admin-token", objects)
    # The account recreated (new uid): the old token no longer authenticates, and the
    # controller deletes its Secret.
    objects[("v1", "serviceaccounts", "kube-system", "agent")]["metadata"]["uid"] = "u-2"
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(f"Bearer {token}", "admin-token", objects)
    assert auth.sync_tokens(objects, "CA", touched.append) == [key] and key not in objects


def test_kubectls_protobuf_bodies_are_read():
    review = protobuf.decode((FIXTURES / "auth-can-i-list-secrets-n-kube-system.pb").read_bytes())
    assert review["kind"] == "SelfSubjectAccessReview"
    attrs = review["spec"]["resourceAttributes"]
    assert (attrs["verb"], attrs["resource"], attrs["namespace"], attrs["group"]) == (
        "list",
        "secrets",
        "kube-system",
        "",
    )
    assert auth.access_review(SA, review["spec"], _objects()) == {"allowed": False}
    cm = protobuf.decode((FIXTURES / "create-configmap-cm-from-literal-a-b.pb").read_bytes())
    assert (cm["apiVersion"], cm["kind"], cm["metadata"]["name"], cm["data"]) == (
        "v1",
        "ConfigMap",
        "cm",
        {"a": "b"},
    )
    with pytest.raises(protobuf.Unsupported):
        protobuf.decode(b'{"kind": "ConfigMap"}')


def test_impersonating_an_account_needs_the_right_and_gives_its_groups():
    objects = _objects()
    user, groups = auth.impersonation("system:serviceaccount:kube-system:agent")
    assert user == SA and groups == SA.groups
    admin = auth.User("kubernetes-admin", (auth.ADMIN_GROUP, auth.AUTHENTICATED))
    assert auth.authorize(auth.impersonation_attributes(admin, SA.name), objects)[0]
    # The agent itself may not impersonate anyone (not even another account).
    attrs = auth.impersonation_attributes(SA, "system:serviceaccount:kube-system:other")
    assert not auth.authorize(attrs, objects)[0]
    assert auth.forbidden_message(attrs) == (
        'serviceaccounts "other" is forbidden: User "system:serviceaccount:kube-system:agent" cannot '
        'impersonate resource "serviceaccounts" in API group "" in the namespace "kube-system"'
    )
