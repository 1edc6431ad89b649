"""STAND-IN for the API server's authentication and RBAC authorization (kubernetes v1.35).

Who is asking (authentication):
- the bearer token of the stand-in's admin.conf: user `kubernetes-admin` in group
  `kubeadm:cluster-admins`, which kubeadm binds to the ClusterRole `cluster-admin`
  (cmd/kubeadm/app/phases/kubeconfig: admin.conf since kubeadm 1.29);
- a ServiceAccount token: the `token` of a Secret of type `kubernetes.io/service-account-token`
  that the token controller filled (`sync_tokens` below), valid while that Secret and its
  ServiceAccount exist (pkg/serviceaccount/legacy.go). The user is
  `system:serviceaccount:<namespace>:<name>` in the groups `system:serviceaccounts`,
  `system:serviceaccounts:<namespace>` and `system:authenticated` (pkg/serviceaccount/util.go);
- anything else: 401 Unauthorized.

What it may do (authorization), as plugin/pkg/auth/authorizer/rbac/rbac.go decides: allowed
when a rule of a Role or ClusterRole bound to the user (ClusterRoleBinding: everywhere;
RoleBinding: in its namespace) matches the request's verb, API group, resource (with its
subresource, `pods/eviction`) and name (pkg/apis/rbac/v1/evaluation_helpers.go). The bootstrap
policy the API server creates is built in (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/
policy.go): `cluster-admin` for `kubeadm:cluster-admins`; for every authenticated user the
discovery paths (`system:discovery`) and creating SelfSubjectAccessReviews (`system:basic-user`).
A refusal is 403 Forbidden with the API server's message (staging/src/k8s.io/apiserver/pkg/
endpoints/handlers/responsewriters/errors.go: forbiddenMessage, wrapped by apierrors.NewForbidden).
Which verb and resource a request is comes from staging/src/k8s.io/apiserver/pkg/endpoints/
request/requestinfo.go.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field

TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME = "kubernetes.io/service-account.name"
SA_UID = "kubernetes.io/service-account.uid"
ADMIN_GROUP = "kubeadm:cluster-admins"
AUTHENTICATED = "system:authenticated"
RBAC_GV = "rbac.authorization.k8s.io/v1"
# system:discovery and system:public-info-viewer (bootstrappolicy/policy.go), for every
# authenticated user.
DISCOVERY_PATHS = (
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/openapi",
    "/openapi/*",
    "/version",
    "/version/",
    "/healthz",
    "/livez",
    "/readyz",
)
# system:basic-user: what every authenticated user may create about itself.
SELF_REVIEWS = {
    "apiGroups": ["authorization.k8s.io"],
    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    "verbs": ["create"],
}


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


@dataclass
class Attributes:
    """authorizer.Attributes of one request."""

    user: User
    verb: str
    path: str
    resource_request: bool = False
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    extra: dict = field(default_factory=dict)


class Unauthorized(Exception):
    pass


def _b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
# system:public-info-viewer (bootstrappolicy/policy.go): bound to authenticated and
# unauthenticated users alike.
PUBLIC_INFO = ("/healthz", "/livez", "/readyz", "/version", "/version/")


def authenticate(header: str | None, admin_token: str, objects: dict) -> User:
    """The user a request's Authorization header names; without one, system:anonymous (Kubespray
    keeps kube-apiserver's anonymous auth on: kube_api_anonymous_auth); a token nobody issued:
    Unauthorized."""
    if not header:
        return ANONYMOUS
    if not header.startswith("Bearer "):
        raise Unauthorized
    token = header[len("Bearer ") :]
    if secrets.compare_digest(token, admin_token):
        return User("kubernetes-admin", (ADMIN_GROUP, AUTHENTICATED))
    for (gv, plural, ns, _name), secret in objects.items():
        if gv != "v1" or plural != "secrets" or secret.get("type") != TOKEN_TYPE:
            continue
        stored = (secret.get("data") or {}).get("token")
        if not stored or not secrets.compare_digest(base64.b64decode(stored).decode(), token):
            continue
        sa = (secret["metadata"].get("annotations") or {}).get(SA_NAME, "")
        account = objects.get(("v1", "serviceaccounts", ns, sa))
        uid = (secret["metadata"].get("annotations") or {}).get(SA_UID)
        if account is None or account["metadata"].get("uid") != uid:
            raise Unauthorized  # legacy.go: the token's ServiceAccount is gone or was recreated
        return User(
            f"system:serviceaccount:{ns}:{sa}",
            ("system:serviceaccounts", f"system:serviceaccounts:{ns}", AUTHENTICATED),
        )
    raise Unauthorized


def sync_tokens(objects: dict, ca_pem: str, touch) -> list[tuple]:
    """The token controller (pkg/controller/serviceaccount/tokens_controller.go): a
    service-account-token Secret whose ServiceAccount exists gets `token`, `ca.crt` and
    `namespace` and the account's uid; one whose account is gone is deleted. Returns the keys
    filled or deleted; `touch(obj)` bumps an object's resourceVersion."""
    changed = []
    for key, secret in list(objects.items()):
        gv, plural, ns, _name = key
        if gv != "v1" or plural != "secrets" or secret.get("type") != TOKEN_TYPE:
            continue
        annotations = secret["metadata"].setdefault("annotations", {})
        account = objects.get(("v1", "serviceaccounts", ns, annotations.get(SA_NAME, "")))
        if account is None or (annotations.get(SA_UID) not in (None, account["metadata"].get("uid"))):
            del objects[key]
            changed.append(key)
            continue
        data = secret.setdefault("data", {})
        if data.get("token"):
            continue
        annotations[SA_UID] = account["metadata"].get("uid")
        data.update(token=_b64(secrets.token_urlsafe(48)), namespace=_b64(ns), **{"ca.crt": _b64(ca_pem)})
        touch(secret)
        changed.append(key)
    return changed


def request_attributes(user: User, method: str, path: str, query: dict) -> Attributes:
    """requestinfo.go's reading of a request: resource or not, verb, group, resource, name."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        rest = []
    if not rest:  # discovery documents and other paths: a non-resource request
        return Attributes(user, method.lower(), path)
    a = Attributes(user, "", path, True, group, version)
    if rest[0] == "namespaces" and len(rest) > 1:
        a.namespace = rest[1]  # a Namespace's own requests are in itself
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    a.resource = rest[0]
    a.name = rest[1] if len(rest) > 1 else ""
    a.subresource = rest[2] if len(rest) > 2 else ""
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "GET": "get"}
    a.verb = verbs.get(method, method.lower())
    if not a.name:
        a.verb = {"get": "list", "delete": "deletecollection"}.get(a.verb, a.verb)
    if method == "GET" and query.get("watch") in ("true", "1"):
        a.verb = "watch"
    if a.verb in ("list", "watch"):
        # A list or watch of one name (fieldSelector metadata.name=) is about that name.
        for term in (query.get("fieldSelector") or "").split(","):
            key, _, value = term.partition("=")
            if key == "metadata.name" and value and not value.startswith("="):
                a.name = value
    return a


def _rule_allows(a: Attributes, rule: dict) -> bool:
    """plugin/pkg/auth/authorizer/rbac/rbac.go RuleAllows with the helpers of
    pkg/apis/rbac/v1/evaluation_helpers.go."""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.resource_request:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == a.path or (url.endswith("*") and a.path.startswith(url[:-1])):
                return True
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and a.group not in groups:
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resources = rule.get("resources") or []
    if not any(r == "*" or r == combined or (a.subresource and r == f"*/{a.subresource}") for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _subject_matches(subject: dict, user: User) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        return user.name == f"system:serviceaccount:{subject.get('namespace', '')}:{subject.get('name')}"
    return False


def _bootstrap_rules(user: User) -> list[tuple[str, dict]]:
    rules = [
        (
            'ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer"',
            {"nonResourceURLs": list(PUBLIC_INFO), "verbs": ["get"]},
        )
    ]
    if ADMIN_GROUP in user.groups:
        everything = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
        rules += [
            ('ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole "cluster-admin"', everything),
            (
                'ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole "cluster-admin"',
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ),
        ]
    if AUTHENTICATED in user.groups:
        rules += [
            (
                'ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery"',
                {"nonResourceURLs": list(DISCOVERY_PATHS), "verbs": ["get"]},
            ),
            ('ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user"', SELF_REVIEWS),
        ]
    return rules


def _rules_for(user: User, namespace: str, objects: dict) -> list[tuple[str, dict]]:
    """(source, rule) for every rule that applies to the user in the namespace
    (pkg/registry/rbac/validation/rule.go VisitRulesFor)."""
    out = _bootstrap_rules(user)

    def role_rules(kind: str, ref_ns: str, name: str) -> list[dict]:
        plural = "clusterroles" if kind == "ClusterRole" else "roles"
        role = objects.get((RBAC_GV, plural, ref_ns, name))
        return (role or {}).get("rules") or []

    for (gv, plural, ns, name), binding in objects.items():
        if gv != RBAC_GV or plural not in ("clusterrolebindings", "rolebindings"):
            continue
        if plural == "rolebindings" and ns != namespace:
            continue
        if not any(_subject_matches(s, user) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        kind = ref.get("kind", "")
        binding_kind = "ClusterRoleBinding" if plural == "clusterrolebindings" else "RoleBinding"
        source = f'{binding_kind} "{name}" of {kind} "{ref.get("name")}"'

        ref_ns = "" if kind == "ClusterRole" else ns
        out += [(source, r) for r in role_rules(kind, ref_ns, ref.get("name", ""))]
    return out


def authorize(a: Attributes, objects: dict) -> tuple[bool, str]:
    """(allowed, reason) as the RBAC authorizer answers."""
    for source, rule in _rules_for(a.user, a.namespace, objects):
        if _rule_allows(a, rule):
            return True, f"RBAC: allowed by {source}"
    return False, ""


def forbidden_message(a: Attributes) -> str:
    """responsewriters/errors.go forbiddenMessage wrapped as apierrors.NewForbidden does."""
    if not a.resource_request:
        return f'forbidden: User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    msg = f'User "{a.user.name}" cannot {a.verb} resource "{resource}" in API group "{a.group}" {scope}'
    qualified = f"{a.resource}.{a.group}" if a.group else a.resource
    return f'{qualified} "{a.name}" is forbidden: {msg}' if a.name else f"{qualified} is forbidden: {msg}"


def access_review(user: User, spec: dict, objects: dict) -> dict:
    """The status of a SelfSubjectAccessReview (pkg/registry/authorization/
    selfsubjectaccessreview/rest.go): the spec's attributes, asked as the requesting user."""
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if res:
        a = Attributes(
            user,
            res.get("verb", ""),
            "",
            True,
            res.get("group", ""),
            res.get("version", ""),
            res.get("resource", ""),
            res.get("subresource", ""),
            res.get("namespace", ""),
            res.get("name", ""),
        )
    elif non:
        a = Attributes(user, non.get("verb", ""), non.get("path", ""))
    else:
        raise ValueError("spec.resourceAttributes or spec.nonResourceAttributes: Required value")
    allowed, reason = authorize(a, objects)
    status = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status


def impersonation(name: str) -> tuple[User, tuple[str, ...]]:
    """The user a request impersonating `name` runs as (impersonation.go: a ServiceAccount
    gets its groups; every impersonated user is in system:authenticated)."""
    parts = name.split(":")
    if name.startswith("system:serviceaccount:") and len(parts) == 4:
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{parts[2]}", AUTHENTICATED)
    else:
        groups = (AUTHENTICATED,)
    return User(name, groups), groups


def impersonation_attributes(requester: User, name: str) -> Attributes:
    """What the requester must be allowed: impersonate on users, or on the ServiceAccount."""
    parts = name.split(":")
    if name.startswith("system:serviceaccount:") and len(parts) == 4:
        return Attributes(
            requester, "impersonate", "", True, "", "v1", "serviceaccounts", "", parts[2], parts[3]
        )
    return Attributes(requester, "impersonate", "", True, "", "v1", "users", "", "", name)
