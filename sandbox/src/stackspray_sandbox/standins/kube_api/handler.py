"""STAND-IN for the Kubernetes API server: the HTTP side — paths, verbs, watches, discovery and
OpenAPI documents — over the `Store` (store.py). What is served, and how, is in server.py's docstring."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import ssl
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

try:  # modules of the stackspray_sandbox package (tests, docs) ...
    from . import apimachinery, auth, protobuf
    from .store import (
        APPLY_PATCH,
        BUILTIN_RESOURCES,
        CATEGORIES,
        JSON_PATCH,
        MERGE_PATCH,
        RESOURCES,
        SHORT_NAMES,
        STRATEGIC_PATCH,
        ApiError,
        Store,
        keep_server_fields,
        merge_patch,
        now,
        resource_info,
    )
except ImportError:  # ... or scripts beside their copies on the node
    import apimachinery  # type: ignore[no-redef]
    import auth  # type: ignore[no-redef]
    import protobuf  # type: ignore[no-redef]
    from store import (  # type: ignore[no-redef]
        APPLY_PATCH,
        BUILTIN_RESOURCES,
        CATEGORIES,
        JSON_PATCH,
        MERGE_PATCH,
        RESOURCES,
        SHORT_NAMES,
        STRATEGIC_PATCH,
        ApiError,
        Store,
        keep_server_fields,
        merge_patch,
        now,
        resource_info,
    )


def _rest(parts: list[str]) -> tuple[str, str, list[str]] | None:
    if parts[:2] == ["api", "v1"]:
        return "", "v1", parts[2:]
    if parts[:1] == ["apis"] and len(parts) >= 3:
        return parts[1], parts[2], parts[3:]
    return None


def collection_of(parts: list[str]) -> tuple[str, str, str, str | None] | None:
    """(group, version, plural, namespace or None) when the path names a list of a resource."""
    split = _rest(parts)
    if split is None:
        return None
    group, version, rest = split
    if len(rest) == 1 and resource_info(group, version, rest[0]):
        return group, version, rest[0], None
    if len(rest) == 3 and rest[0] == "namespaces" and resource_info(group, version, rest[2]):
        return group, version, rest[2], rest[1]
    return None


def object_of(parts: list[str]) -> str | None:
    """The plural of the resource when the path names one object (not a subresource)."""
    split = _rest(parts)
    if split is None:
        return None
    group, version, rest = split
    if len(rest) == 2 and resource_info(group, version, rest[0]):
        return rest[0]
    if len(rest) == 4 and rest[0] == "namespaces" and resource_info(group, version, rest[2]):
        return rest[2]
    return None


class Handler(BaseHTTPRequestHandler):
    store: Store
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args) -> None:  # one line per request on stderr (journal)
        print(f"{self.command} {self.path} -> {fmt % args}", flush=True)

    def send(self, code: int, body: dict | bytes) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for w in getattr(self, "warnings", []):
            # RFC 7234 warn-code 299, as the API server sends (k8s.io/apiserver/pkg/warning).
            self.send_header("Warning", '299 - "' + w.replace('"', '\\"') + '"')
        self.end_headers()
        self.wfile.write(data)

    def admit(self, group: str, version: str, kind: str, obj: dict, q: dict) -> None:
        """Validate a write against the official schema: a wrong type is a 400 decoding error;
        unknown fields are refused under fieldValidation=Strict, warned about under Warn (the
        default), let pass under Ignore (openapi.py)."""
        schemas = self.store.schemas
        if schemas is None:
            return
        mode = q.get("fieldValidation") or "Warn"
        if mode not in ("Strict", "Warn", "Ignore"):
            raise ApiError(
                400, "BadRequest", f'fieldValidation: unsupported value "{mode}": Ignore, Warn or Strict'
            )
        unknown, type_error = schemas.check(group, version, kind, obj)
        if type_error:
            raise ApiError(400, "BadRequest", type_error)
        if not unknown or mode == "Ignore":
            return
        fields = [f'unknown field "{u}"' for u in unknown]
        if mode == "Strict":
            raise ApiError(
                400,
                "BadRequest",
                f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
                + ", ".join(fields),
            )
        self.warnings = [*getattr(self, "warnings", []), *fields]

    def body(self) -> dict:
        if self.content_type == protobuf.MEDIA_TYPE:
            try:
                return protobuf.decode(self.raw_body)
            except protobuf.Unsupported as exc:
                # As kube-apiserver refuses a body it cannot decode (handlers/negotiation/errors.go
                # NewUnsupportedMediaTypeError), naming what this server does read.
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json (and application/vnd.kubernetes.protobuf for "
                    f"{', '.join(k for _g, k in sorted(protobuf.KINDS))} only: {exc})",
                ) from None
        return json.loads(self.raw_body or b"{}")

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def dispatch(self, method: str) -> None:
        # Read the whole body first: on a kept-alive connection unread bytes would corrupt the next request.
        self.raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.warnings: list[str] = []
        try:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            self.check_access(method, url.path, query)
            if method == "GET" and url.path.rstrip("/") in ("/healthz", "/livez", "/readyz"):
                self.health(url.path.strip("/"), "verbose" in query)
                return
            parts = [p for p in url.path.split("/") if p]
            target = collection_of(parts)
            if method == "GET" and target and query.get("watch") in ("true", "1"):
                self.watch(*target, query)  # streams until its timeout; takes the lock per poll
                return
            with self.store.lock:
                if method == "GET" and target:
                    code, body = self.collection(*target, query)
                else:
                    code, body = self.route(method, parts, query)
                single = object_of(parts)
                if method == "GET" and code == 200 and single and apimachinery.wants_table(self.accept):
                    code, body = (
                        200,
                        apimachinery.table(
                            single, [body], str(self.store.rv), query.get("includeObject", "Metadata")
                        ),
                    )
        except ApiError as exc:
            code, body = exc.code, exc.status()
        except apimachinery.SelectorError as exc:
            code, body = 400, ApiError(400, "BadRequest", str(exc)).status()
        except (KeyError, ValueError, json.JSONDecodeError) as exc:
            code, body = 400, ApiError(400, "BadRequest", f"bad request: {exc}").status()
        self.send(code, body)

    def health(self, name: str, verbose: bool) -> None:
        """/healthz, /livez, /readyz: `ok`, or each check with `?verbose` (staging/src/k8s.io/
        apiserver/pkg/server/healthz/healthz.go), as text."""
        text = "ok"
        if verbose:
            checks = ["ping", "log", "etcd"] + (["informer-sync", "shutdown"] if name == "readyz" else [])
            text = "".join(f"[+]{c} ok\n" for c in checks) + f"{name} check passed\n"
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def check_access(self, method: str, path: str, query: dict) -> None:
        """Authentication, then RBAC authorization (auth.py): 401 or 403 as the API server."""
        with self.store.lock:
            try:
                self.user = auth.authenticate(
                    self.headers.get("Authorization"), self.store.config["token"], self.store.objects
                )
            except auth.Unauthorized:
                raise ApiError(401, "Unauthorized", "Unauthorized") from None
            as_user = self.headers.get("Impersonate-User")
            if as_user:
                self.user = self.impersonated(as_user)
            attrs = auth.request_attributes(self.user, method, path, query)
            allowed, _reason = auth.authorize(attrs, self.store.objects)
        if not allowed:
            details = {"kind": attrs.resource} if attrs.resource_request else {}
            if attrs.name:
                details["name"] = attrs.name
            if attrs.group:
                details["group"] = attrs.group
            raise ApiError(403, "Forbidden", auth.forbidden_message(attrs), details or None)

    def impersonated(self, name: str) -> auth.User:
        """`Impersonate-User` (kubectl --as): the requester must be allowed to impersonate that
        user (a ServiceAccount by its namespace and name); the request then runs as it, with
        the groups impersonation gives (staging/src/k8s.io/apiserver/pkg/endpoints/filters/
        impersonation.go). Impersonate-Group and -Extra are not served here."""
        user, _groups = auth.impersonation(name)
        attrs = auth.impersonation_attributes(self.user, name)
        if not auth.authorize(attrs, self.store.objects)[0]:
            raise ApiError(403, "Forbidden", auth.forbidden_message(attrs))
        return user

    @property
    def accept(self) -> str:
        return self.headers.get("Accept") or ""

    def selection(self, group: str, version: str, plural: str, ns: str | None, q: dict):
        """(kind, group/version, predicate) for a list or watch of a resource, its field and
        label selectors parsed (a selector the API server refuses raises SelectorError)."""
        info = resource_info(group, version, plural)
        if info is None or (ns and not info[1]):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        by_field = apimachinery.field_matcher(plural, q.get("fieldSelector", ""))
        by_label = apimachinery.label_matcher(q.get("labelSelector", ""))
        return info[0], f"{group}/{version}" if group else version, lambda o: by_field(o) and by_label(o)

    def collection(self, group: str, version: str, plural: str, ns: str | None, q: dict) -> tuple[int, dict]:
        """GET of a list: selectors applied, a Table when asked (the API server's list handler,
        staging/src/k8s.io/apiserver/pkg/endpoints/handlers/get.go ListResource)."""
        s = self.store
        kind, gv, selected = self.selection(group, version, plural, ns, q)
        items = [o for o in s.list_view(group, version, plural, ns) if selected(o)]
        if apimachinery.wants_table(self.accept):
            return 200, apimachinery.table(plural, items, str(s.rv), q.get("includeObject", "Metadata"))
        return 200, {
            "kind": f"{kind}List",
            "apiVersion": gv,
            "metadata": {"resourceVersion": str(s.rv)},
            "items": items,
        }

    def watch(self, group: str, version: str, plural: str, ns: str | None, q: dict) -> None:
        """A watch: newline-delimited watch events (meta/v1 WatchEvent) over a chunked response,
        until `timeoutSeconds` (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go).
        Without a resourceVersion (or "0"), and with sendInitialEvents=true, every current object
        comes first as ADDED — the latter then followed by the BOOKMARK annotated
        k8s.io/initial-events-end (the watch-list protocol, cacher/cache_watcher.go); from a
        list's resourceVersion, only what changes after it. Changes are found by comparing
        what a GET would show twice a second (status the controllers compute included)."""
        s = self.store
        kind, gv, selected = self.selection(group, version, plural, ns, q)
        timeout = min(float(q.get("timeoutSeconds") or 1800), 1800)
        initial = q.get("sendInitialEvents") == "true" or q.get("resourceVersion") in (None, "", "0")

        def snapshot() -> dict:
            with s.lock:
                items = s.list_view(group, version, plural, ns)
                rv = s.rv
            picked = {
                (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in items if selected(o)
            }
            return {"rv": rv, "items": picked}

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(kind_: str, obj: dict) -> None:
            data = json.dumps({"type": kind_, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        seen = snapshot()
        try:
            if initial:
                for obj in seen["items"].values():
                    emit("ADDED", obj)
            if q.get("sendInitialEvents") == "true":
                emit(
                    "BOOKMARK",
                    {
                        "kind": kind,
                        "apiVersion": gv,
                        "metadata": {
                            "resourceVersion": str(seen["rv"]),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                )
            end = time.monotonic() + timeout
            shown = {k: json.dumps(v, sort_keys=True) for k, v in seen["items"].items()}
            while time.monotonic() < end:
                time.sleep(0.5)
                now_ = snapshot()
                for key, obj in now_["items"].items():
                    text = json.dumps(obj, sort_keys=True)
                    if key not in shown:
                        emit("ADDED", obj)
                    elif shown[key] != text:
                        emit("MODIFIED", obj)
                    shown[key] = text
                for key in [k for k in shown if k not in now_["items"]]:
                    emit("DELETED", seen["items"].get(key) or json.loads(shown[key]))
                    del shown[key]
                seen = now_
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def route(self, method: str, parts: list[str], q: dict) -> tuple[int, dict]:
        s = self.store
        if method == "GET" and (discovery := self.discovery(parts)) is not None:
            return 200, discovery
        if parts[:2] == ["api", "v1"]:
            rest = parts[2:]
            if rest[:1] == ["nodes"]:
                return self.nodes(method, rest[1:], q)
            if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] == "pods":
                return self.pods(method, rest[1], rest[3:], q)
            if rest[:1] == ["namespaces"] and len(rest) == 4 and rest[2] == "secrets":
                if (rest[1], rest[3]) in s.secrets:
                    return self.secret(method, rest[1], rest[3], q)
            return self.generic(method, "", "v1", rest, q)
        if parts[:3] == ["apis", "apps", "v1"] and len(parts) == 7 and parts[3] == "namespaces":
            if parts[4] == "kube-system" and (parts[5], parts[6]) in s.workloads:
                return self.workload(method, parts[4], parts[5], parts[6], q)
        if parts[:2] == ["apis", "policy"] and parts[2:3] == ["v1"]:
            rest = parts[3:]
            if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] == "poddisruptionbudgets":
                return self.pdbs(method, rest[1], rest[3:])
        if parts == ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"] and method == "POST":
            body = self.body()
            self.admit("authorization.k8s.io", "v1", "SelfSubjectAccessReview", body, q)
            try:
                status = auth.access_review(self.user, body.get("spec") or {}, s.objects)
            except ValueError as exc:
                raise ApiError(
                    422, "Invalid", f"SelfSubjectAccessReview.authorization.k8s.io is invalid: {exc}"
                ) from None
            return 201, {
                **body,
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "metadata": {"creationTimestamp": None},
                "status": status,
            }
        if parts[:1] == ["apis"] and len(parts) >= 4:
            return self.generic(method, parts[1], parts[2], parts[3:], q)
        raise ApiError(404, "NotFound", f"the stand-in does not serve {method} /{'/'.join(parts)}")

    # Discovery (https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api)
    def discovery(self, parts: list[str]) -> dict | bytes | None:
        s = self.store
        if parts[:1] == ["openapi"] and s.schemas is not None:
            if parts == ["openapi", "v2"]:
                if s.openapi_v2 is None:
                    s.openapi_v2 = json.dumps(s.schemas.v2()).encode()
                return s.openapi_v2
            if parts == ["openapi", "v3"]:
                root = s.schemas.v3_root(list(BUILTIN_RESOURCES))
                for (group, version), doc in s.custom_openapi().items():
                    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
                    key = f"apis/{group}/{version}"
                    root["paths"][key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
                return root
            split = _rest(parts[2:]) if parts[:2] == ["openapi", "v3"] else None
            if split and not split[2] and (split[0], split[1]) not in BUILTIN_RESOURCES:
                return s.custom_openapi().get((split[0], split[1]))
            if split and not split[2] and (split[0], split[1]) in RESOURCES:
                group, version = split[0], split[1]
                listed = [(p, k, n) for p, k, n, _v in RESOURCES[(group, version)]]
                return s.schemas.v3(group, version, listed)
            return None
        if parts == ["version"]:
            served = s.server_version()
            return {
                "major": "1",
                "minor": served.split(".")[1],
                "gitVersion": served,
                "gitCommit": "stackspray-kube-api-stand-in",
                "gitTreeState": "clean",
                "goVersion": "stand-in",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            groups = []
            for group, version in RESOURCES:
                if group:
                    gv = {"groupVersion": f"{group}/{version}", "version": version}
                    groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        if parts == ["api", "v1"] or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            if (group, version) not in RESOURCES:
                return None
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": [
                    {
                        "name": plural,
                        "singularName": "" if "/" in plural else kind.lower(),
                        "namespaced": namespaced,
                        "kind": kind,
                        "verbs": verbs,
                        **({"shortNames": SHORT_NAMES[plural]} if plural in SHORT_NAMES else {}),
                        # A subresource of another group names it (kubectl drain looks for
                        # pods/eviction in policy/v1 before it evicts rather than deletes).
                        **({"group": "policy", "version": "v1"} if plural == "pods/eviction" else {}),
                        # The scale subresource is autoscaling/v1 Scale (what `kubectl scale` and
                        # its scale-kind resolver read).
                        **({"group": "autoscaling", "version": "v1"} if plural.endswith("/scale") else {}),
                        **({"categories": CATEGORIES[plural]} if plural in CATEGORIES else {}),
                    }
                    for plural, kind, namespaced, verbs in RESOURCES[(group, version)]
                ],
            }
        return None

    # Create, read, list, patch, replace, delete of any resource in RESOURCES
    # (https://kubernetes.io/docs/reference/using-api/api-concepts/).
    def generic(self, method: str, group: str, version: str, rest: list[str], q: dict) -> tuple[int, dict]:
        s = self.store
        gv = f"{group}/{version}" if group else version
        ns = ""
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        if len(rest) == 3 and rest[2] == "scale" and resource_info(group, version, f"{rest[0]}/scale"):
            return self.scale(method, gv, rest[0], ns, rest[1], q)
        if not rest or len(rest) > 2 or resource_info(group, version, rest[0]) is None:
            raise ApiError(404, "NotFound", f"the stand-in does not serve {method} {gv}/{'/'.join(rest)}")
        plural = rest[0]
        kind, namespaced = resource_info(group, version, plural)
        if namespaced != bool(ns) and not (namespaced and method == "GET" and len(rest) == 1):
            raise ApiError(404, "NotFound", f"{plural} is {'' if namespaced else 'not '}namespaced")
        what = f"{plural}.{group}" if group else plural
        if len(rest) == 1:
            if method == "GET":
                items = [
                    s.object_view(gv, plural, o)
                    for k, o in sorted(s.objects.items())
                    if k[0] == gv and k[1] == plural and (not ns or k[2] == ns)
                ]
                return 200, {
                    "kind": f"{kind}List",
                    "apiVersion": gv,
                    "metadata": {"resourceVersion": str(s.rv)},
                    "items": items,
                }
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed", f"{method} on {what}")
            body = self.body()
            self.admit(group, version, kind, body, q)
            name = (body.get("metadata") or {}).get("name")
            if not name:
                raise ApiError(422, "Invalid", f"{kind}: metadata.name: Required value")
            if ns and ("v1", "namespaces", "", ns) not in s.objects:
                raise ApiError(
                    404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
                )
            key = (gv, plural, ns, name)
            if key in s.objects:
                raise ApiError(
                    409, "AlreadyExists", f'{what} "{name}" already exists', {"name": name, "kind": plural}
                )
            return 201, s.object_view(gv, plural, s.write(key, body, None))
        name = rest[1]
        key = (gv, plural, ns, name)
        old = s.objects.get(key)
        if old is None and method == "PATCH" and self.content_type == APPLY_PATCH:
            # Server-side apply of an object that does not exist yet creates it.
            body = self.body()
            self.admit(group, version, kind, body, q)
            if ns and ("v1", "namespaces", "", ns) not in s.objects:
                raise ApiError(
                    404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
                )
            return 201, s.object_view(gv, plural, s.write(key, body, None))
        if old is None:
            raise ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "kind": plural})
        if method == "GET":
            return 200, s.object_view(gv, plural, old)
        if method == "PATCH":
            merged = self.patched({k: v for k, v in old.items() if k != "status"}, (group, version, kind))
            sent_rv = (merged.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                # A patch that names a resourceVersion is a precondition (optimistic concurrency).
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {what} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
            self.admit(group, version, kind, merged, q)
            return 200, s.object_view(gv, plural, s.write(key, merged, old))
        if method == "PUT":
            body = self.body()
            self.admit(group, version, kind, body, q)
            sent_rv = (body.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {what} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
            return 200, s.object_view(gv, plural, s.write(key, body, old))
        if method == "DELETE":
            if old["metadata"].get("finalizers"):
                # An object with finalizers is only marked: it goes when the last one is taken off
                # (apiserver registry/generic/registry/store.go updateForGracefulDeletionAndFinalizers).
                if not old["metadata"].get("deletionTimestamp"):
                    old["metadata"]["deletionTimestamp"] = now()
                    old["metadata"]["deletionGracePeriodSeconds"] = 0
                    s.touch(old)
                    s.save()
                return 200, s.object_view(gv, plural, old)
            view = s.object_view(gv, plural, old)
            del s.objects[key]
            if plural == "customresourcedefinitions":
                # The CRD's custom resources go with it (the apiextensions finalizer deletes them).
                spec = old.get("spec") or {}
                gvs = {f"{spec.get('group')}/{v['name']}" for v in spec.get("versions") or []}
                for k in [
                    k for k in s.objects if k[0] in gvs and k[1] == (spec.get("names") or {}).get("plural")
                ]:
                    del s.objects[k]
                s.serve_crds()
            options = json.loads(self.raw_body or b"{}") if self.raw_body else {}
            policy = q.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
            s.cascade(old["metadata"]["uid"], ns, orphan=policy == "Orphan")
            s.bind_claims()
            s.save()
            return 200, view
        raise ApiError(405, "MethodNotAllowed", f"{method} on {what}")

    def scale(self, method: str, gv: str, plural: str, ns: str, name: str, q: dict) -> tuple[int, dict]:
        """The scale subresource (autoscaling/v1 Scale): GET, PATCH (what `kubectl scale` sends)
        and PUT change the owner's spec.replicas (pkg/registry/apps/deployment/storage ScaleREST)."""
        s = self.store
        key = (gv, plural, ns, name)
        obj = s.objects.get(key)
        what = f"{plural}.apps"
        if obj is None:
            raise ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "kind": plural})

        def view(o: dict) -> dict:
            meta = o["metadata"]
            current = s.object_view(gv, plural, o).get("status", {}).get("replicas", 0)
            labels = ((o.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    k: meta[k]
                    for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                    if k in meta
                },
                "spec": {"replicas": (o.get("spec") or {}).get("replicas", 1)},
                "status": {
                    "replicas": current,
                    "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                },
            }

        if method == "GET":
            return 200, view(obj)
        if method in ("PATCH", "PUT"):
            body = self.patched(view(obj)) if method == "PATCH" else self.body()
            self.admit("autoscaling", "v1", "Scale", body, q)
            sent_rv = (body.get("metadata") or {}).get("resourceVersion")
            if method == "PUT" and sent_rv and sent_rv != obj["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {what} "{name}": the object has been modified',
                )
            replicas = (body.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(
                    422,
                    "Invalid",
                    (
                        f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                        f"{replicas!r}: must be greater than or equal to 0"
                    ),
                )
            new = copy.deepcopy(obj)
            new.setdefault("spec", {})["replicas"] = replicas
            return 200, view(s.put_object(key, new, obj))
        raise ApiError(405, "MethodNotAllowed", f"{method} on {plural}/scale")

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def merge_body(self) -> dict:
        """The body of a merge, strategic merge or server-side apply patch (415 for other types);
        `patched` applies it (server-side apply does not track field ownership)."""
        if self.content_type not in (MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
            raise ApiError(
                415, "UnsupportedMediaType", f"the stand-in takes merge patches here, not {self.content_type}"
            )
        return self.body()

    def patched(self, target: dict, gvk: tuple[str, str, str] | None = None) -> dict:
        """`target` with the request's patch applied: RFC 6902 JSON patch, a strategic merge
        patch by the official schema's merge keys, or a merge patch."""
        if self.content_type == JSON_PATCH:
            ops = json.loads(self.raw_body or b"[]")
            return apimachinery.json_patch(target, ops)
        body = self.merge_body()
        if self.content_type == STRATEGIC_PATCH and gvk and self.store.schemas is not None:
            return self.store.schemas.strategic_merge(*gvk, target, body) or {}
        return merge_patch(target, body)

    # core/v1 Secret (https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/)
    def secret(self, method: str, ns: str, name: str, q: dict) -> tuple[int, dict]:
        s = self.store
        sec = s.secrets.get((ns, name))
        if sec is None:
            raise ApiError(404, "NotFound", f'secrets "{name}" not found', {"name": name, "kind": "secrets"})
        if method == "PATCH":
            patched = self.patched(sec, ("", "v1", "Secret"))
            self.admit("", "v1", "Secret", patched, q)
            data = dict(patched.get("data") or {})
            for k, v in (patched.get("stringData") or {}).items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            merged = dict(
                sec, metadata=keep_server_fields(sec["metadata"], patched.get("metadata") or {}), data=data
            )
            s.secrets[(ns, name)] = merged
            s.touch(merged)
            s.save()
            return 200, merged
        if method == "GET":
            return 200, sec
        raise ApiError(405, "MethodNotAllowed", f"{method} on a secret")

    # apps/v1 DaemonSet and Deployment: read, patch (rollout restart); status as in
    # https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/daemon-set-v1/ and deployment-v1/
    def workload(self, method: str, ns: str, plural: str, name: str, q: dict) -> tuple[int, dict]:
        s = self.store
        w = s.workloads.get((plural, name)) if ns == "kube-system" else None
        if w is None:
            raise ApiError(
                404, "NotFound", f'{plural}.apps "{name}" not found', {"name": name, "kind": plural}
            )
        if method == "PATCH":
            candidate = self.patched(
                {k: w[k] for k in ("apiVersion", "kind", "metadata", "spec")}, ("apps", "v1", w["kind"])
            )
            self.admit("apps", "v1", w["kind"], candidate, q)
            s.patch_workload(w, candidate)
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} on {plural}")
        return 200, s.workload_view(w)

    # core/v1 Node: read, list, patch (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/)
    def nodes(self, method: str, rest: list[str], q: dict) -> tuple[int, dict]:
        s = self.store
        if not rest and method == "GET":
            items = [s.node_view(n) for n in s.nodes.values()]
            return 200, {
                "kind": "NodeList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(s.rv)},
                "items": items,
            }
        name = rest[0]
        if name not in s.nodes:
            raise ApiError(404, "NotFound", f'nodes "{name}" not found', {"name": name, "kind": "nodes"})
        if method == "GET":
            return 200, s.node_view(s.nodes[name])
        if method == "PATCH":
            old = s.nodes[name]
            patched = self.patched(old, ("", "v1", "Node"))
            self.admit("", "v1", "Node", patched, q)
            # metadata and spec are the client's; status is the kubelet's and the controllers'.
            meta = keep_server_fields(old["metadata"], patched.get("metadata") or {})
            node = dict(old, metadata=meta, spec=patched.get("spec") or {})
            s.nodes[name] = node
            s.touch(node)
            s.save()
            return 200, s.node_view(node)
        raise ApiError(405, "MethodNotAllowed", f"{method} on a node")

    # core/v1 Pod (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/)
    def pods(self, method: str, ns: str, rest: list[str], q: dict) -> tuple[int, dict]:
        s = self.store
        if not rest:
            if method == "POST":
                body = self.body()
                self.admit("", "v1", "Pod", body, q)
                name = body["metadata"]["name"]
                if (ns, name) in s.pods:
                    raise ApiError(409, "AlreadyExists", f'pods "{name}" already exists')
                node = body.get("spec", {}).get("nodeName")
                if node and node not in s.nodes:
                    # Bound to a node that does not exist: the API server accepts it and the pod
                    # never runs; the stand-in says so at once (nothing would ever delete it).
                    raise ApiError(422, "Invalid", f'spec.nodeName: node "{node}" does not exist')
                pod = s.store_pod(ns, body)
                s.schedule_pending()
                s.save()
                return 201, s.pod_view(pod)
        name = rest[0]
        if rest[1:] == ["eviction"] and method == "POST":
            s.evict(ns, name)
            return 201, {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            }
        pod = s.pods.get((ns, name))
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        if method == "GET" and len(rest) == 1:
            return 200, s.pod_view(pod)
        if method == "DELETE" and len(rest) == 1:
            del s.pods[(ns, name)]
            s.save()
            return 200, s.pod_view(pod)
        if method == "GET" and rest[1:] == ["log"]:
            # The API server proxies logs from the node's kubelet (pkg/registry/core/pod/rest/
            # log.go); no kubelet listens here, so it answers as for a node whose kubelet is down.
            node = pod["spec"].get("nodeName")
            if not node:
                raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
            ip = s.node_ip(node)
            container = q.get("container") or pod["spec"]["containers"][0]["name"]
            raise ApiError(
                500,
                "InternalError",
                f'Get "https://{ip}:10250/containerLogs/{ns}/{name}/{container}": dial tcp {ip}:10250: '
                "connect: connection refused",
            )
        raise ApiError(405, "MethodNotAllowed", f"{method} on pods/{'/'.join(rest)}")

    # policy/v1 PodDisruptionBudget (https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/pod-disruption-budget-v1/)
    def pdbs(self, method: str, ns: str, rest: list[str]) -> tuple[int, dict]:
        s = self.store
        view = s.pdb_view

        if not rest and method == "GET":
            items = [view(b) for (bns, _), b in sorted(s.pdbs.items()) if bns == ns]
            return 200, {
                "kind": "PodDisruptionBudgetList",
                "apiVersion": "policy/v1",
                "metadata": {"resourceVersion": str(s.rv)},
                "items": items,
            }
        if not rest and method == "POST":
            body = self.body()
            name = body["metadata"]["name"]
            if (ns, name) in s.pdbs:
                raise ApiError(409, "AlreadyExists", f'poddisruptionbudgets.policy "{name}" already exists')
            pdb = {
                "kind": "PodDisruptionBudget",
                "apiVersion": "policy/v1",
                "metadata": s.meta(name, ns),
                "spec": body["spec"],
            }
            s.pdbs[(ns, name)] = pdb
            s.save()
            return 201, view(pdb)
        name = rest[0]
        pdb = s.pdbs.get((ns, name))
        if pdb is None:
            raise ApiError(404, "NotFound", f'poddisruptionbudgets.policy "{name}" not found')
        if method == "GET":
            return 200, view(pdb)
        if method == "DELETE":
            del s.pdbs[(ns, name)]
            s.save()
            return 200, view(pdb)
        raise ApiError(405, "MethodNotAllowed", f"{method} on a PodDisruptionBudget")
