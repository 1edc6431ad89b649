"""STAND-IN OpenAPI and field validation, from the official Kubernetes 1.35 object definitions
(kubernetes-validate's `_definitions.json`, generated from kubernetes/kubernetes
api/openapi-spec; see stackspray_sandbox/kube_schemas.py).

- `/openapi/v2` and `/openapi/v3` (its root and one document per group/version), as kube-apiserver
  serves them: every definition of the group/version's kinds and what they reference, and for
  each resource its POST/PUT/PATCH operations tagged with `x-kubernetes-group-version-kind` and
  the `fieldValidation` query parameter — which is how kubectl (cli-runtime
  resource/query_param_verifier_v3.go) decides to leave validation to the server.
- Validation of every object written, as the API server's decoding does
  (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go and the strict JSON decoder): a
  value of the wrong type is refused with a decoding error whatever `fieldValidation` says; an
  unknown field is an error under `Strict`, a warning under `Warn` (the default when the client
  does not say) and nothing under `Ignore`.

The definitions are JSON Schema (kubernetes-validate's form: `type: [T, "null"]`, `$defs`);
they are turned back into OpenAPI's form here. Pure functions; server.py serves them."""

from __future__ import annotations

import copy
import hashlib
import json

GO_TYPES = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool"}


class Schemas:
    def __init__(self, definitions: dict) -> None:
        self.defs: dict[str, dict] = definitions["$defs"]
        self.by_gvk: dict[tuple[str, str, str], str] = {}
        for name, d in self.defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind") or []:
                key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
                # A kind's own definition, not a List or an alias of another version's.
                if name.endswith("." + gvk["kind"]) and key not in self.by_gvk:
                    self.by_gvk[key] = name
        self._v3: dict[str, dict] = {}

    @classmethod
    def load(cls, path: str) -> Schemas | None:
        try:
            with open(path) as fh:
                return cls(json.load(fh))
        except (OSError, ValueError, KeyError):
            return None

    # -- OpenAPI documents ---------------------------------------------------------------------
    def _closure(self, roots: list[str]) -> list[str]:
        seen: list[str] = []
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name in seen or name not in self.defs:
                continue
            seen.append(name)
            for ref in _refs(self.defs[name]):
                todo.append(ref)
        return sorted(seen)

    def v2(self) -> dict:
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.35.4"},
            "paths": {},
            "definitions": {n: _openapi(d, "#/definitions/") for n, d in self.defs.items()},
        }

    def v3_root(self, group_versions: list[tuple[str, str]]) -> dict:
        paths = {}
        for group, version in group_versions:
            key = _gv_path(group, version)
            digest = hashlib.sha256(f"{key} v1.35.4 {len(self.defs)}".encode()).hexdigest()
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest[:32].upper()}"}
        return {"paths": paths}

    def v3(self, group: str, version: str, resources: list[tuple[str, str, bool]]) -> dict:
        """The document of one group/version: its resources' operations and schemas (built once:
        a group/version's resources do not change while the server runs)."""
        key = _gv_path(group, version)
        if key in self._v3:
            return self._v3[key]
        roots, paths = [], {}
        base = f"/{key}"
        for plural, kind, namespaced in resources:
            name = self.by_gvk.get((group, version, kind))
            if not name or "/" in plural:
                continue
            roots.append(name)
            gvk = {"group": group, "version": version, "kind": kind}
            ref = {"$ref": f"#/components/schemas/{name}"}
            body = {"content": {"application/json": {"schema": ref}}}
            answer = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
            validation = [
                {
                    "name": "fieldValidation",
                    "in": "query",
                    "description": "Unknown and duplicate fields: Ignore, Warn or Strict.",
                    "schema": {"type": "string", "uniqueItems": True},
                }
            ]
            coll = f"{base}/namespaces/{{namespace}}/{plural}" if namespaced else f"{base}/{plural}"

            paths[coll] = {"post": _operation("post", kind, gvk, validation, body, answer)}
            paths[f"{coll}/{{name}}"] = {
                "put": _operation("put", kind, gvk, validation, body, answer),
                "patch": _operation("patch", kind, gvk, validation, body, answer),
            }
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.35.4"},
            "paths": paths,
            "components": {
                "schemas": {n: _openapi(self.defs[n], "#/components/schemas/") for n in self._closure(roots)}
            },
        }
        self._v3[key] = doc
        return doc

    # -- strategic merge patch -----------------------------------------------------------------
    def strategic_merge(self, group: str, version: str, kind: str, original: dict, patch: dict) -> dict:
        """A strategic merge patch applied as the API server applies it
        (k8s.io/apimachinery/pkg/util/strategicpatch/patch.go): lists whose schema says
        `x-kubernetes-patch-strategy: merge` are merged by their `x-kubernetes-patch-merge-key`
        (containers by name, …), the directives `$patch` (replace, delete, merge), `$retainKeys`,
        `$deleteFromPrimitiveList/…` and `$setElementOrder/…` are obeyed, other lists replaced."""
        name = self.by_gvk.get((group, version, kind))
        schema = {"$ref": f"#/$defs/{name}"} if name else {}
        return self._merge_map(copy.deepcopy(original), patch, schema)

    def _props(self, schema: dict) -> dict:
        schema, _ = self._resolve(schema or {})
        return schema.get("properties") or {}

    def _merge_map(self, original: dict, patch: dict, schema: dict) -> dict | None:
        if not isinstance(original, dict):
            original = {}
        directive = patch.get("$patch")
        if directive == "replace":
            return {k: v for k, v in patch.items() if k != "$patch"}
        if directive == "delete":
            return None
        props = self._props(schema)
        resolved, _ = self._resolve(schema or {})
        extra = (
            resolved.get("additionalProperties")
            if isinstance(resolved.get("additionalProperties"), dict)
            else {}
        )
        for key, value in patch.items():
            if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
                continue
            if key.startswith("$deleteFromPrimitiveList/"):
                field = key.split("/", 1)[1]
                if isinstance(original.get(field), list):
                    original[field] = [v for v in original[field] if v not in value]
                continue
            sub = props.get(key) or extra
            if value is None:
                original.pop(key, None)
            elif isinstance(value, dict):
                merged = self._merge_map(original.get(key), value, sub)
                if merged is None:
                    original.pop(key, None)
                else:
                    original[key] = merged
            elif isinstance(value, list):
                original[key] = self._merge_list(original.get(key), value, sub)
            else:
                original[key] = value
        if isinstance(patch.get("$retainKeys"), list):
            keep = set(patch["$retainKeys"])
            original = {k: v for k, v in original.items() if k in keep}
        return original

    def _merge_list(self, original, patch: list, schema: dict) -> list:
        resolved, _ = self._resolve(schema or {})
        strategy = str(
            resolved.get("x-kubernetes-patch-strategy")
            or (schema or {}).get("x-kubernetes-patch-strategy")
            or ""
        )
        key = resolved.get("x-kubernetes-patch-merge-key") or (schema or {}).get(
            "x-kubernetes-patch-merge-key"
        )
        if "merge" not in strategy.split(",") or not isinstance(original, list):
            return [self._strip(v) for v in patch]
        items = resolved.get("items") or {}
        if not key:  # a list of primitives merged as a set
            return original + [v for v in patch if v not in original]
        result = list(original)
        for item in patch:
            if not isinstance(item, dict):
                continue
            at = next(
                (i for i, o in enumerate(result) if isinstance(o, dict) and o.get(key) == item.get(key)), None
            )
            if item.get("$patch") == "delete":
                if at is not None:
                    del result[at]
            elif at is None:
                result.append(self._strip(item))
            else:
                merged = self._merge_map(result[at], item, items)
                if merged is None:
                    del result[at]
                else:
                    result[at] = merged
        return result

    def _strip(self, value):
        """A new value without patch directives."""
        if isinstance(value, dict):
            return {
                k: self._strip(v)
                for k, v in value.items()
                if not (k.startswith("$setElementOrder/") or k in ("$patch", "$retainKeys"))
                and not k.startswith("$deleteFromPrimitiveList/")
            }
        if isinstance(value, list):
            return [self._strip(v) for v in value]
        return value

    # -- validation ----------------------------------------------------------------------------
    def check(self, group: str, version: str, kind: str, obj: dict) -> tuple[list[str], str | None]:
        """(unknown field paths, the decoding error of a wrong type or None) for an object."""
        name = self.by_gvk.get((group, version, kind))
        if not name:
            return [], None
        unknown: list[str] = []
        try:
            self._walk(obj, {"$ref": f"#/$defs/{name}"}, "", kind, unknown)
        except _TypeError as exc:
            return unknown, f'{kind} in version "{version}" cannot be handled as a {kind}: {exc}'
        return unknown, None

    def _resolve(self, schema: dict) -> tuple[dict, str | None]:
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[1]
            return self.defs.get(name, {}), name.rsplit(".", 1)[1]
        return schema, None

    def _walk(self, value, schema: dict, path: str, owner: str, unknown: list[str]) -> None:
        schema, named = self._resolve(schema)
        owner = named or owner
        if value is None:
            return
        if "oneOf" in schema:  # IntOrString, Quantity
            if not any(_is(value, _types(s)) for s in schema["oneOf"]):
                raise _TypeError(value, owner, path, "intstr.IntOrString or resource.Quantity")
            return
        types = _types(schema)
        if types and not _is(value, types):
            raise _TypeError(value, owner, path, _go_type(schema, types))
        if isinstance(value, dict):
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            if schema.get("x-kubernetes-preserve-unknown-fields") or (props is None and extra is None):
                return
            for k, v in value.items():
                here = f"{path}.{k}" if path else k
                if props and k in props:
                    self._walk(v, props[k], here, owner, unknown)
                elif isinstance(extra, dict):
                    self._walk(v, extra, here, owner, unknown)
                else:
                    unknown.append(here)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, v in enumerate(value):
                self._walk(v, schema["items"], f"{path}[{i}]", owner, unknown)


FIELD_VALIDATION = [
    {
        "name": "fieldValidation",
        "in": "query",
        "description": "Unknown and duplicate fields: Ignore, Warn or Strict.",
        "schema": {"type": "string", "uniqueItems": True},
    }
]


def custom_v3(group: str, version: str, kinds: list[tuple[str, str, bool, dict]]) -> dict:
    """The OpenAPI v3 document of a CustomResourceDefinition's group/version, as the
    apiextensions-apiserver publishes it (pkg/controller/openapi/builder/builder.go): each served
    kind's schema from the CRD (named by the reversed group, e.g. io.cert-manager.v1.ClusterIssuer)
    and its operations, which accept `fieldValidation` (so kubectl leaves validation to the server)."""
    base = f"/{_gv_path(group, version)}"
    prefix = ".".join(reversed(group.split(".")))
    paths, schemas = {}, {}
    for plural, kind, namespaced, schema in kinds:
        name = f"{prefix}.{version}.{kind}"
        gvk = {"group": group, "version": version, "kind": kind}
        schemas[name] = {**schema, "x-kubernetes-group-version-kind": [gvk]}
        ref = {"$ref": f"#/components/schemas/{name}"}
        body = {"content": {"application/json": {"schema": ref}}}
        answer = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        coll = f"{base}/namespaces/{{namespace}}/{plural}" if namespaced else f"{base}/{plural}"
        paths[coll] = {"post": _operation("post", kind, gvk, FIELD_VALIDATION, body, answer)}
        paths[f"{coll}/{{name}}"] = {
            "put": _operation("put", kind, gvk, FIELD_VALIDATION, body, answer),
            "patch": _operation("patch", kind, gvk, FIELD_VALIDATION, body, answer),
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _operation(action: str, kind: str, gvk: dict, params: list, body: dict, answer: dict) -> dict:
    return {
        "operationId": f"{action}{kind}",
        "parameters": params,
        "requestBody": body,
        "responses": answer,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }


class _TypeError(Exception):
    def __init__(self, value, owner: str, path: str, go_type: str) -> None:
        plain = ".".join(p.split("[")[0] for p in path.split("."))
        got = _json_type(value)
        super().__init__(
            f"json: cannot unmarshal {got} into Go struct field {owner}.{plain} of type {go_type}"
        )


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _types(schema: dict) -> list[str]:
    t = schema.get("type")
    if t is None:
        return []
    return [x for x in (t if isinstance(t, list) else [t]) if x != "null"]


def _is(value, types: list[str]) -> bool:
    if not types:
        return True
    for t in types:
        if t == "string" and isinstance(value, str):
            return True
        if t == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if t == "boolean" and isinstance(value, bool):
            return True
        if t == "object" and isinstance(value, dict):
            return True
        if t == "array" and isinstance(value, list):
            return True
    return False


def _go_type(schema: dict, types: list[str]) -> str:
    t = types[0]
    if t == "array":
        item = (schema.get("items") or {}).get("$ref", "")
        return "[]v1." + item.rsplit(".", 1)[1] if item else "[]string"
    if t == "object":
        return "map[string]string" if isinstance(schema.get("additionalProperties"), dict) else "struct"
    if t == "integer":
        return "int32" if schema.get("format") == "int32" else "int64"
    return GO_TYPES.get(t, t)


def _refs(schema) -> list[str]:
    found = []
    if isinstance(schema, dict):
        for k, v in schema.items():
            if k == "$ref" and isinstance(v, str):
                found.append(v.rsplit("/", 1)[1])
            else:
                found += _refs(v)
    elif isinstance(schema, list):
        for v in schema:
            found += _refs(v)
    return found


def _openapi(schema, prefix: str):
    """JSON Schema (kubernetes-validate's form) back to the OpenAPI form kube-apiserver serves."""
    if isinstance(schema, list):
        return [_openapi(s, prefix) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k == "$ref":
            out[k] = prefix + v.rsplit("/", 1)[1]
        elif k == "type":
            types = [t for t in (v if isinstance(v, list) else [v]) if t != "null"]
            if types:
                out[k] = types[0]
        elif k == "oneOf":
            kinds = {t for s in v for t in _types(s)}
            out["type"] = "string"
            out["format"] = "int-or-string" if "integer" in kinds else "quantity"
            if "integer" in kinds:
                out["x-kubernetes-int-or-string"] = True
        elif k == "properties":
            props = {}
            for name, p in v.items():
                p = _openapi(p, prefix)
                if name in ("apiVersion", "kind"):
                    p = copy.deepcopy(p)
                    p.pop("enum", None)  # added by kubernetes-validate; not in the API server's spec
                props[name] = p
            out[k] = props
        else:
            out[k] = _openapi(v, prefix)
    return out


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"
