"""STAND-IN API machinery: what a Kubernetes API server does with every list and get, whatever
the resource — field and label selectors, Table answers for `kubectl get`, ages — as the
upstream code does it (each function names the file it follows). Pure functions on plain
objects; server.py serves them. Copied to the node beside server.py."""

from __future__ import annotations

import calendar
import copy
import re
import time

# -- selectors ------------------------------------------------------------------------------


class SelectorError(ValueError):
    """A selector the API server refuses (400 BadRequest)."""


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """`a=b,c!=d` → [(field, op, value)] (k8s.io/apimachinery/pkg/fields/selector.go
    ParseSelector: terms split on ",", operators "=", "==", "!=")."""
    terms = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        for op in ("!=", "==", "="):
            if op in part:
                field, value = part.split(op, 1)
                terms.append((field.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return terms


# The fields each resource can be selected on: metadata.name and metadata.namespace for every
# resource (pkg/registry/generic/matcher.go ObjectMetaFieldsSet), and per resource what its
# strategy's GetAttrs adds (pkg/registry/core/pod/strategy.go PodToSelectableFields,
# node/strategy.go NodeToSelectableFields, secret/strategy.go, event/strategy.go).
SELECTABLE = {
    "pods": {
        "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
        "spec.restartPolicy": lambda o: o.get("spec", {}).get("restartPolicy", "Always"),
        "spec.schedulerName": lambda o: o.get("spec", {}).get("schedulerName", "default-scheduler"),
        "spec.serviceAccountName": lambda o: o.get("spec", {}).get("serviceAccountName", ""),
        "spec.hostNetwork": lambda o: str(bool(o.get("spec", {}).get("hostNetwork"))).lower(),
        "status.phase": lambda o: o.get("status", {}).get("phase", ""),
        "status.podIP": lambda o: o.get("status", {}).get("podIP", ""),
        "status.nominatedNodeName": lambda o: o.get("status", {}).get("nominatedNodeName", ""),
    },
    "nodes": {"spec.unschedulable": lambda o: str(bool(o.get("spec", {}).get("unschedulable"))).lower()},
    "secrets": {"type": lambda o: o.get("type", "")},
    "events": {
        **{
            f"involvedObject.{k}": (lambda key: lambda o: o.get("involvedObject", {}).get(key, ""))(k)
            for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        },
        "reason": lambda o: o.get("reason", ""),
        "reportingComponent": lambda o: o.get("reportingComponent", ""),
        "source": lambda o: o.get("source", {}).get("component", ""),
        "type": lambda o: o.get("type", ""),
    },
    "namespaces": {"status.phase": lambda o: o.get("status", {}).get("phase", "")},
}


def field_matcher(plural: str, text: str):
    """A predicate for the objects a field selector selects; SelectorError for a field the
    resource cannot be selected on ("field label not supported", as the API server says)."""
    terms = parse_field_selector(text or "")
    getters = {
        "metadata.name": lambda o: o.get("metadata", {}).get("name", ""),
        "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace", ""),
        **SELECTABLE.get(plural, {}),
    }
    for field, _op, _value in terms:
        if field not in getters:
            raise SelectorError(f"field label not supported: {field}")

    def matches(obj: dict) -> bool:
        return all((getters[f](obj) == v) == (op == "=") for f, op, v in terms)

    return matches


_LABEL_TERM = re.compile(
    r"^\s*(?:(?P<not>!)\s*(?P<nkey>[^\s=!,()]+)"
    r"|(?P<key>[^\s=!,()]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*$"
)


def _split_terms(text: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return terms


def label_matcher(text: str):
    """A predicate for a label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`,
    `k notin (a,b)` (k8s.io/apimachinery/pkg/labels/selector.go Parse)."""
    checks = []
    for term in _split_terms(text or ""):
        m = _LABEL_TERM.match(term)
        if not m:
            raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
        if m["not"]:
            checks.append(lambda labels, k=m["nkey"]: k not in labels)
        elif m["op"]:
            key, value, neg = m["key"], m["value"], m["op"] == "!="
            checks.append(lambda labels, k=key, v=value, n=neg: (labels.get(k) == v) != n)
        elif m["setop"]:
            values = {v.strip() for v in m["values"].split(",") if v.strip()}
            key, neg = m["key"], m["setop"] == "notin"
            if neg:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
            else:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
        else:
            checks.append(lambda labels, k=m["key"]: k in labels)

    def matches(obj: dict) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(c(labels) for c in checks)

    return matches


# -- JSON patch ------------------------------------------------------------------------------


class PatchError(ValueError):
    """A JSON patch that cannot be applied (422 on the API server)."""


def json_patch(target: dict, ops: list) -> dict:
    """RFC 6902 add, remove, replace, move, copy and test over RFC 6901 pointers (the API server
    uses github.com/evanphx/json-patch)."""
    doc = copy.deepcopy(target)

    def walk(pointer: str):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        if not parts:
            raise PatchError("the whole document cannot be patched")
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        return parent, parts[-1]

    try:
        for op in ops:
            kind, path = op["op"], op["path"]
            if kind in ("add", "replace", "test"):
                value = copy.deepcopy(op["value"])
            if kind in ("move", "copy"):
                src_parent, src_key = walk(op["from"])
                value = copy.deepcopy(
                    src_parent[int(src_key)] if isinstance(src_parent, list) else src_parent[src_key]
                )
                if kind == "move":
                    del src_parent[int(src_key) if isinstance(src_parent, list) else src_key]
            parent, key = walk(path)
            if kind == "test":
                have = parent[int(key)] if isinstance(parent, list) else parent.get(key)
                if have != value:
                    raise PatchError(f"testing value {path} failed")
            elif kind == "remove":
                del parent[int(key) if isinstance(parent, list) else key]
            elif isinstance(parent, list):
                index = len(parent) if key == "-" else int(key)
                if kind == "replace":
                    parent[index] = value
                else:
                    parent.insert(index, value)
            else:
                if kind == "replace" and key not in parent:
                    raise PatchError(f"replace operation does not apply: doc is missing key: {path}")
                parent[key] = value
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise PatchError(f"the JSON patch cannot be applied: {exc}") from None
    return doc


# -- defaulting ----------------------------------------------------------------------------


def with_defaults(plural: str, obj: dict) -> dict:
    """The fields the API server defaults on a stored object when a client left them out
    (pkg/apis/apps/v1/defaults.go SetDefaults_DaemonSet and SetDefaults_Deployment; a Service's
    status always has its loadBalancer, empty until a controller fills it)."""
    if plural == "services":
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
        return obj
    if plural not in ("daemonsets", "deployments"):
        return obj
    spec = obj.setdefault("spec", {})
    if plural == "daemonsets":
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
    elif plural == "deployments":
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    return obj


# -- Table answers (what `kubectl get` asks for) -----------------------------------------------


def wants_table(accept: str | None) -> bool:
    """`Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` (kubectl get's request;
    staging/src/k8s.io/apiserver/pkg/endpoints/handlers/response.go transformObject)."""
    for part in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration HumanDuration (what every AGE column shows)."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        dy = (h // 24) % 365
        return f"{h // 24 // 365}y{dy}d" if dy else f"{h // 24 // 365}y"
    return f"{h // 24 // 365}y"


def age(obj: dict, now: float | None = None) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))
    return human_duration((now or time.time()) - then)


def _ready_condition(obj: dict) -> str | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status")
    return None


def _node_status(o: dict) -> str:
    ready = _ready_condition(o)
    status = "Ready" if ready == "True" else ("NotReady" if ready is not None else "Unknown")
    if o.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(o: dict) -> str:
    roles = sorted(
        k.split("/", 1)[1]
        for k in (o.get("metadata", {}).get("labels") or {})
        if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]
    )
    return ",".join(roles) or "<none>"


def _pod_ready(o: dict) -> str:
    containers = o.get("spec", {}).get("containers") or []
    ready = len(containers) if _ready_condition(o) == "True" else 0
    return f"{ready}/{len(containers)}"


def _selector(o: dict) -> str:
    sel = o.get("spec", {}).get("nodeSelector") or o.get("spec", {}).get("template", {}).get("spec", {}).get(
        "nodeSelector"
    )
    return ",".join(f"{k}={v}" for k, v in sorted((sel or {}).items())) or "<none>"


def _int_or_none(value) -> str:
    return "N/A" if value is None else str(value)


def _involved(o: dict) -> str:
    ref = o.get("involvedObject", {})
    return f"{ref.get('kind', '').lower()}/{ref.get('name', '')}"


def _modes(modes) -> str:
    short = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    return ",".join(short.get(m, m) for m in modes or [])


def _claim(o: dict) -> str:
    ref = o.get("spec", {}).get("claimRef")
    return f"{ref.get('namespace')}/{ref.get('name')}" if ref else ""


def _labels(sel) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((sel or {}).items())) or "<none>"


def _external_ips(o: dict) -> str:
    spec = o.get("spec", {})
    ips = list(spec.get("externalIPs") or [])
    if spec.get("type") == "LoadBalancer":
        ips += [
            i.get("ip") or i.get("hostname")
            for i in o.get("status", {}).get("loadBalancer", {}).get("ingress") or []
        ]
        return ",".join(ips) or "<pending>"
    if spec.get("type") == "ExternalName":
        return spec.get("externalName", "")
    return ",".join(ips) or "<none>"


def _service_ports(o: dict) -> str:
    out = []
    for p in o.get("spec", {}).get("ports") or []:
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        out.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _short_list(items: list[str], shown: int = 3) -> str:
    """printers.go formatEndpoints' style: three, then "+ N more..."."""
    if not items:
        return "<unset>"
    more = f" + {len(items) - shown} more..." if len(items) > shown else ""
    return ",".join(items[:shown]) + more


def _endpoints(o: dict) -> str:
    pairs = [
        f"{a.get('ip')}:{p.get('port')}"
        for s in o.get("subsets") or []
        for p in s.get("ports") or [{}]
        for a in s.get("addresses") or []
    ]
    return _short_list(pairs) if pairs else "<none>"


def _job_status(o: dict) -> str:
    for c in o.get("status", {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended"):
            return c["type"]
    return "Running"


def _csr_condition(o: dict) -> str:
    conds = [c.get("type") for c in o.get("status", {}).get("conditions") or []]
    return ",".join(conds) or "Pending"


# (column name, type, priority, cell) per resource, in the order and with the names of
# pkg/printers/internalversion/printers.go AddHandlers (priority 1: shown with -o wide).
COLUMNS = {
    "nodes": [
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, _node_roles),
        ("Age", "string", 0, age),
        ("Version", "string", 0, lambda o: o.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")),
        (
            "Internal-IP",
            "string",
            1,
            lambda o: next(
                (
                    a["address"]
                    for a in o.get("status", {}).get("addresses", [])
                    if a.get("type") == "InternalIP"
                ),
                "<none>",
            ),
        ),
        ("External-IP", "string", 1, lambda o: "<none>"),
        ("OS-Image", "string", 1, lambda o: o.get("status", {}).get("nodeInfo", {}).get("osImage", "")),
        (
            "Kernel-Version",
            "string",
            1,
            lambda o: o.get("status", {}).get("nodeInfo", {}).get("kernelVersion", ""),
        ),
        (
            "Container-Runtime",
            "string",
            1,
            lambda o: o.get("status", {}).get("nodeInfo", {}).get("containerRuntimeVersion", ""),
        ),
    ],
    # printers.go serviceColumnDefinitions
    "services": [
        ("Type", "string", 0, lambda o: o.get("spec", {}).get("type", "ClusterIP")),
        ("Cluster-IP", "string", 0, lambda o: o.get("spec", {}).get("clusterIP") or "<none>"),
        ("External-IP", "string", 0, _external_ips),
        ("Port(s)", "string", 0, _service_ports),
        ("Age", "string", 0, age),
        ("Selector", "string", 1, lambda o: _labels(o.get("spec", {}).get("selector"))),
    ],
    # printers.go endpointColumnDefinitions
    "endpoints": [("Endpoints", "string", 0, _endpoints), ("Age", "string", 0, age)],
    # printers.go endpointSliceColumnDefinitions
    "endpointslices": [
        ("AddressType", "string", 0, lambda o: o.get("addressType", "")),
        ("Ports", "string", 0, lambda o: _short_list([str(p.get("port")) for p in o.get("ports") or []])),
        (
            "Endpoints",
            "string",
            0,
            lambda o: _short_list([a for e in o.get("endpoints") or [] for a in e.get("addresses", [])]),
        ),
        ("Age", "string", 0, age),
    ],
    # printers.go statefulSetColumnDefinitions
    "statefulsets": [
        (
            "Ready",
            "string",
            0,
            lambda o: f"{o.get('status', {}).get('readyReplicas', 0)}/{o.get('spec', {}).get('replicas', 1)}",
        ),
        ("Age", "string", 0, age),
    ],
    # printers.go jobColumnDefinitions (no Job controller runs here: nothing completes)
    "jobs": [
        ("Status", "string", 0, _job_status),
        (
            "Completions",
            "string",
            0,
            lambda o: f"{o.get('status', {}).get('succeeded', 0)}/{o.get('spec', {}).get('completions', 1)}",
        ),
        ("Duration", "string", 0, lambda o: ""),
        ("Age", "string", 0, age),
    ],
    # printers.go cronJobColumnDefinitions
    "cronjobs": [
        ("Schedule", "string", 0, lambda o: o.get("spec", {}).get("schedule", "")),
        ("Timezone", "string", 0, lambda o: o.get("spec", {}).get("timeZone") or "<none>"),
        ("Suspend", "boolean", 0, lambda o: str(bool(o.get("spec", {}).get("suspend")))),
        ("Active", "integer", 0, lambda o: len(o.get("status", {}).get("active") or [])),
        ("Last Schedule", "string", 0, lambda o: "<none>"),
        ("Age", "string", 0, age),
    ],
    # printers.go certificateSigningRequestColumnDefinitions
    "certificatesigningrequests": [
        ("Age", "string", 0, age),
        ("SignerName", "string", 0, lambda o: o.get("spec", {}).get("signerName", "")),
        ("Requestor", "string", 0, lambda o: o.get("spec", {}).get("username", "")),
        ("RequestedDuration", "string", 0, lambda o: "<none>"),
        ("Condition", "string", 0, _csr_condition),
    ],
    "pods": [
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, lambda o: o.get("status", {}).get("phase", "")),
        ("Restarts", "string", 0, lambda o: "0"),
        ("Age", "string", 0, age),
        ("IP", "string", 1, lambda o: o.get("status", {}).get("podIP") or "<none>"),
        ("Node", "string", 1, lambda o: o.get("spec", {}).get("nodeName") or "<none>"),
    ],
    "daemonsets": [
        ("Desired", "integer", 0, lambda o: o.get("status", {}).get("desiredNumberScheduled", 0)),
        ("Current", "integer", 0, lambda o: o.get("status", {}).get("currentNumberScheduled", 0)),
        ("Ready", "integer", 0, lambda o: o.get("status", {}).get("numberReady", 0)),
        ("Up-to-date", "integer", 0, lambda o: o.get("status", {}).get("updatedNumberScheduled", 0)),
        ("Available", "integer", 0, lambda o: o.get("status", {}).get("numberAvailable", 0)),
        ("Node Selector", "string", 0, _selector),
        ("Age", "string", 0, age),
    ],
    "deployments": [
        (
            "Ready",
            "string",
            0,
            lambda o: f"{o.get('status', {}).get('readyReplicas', 0)}/{o.get('spec', {}).get('replicas', 1)}",
        ),
        ("Up-to-date", "integer", 0, lambda o: o.get("status", {}).get("updatedReplicas", 0)),
        ("Available", "integer", 0, lambda o: o.get("status", {}).get("availableReplicas", 0)),
        ("Age", "string", 0, age),
    ],
    # pkg/printers/internalversion/printers.go replicaSetColumnDefinitions
    "replicasets": [
        ("Desired", "integer", 0, lambda o: o.get("spec", {}).get("replicas", 1)),
        ("Current", "integer", 0, lambda o: o.get("status", {}).get("replicas", 0)),
        ("Ready", "integer", 0, lambda o: o.get("status", {}).get("readyReplicas", 0)),
        ("Age", "string", 0, age),
    ],
    "secrets": [
        ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        ("Age", "string", 0, age),
    ],
    "configmaps": [("Data", "integer", 0, lambda o: len(o.get("data") or {})), ("Age", "string", 0, age)],
    "namespaces": [
        ("Status", "string", 0, lambda o: o.get("status", {}).get("phase", "Active")),
        ("Age", "string", 0, age),
    ],
    "poddisruptionbudgets": [
        ("Min Available", "string", 0, lambda o: _int_or_none(o.get("spec", {}).get("minAvailable"))),
        ("Max Unavailable", "string", 0, lambda o: _int_or_none(o.get("spec", {}).get("maxUnavailable"))),
        ("Allowed Disruptions", "integer", 0, lambda o: o.get("status", {}).get("disruptionsAllowed", 0)),
        ("Age", "string", 0, age),
    ],
    "persistentvolumeclaims": [
        ("Status", "string", 0, lambda o: o.get("status", {}).get("phase", "")),
        ("Volume", "string", 0, lambda o: o.get("spec", {}).get("volumeName", "")),
        ("Capacity", "string", 0, lambda o: o.get("status", {}).get("capacity", {}).get("storage", "")),
        ("Access Modes", "string", 0, lambda o: _modes(o.get("status", {}).get("accessModes"))),
        ("StorageClass", "string", 0, lambda o: o.get("spec", {}).get("storageClassName") or "<unset>"),
        ("VolumeAttributesClass", "string", 0, lambda o: "<unset>"),
        ("Age", "string", 0, age),
    ],
    "persistentvolumes": [
        ("Capacity", "string", 0, lambda o: o.get("spec", {}).get("capacity", {}).get("storage", "")),
        ("Access Modes", "string", 0, lambda o: _modes(o.get("spec", {}).get("accessModes"))),
        (
            "Reclaim Policy",
            "string",
            0,
            lambda o: o.get("spec", {}).get("persistentVolumeReclaimPolicy", "Retain"),
        ),
        ("Status", "string", 0, lambda o: o.get("status", {}).get("phase", "")),
        ("Claim", "string", 0, _claim),
        ("StorageClass", "string", 0, lambda o: o.get("spec", {}).get("storageClassName", "")),
        ("VolumeAttributesClass", "string", 0, lambda o: "<unset>"),
        ("Reason", "string", 0, lambda o: o.get("status", {}).get("reason", "")),
        ("Age", "string", 0, age),
    ],
    "events": [
        (
            "Last Seen",
            "string",
            0,
            lambda o: age({"metadata": {"creationTimestamp": o.get("lastTimestamp")}}),
        ),
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Reason", "string", 0, lambda o: o.get("reason", "")),
        (
            "Object",
            "string",
            0,
            _involved,
        ),
        ("Message", "string", 0, lambda o: o.get("message", "")),
    ],
}
# Resources without their own printer in the stand-in: the API server's default table
# (staging/src/k8s.io/apiserver/pkg/registry/rest/table.go: Name and Created At).
DEFAULT_COLUMNS = [("Created At", "date", 0, lambda o: o.get("metadata", {}).get("creationTimestamp", ""))]


def table(plural: str, items: list[dict], resource_version: str, include_object: str = "Metadata") -> dict:
    """meta.k8s.io/v1 Table of `items` (includeObject: None, Metadata — the default — or Object)."""
    columns = COLUMNS.get(plural, DEFAULT_COLUMNS)
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    definitions += [
        {"name": n, "type": t, "format": "", "description": n, "priority": p} for n, t, p, _ in columns
    ]
    rows = []
    for obj in items:
        row: dict = {"cells": [obj["metadata"]["name"], *(cell(obj) for _n, _t, _p, cell in columns)]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
