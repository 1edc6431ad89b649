"""STAND-IN: reading the request bodies client-go sends as Kubernetes protobuf.

Typed clients (kubectl's `auth can-i`, among others) send built-in objects as
`application/vnd.kubernetes.protobuf`: the 4-byte magic `k8s\\x00` and a runtime.Unknown
{typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2, contentEncoding = 3, contentType = 4}
(staging/src/k8s.io/apimachinery/pkg/runtime/serializer/protobuf/protobuf.go,
staging/src/k8s.io/apimachinery/pkg/runtime/generated.proto), `raw` the object's message of
staging/src/k8s.io/api/<group>/<version>/generated.proto. The stand-in reads the kinds listed in
MESSAGES into the JSON form the rest of it handles, and answers in JSON (the client's Accept
allows it; client-go decodes by the answer's Content-Type). Any other kind is a 415, as the API
server answers a media type it cannot decode."""

from __future__ import annotations

import base64

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# message -> {field number: (json name, type)}. Types: string, bytes (base64 in JSON), bool,
# int, "map:string" / "map:bytes" (entries {key = 1, value = 2}), "list:string", a message name
# or "list:<message>". Fields the stand-in does not read are skipped.
MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    # staging/src/k8s.io/api/authorization/v1/generated.proto
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: ("namespace", "string"),
        2: ("verb", "string"),
        3: ("group", "string"),
        4: ("version", "string"),
        5: ("resource", "string"),
        6: ("subresource", "string"),
        7: ("name", "string"),
    },
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    # staging/src/k8s.io/api/core/v1/generated.proto
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:string"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:bytes"),
        3: ("type", "string"),
        4: ("stringData", "map:string"),
        5: ("immutable", "bool"),
    },
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 4: ("automountServiceAccountToken", "bool")},
    "Namespace": {1: ("metadata", "ObjectMeta")},
    # staging/src/k8s.io/api/policy/v1/generated.proto
    "Eviction": {1: ("metadata", "ObjectMeta"), 2: ("deleteOptions", "DeleteOptions")},
    # staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        11: ("labels", "map:string"),
        12: ("annotations", "map:string"),
        14: ("finalizers", "list:string"),
    },
    "DeleteOptions": {
        1: ("gracePeriodSeconds", "int"),
        2: ("preconditions", "Preconditions"),
        3: ("orphanDependents", "bool"),
        4: ("propagationPolicy", "string"),
        5: ("dryRun", "list:string"),
    },
    "Preconditions": {1: ("uid", "string"), 2: ("resourceVersion", "string")},
}
KINDS = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "Namespace"),
    ("policy/v1", "Eviction"),
}


class Unsupported(Exception):
    """A body the stand-in cannot read (a kind it does not decode, or not protobuf at all)."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data):
            raise Unsupported("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message."""
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i : i + n], i + n
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise Unsupported(f"wire type {wire}")
        out.append((number, wire, value))
    return out


def _scalar(value, kind: str):
    if kind == "string":
        return value.decode()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return value - (1 << 64) if value >= 1 << 63 else value  # int64, two's complement
    return _message(value, kind)


def _message(data: bytes, name: str) -> dict:
    schema, out = MESSAGES[name], {}
    for number, _wire, value in fields(data):
        if number not in schema:
            continue  # a field the stand-in does not use
        key, kind = schema[number]
        if kind.startswith("map:"):
            entry = {n: v for n, _w, v in fields(value)}
            out.setdefault(key, {})[entry.get(1, b"").decode()] = _scalar(entry.get(2, b""), kind[4:])
        elif kind.startswith("list:"):
            out.setdefault(key, []).append(_scalar(value, kind[5:]))
        else:
            out[key] = _scalar(value, kind)
    return out


def decode(body: bytes) -> dict:
    """The object a protobuf request body holds, as JSON would spell it."""
    if not body.startswith(MAGIC):
        raise Unsupported("no k8s protobuf magic")
    unknown = dict((n, v) for n, _w, v in fields(body[len(MAGIC) :]))
    type_meta = {n: v.decode() for n, _w, v in fields(unknown.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    if (api_version, kind) not in KINDS:
        raise Unsupported(f"{api_version} {kind}")
    return {"apiVersion": api_version, "kind": kind, **_message(unknown.get(2, b""), kind)}
