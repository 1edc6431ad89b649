"""Where the API stand-in keeps its objects: in etcd, as kube-apiserver does, or in a JSON file.

On a sandbox cluster the Kubespray stand-in runs a real etcd where Kubespray runs it
(etcd_deployment_type host: /etc/etcd.env, /etc/ssl/etcd/ssl) and the stand-in stores every
object under `/registry/...` through etcd's v3 API (its JSON gateway, `/v3/kv/*`, over TLS with
the client certificate kube-apiserver uses: `node-<host>.pem`, kubeadm-config.v1beta4.yaml.j2's
`etcd.external`). So `etcdctl snapshot save` and `snapshot restore` act on the cluster's real
data, and a restored etcd is what the stand-in serves after its restart, as kube-apiserver would.
The key layout follows the API server's storage (pkg/registry/*/storage/storage.go: `minions`
for Nodes, `<resource>/<namespace>/<name>`, `<group>/<resource>/...` for custom resources); the
values are the objects as JSON (kube-apiserver stores built-in kinds as protobuf, which nothing
here reads). The in-process unit-test stand-in keeps the JSON file.

A stand-in that cannot reach its etcd at start exits (systemd starts it again), as
kube-apiserver does; it never starts empty over data it could not read.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request

PREFIX = "/registry/"
META_KEY = "/registry/stand-in.stackspray.io/meta"
# The two cloud-config Secrets the stand-in keeps apart from other Secrets (store.py).
CLOUD_CONFIG_SECRETS = (("kube-system", "external-openstack-cloud-config"), ("kube-system", "cloud-config"))
# etcd's default --max-txn-ops is 128.
TXN_OPS = 100


class StorageError(Exception):
    """etcd did not answer or refused a request."""


class JsonFile:
    """The whole state in one JSON file, replaced atomically (the unit tests' stand-in)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> dict | None:
        if not os.path.exists(self.path):
            return None
        with open(self.path) as fh:
            return json.load(fh)

    def save(self, doc: dict) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh)
        os.replace(tmp, self.path)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _key_path(group_version: str, plural: str, ns: str, name: str) -> str:
    group = group_version.rpartition("/")[0]
    custom = group == "apiextensions.k8s.io" or ("." in group and not group.endswith(".k8s.io"))
    where = f"{group}/{plural}/" if custom else f"{plural}/"
    return PREFIX + where + (f"{ns}/{name}" if ns else name)


def to_keys(doc: dict) -> dict[str, str]:
    """The store's state as etcd keys and JSON values."""
    out: dict[str, str] = {}

    def put(key: str, obj: dict) -> None:
        out[key] = json.dumps(obj, sort_keys=True)

    for n in doc["nodes"]:
        put(f"{PREFIX}minions/{n['metadata']['name']}", n)
    for p in doc["pods"]:
        put(f"{PREFIX}pods/{p['metadata']['namespace']}/{p['metadata']['name']}", p)
    for p in doc["pdbs"]:
        put(f"{PREFIX}poddisruptionbudgets/{p['metadata']['namespace']}/{p['metadata']['name']}", p)
    for s in doc["secrets"]:
        put(f"{PREFIX}secrets/{s['metadata']['namespace']}/{s['metadata']['name']}", s)
    for w in doc["workloads"]:
        put(f"{PREFIX}{w['plural']}/kube-system/{w['metadata']['name']}", w)
    for k, v in doc["objects"]:
        # An object as a client sent it may lack apiVersion (the typed clients leave it out); its
        # key's group/version is what reading it back needs.
        put(_key_path(*k), v if v.get("apiVersion") else {"apiVersion": k[0], **v})
    put(META_KEY, {"rv": doc["rv"], "applied_cloud_conf": doc.get("applied_cloud_conf")})
    return out


def from_keys(kvs: dict[str, str]) -> dict | None:
    """The store's state from etcd's keys (None when etcd holds none: a new cluster)."""
    if META_KEY not in kvs:
        return None
    meta = json.loads(kvs[META_KEY])
    doc: dict = {k: [] for k in ("nodes", "pods", "pdbs", "secrets", "workloads", "objects")}
    doc["rv"], doc["applied_cloud_conf"] = meta["rv"], meta.get("applied_cloud_conf")
    for key, raw in kvs.items():
        if key == META_KEY:
            continue
        obj = json.loads(raw)
        segs = key[len(PREFIX) :].split("/")
        md = obj["metadata"]
        ns = md.get("namespace", "")
        if segs[0] == "minions":
            doc["nodes"].append(obj)
        elif segs[0] == "pods":
            doc["pods"].append(obj)
        elif segs[0] == "poddisruptionbudgets":
            doc["pdbs"].append(obj)
        elif segs[0] == "secrets" and (ns, md["name"]) in CLOUD_CONFIG_SECRETS:
            doc["secrets"].append(obj)
        elif "plural" in obj:
            doc["workloads"].append(obj)
        else:
            plural = segs[-3] if ns else segs[-2]
            doc["objects"].append([[obj["apiVersion"], plural, ns, md["name"]], obj])
    return doc


class Etcd:
    """The state as keys in etcd, written as the difference from what was last written."""

    def __init__(self, config: dict) -> None:
        self.endpoint = config["endpoint"].rstrip("/")
        self.ctx = ssl.create_default_context(cafile=config["ca"])
        self.ctx.load_cert_chain(config["cert"], config["key"])
        self.written: dict[str, str] = {}

    def call(self, path: str, body: dict, timeout: float = 10.0) -> dict:
        req = urllib.request.Request(
            self.endpoint + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                return json.load(resp)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise StorageError(f"etcd {self.endpoint}{path}: {e}") from e

    def load(self, wait: float = 60.0) -> dict | None:
        deadline = time.monotonic() + wait
        while True:
            try:
                everything = {"key": _b64(PREFIX), "range_end": _b64(PREFIX[:-1] + "0")}
                answer = self.call("/v3/kv/range", everything)
                break
            except StorageError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        kvs = {
            base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
            for kv in answer.get("kvs", [])
        }
        self.written = dict(kvs)
        return from_keys(kvs)

    def save(self, doc: dict) -> None:
        want = to_keys(doc)
        changed = [(k, v) for k, v in want.items() if self.written.get(k) != v]
        ops = [{"requestPut": {"key": _b64(k), "value": _b64(v)}} for k, v in changed]
        ops += [{"requestDeleteRange": {"key": _b64(k)}} for k in self.written if k not in want]
        for i in range(0, len(ops), TXN_OPS):
            self.call("/v3/kv/txn", {"success": ops[i : i + TXN_OPS]})
        self.written = want


def backend(config: dict) -> JsonFile | Etcd:
    """etcd when the stand-in's configuration names one, else the JSON file."""
    return Etcd(config["etcd"]) if config.get("etcd") else JsonFile(config["state_file"])
