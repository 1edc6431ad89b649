"""The cluster's Kubernetes API, through the official `kubernetes` client and the cluster's kubeconfig.

What soft scaling needs, done the way `kubectl cordon/drain/uncordon` do it:
- cordon = `spec.unschedulable: true`, plus our annotation `stackspray.io/scale` so that a later
  run knows the cordon is ours (an operator's own cordon is never lifted by stackspray);
- drain = evict every pod on the node through the Eviction API (policy/v1), which honours
  PodDisruptionBudgets: a 429 answer means "not now", so it is retried with backoff until a
  deadline, then the node counts as blocked and the pods that blocked it are named. Like
  `kubectl drain --ignore-daemonsets --delete-emptydir-data`, DaemonSet pods and mirror pods stay
  (they are not evictable) and emptyDir data goes with its pod; pods no controller manages would
  be lost for good, so they block the drain unless `force`.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .cloudops import poll_delay
from .errors import StackSprayError

log = logging.getLogger(__name__)

SCALE_ANNOTATION = "stackspray.io/scale"
_LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
_EXISTS = object()  # a create answered 409: there is one already
_ABSENT = object()  # a delete answered 404: there was none
TIMEOUT = (5, 30)


class KubeError(StackSprayError):
    """The Kubernetes API could not be reached or refused a call."""


@dataclass
class NodeInfo:
    name: str
    ready: bool
    unschedulable: bool
    scaling: str | None  # our annotation: "shelve" while we hold the node cordoned
    kubelet: str = ""  # status.nodeInfo.kubeletVersion


@dataclass
class DrainResult:
    evicted: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # "ns/pod" -> why

    @property
    def ok(self) -> bool:
        return not self.blocked


def _controller(pod) -> str | None:
    for ref in pod.metadata.owner_references or []:
        if ref.controller:
            return ref.kind
    return None


def is_evictable(pod) -> bool:
    """False for pods `kubectl drain` leaves in place: DaemonSet-managed and mirror (static) pods."""
    if _controller(pod) == "DaemonSet":
        return False
    return "kubernetes.io/config.mirror" not in (pod.metadata.annotations or {})


# Called with a kubeconfig's path before it is loaded: the command-line program sets it to issue a
# cluster's kubeconfig again before its client certificate ends (kubeconfig_refresh.on_load).
ON_LOAD: Callable[[Path], None] | None = None


class Kube:
    """One cluster's API. Methods raise KubeError with what failed and where."""

    def __init__(self, kubeconfig: str | Path) -> None:
        path = Path(kubeconfig)
        if not path.exists():
            raise KubeError(
                f"kubeconfig {path} does not exist: run `invoke create-cluster` first (it writes it)"
            )
        if ON_LOAD is not None:
            ON_LOAD(path)
        try:
            # The client writes the kubeconfig's client key to temporary files for its TLS context:
            # in a 0700 folder beside the kubeconfig, never /tmp, where a killed run leaves them.
            private = path.parent / ".kube-tmp"
            private.mkdir(mode=0o700, exist_ok=True)
            private.chmod(0o700)
            cfg = client.Configuration()
            config.load_kube_config(
                config_file=str(path),
                client_configuration=cfg,
                persist_config=False,
                temp_file_path=str(private),
            )
            self.api = client.ApiClient(configuration=cfg)
        except Exception as exc:  # noqa: BLE001 (the config loader raises several kinds)
            raise KubeError(f"kubeconfig {path} cannot be used: {exc}") from exc
        self.server = self.api.configuration.host
        self.core = client.CoreV1Api(self.api)

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, _request_timeout=TIMEOUT, **kwargs)
        except ApiException as exc:
            raise KubeError(f"Kubernetes API {self.server}: {what}: {_api_message(exc)}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(
                f"Kubernetes API {self.server}: {what}: cannot connect ({exc.__class__.__name__}); "
                "is the control plane up and the API port open to this machine?"
            ) from exc

    # -- nodes -------------------------------------------------------------------------------
    def nodes(self) -> dict[str, NodeInfo]:
        items = self._call("list nodes", self.core.list_node).items
        return {n.metadata.name: _node_info(n) for n in items}

    def node(self, name: str) -> NodeInfo:
        return _node_info(self._call(f"read node {name}", self.core.read_node, name))

    def cordon(self, name: str) -> None:
        body = {"spec": {"unschedulable": True}, "metadata": {"annotations": {SCALE_ANNOTATION: "shelve"}}}
        self._call(f"cordon {name}", self.core.patch_node, name, body)

    def uncordon(self, name: str) -> None:
        """Lift the cordon and our annotation."""
        body = {"spec": {"unschedulable": None}, "metadata": {"annotations": {SCALE_ANNOTATION: None}}}
        self._call(f"uncordon {name}", self.core.patch_node, name, body)

    def list_json(self, what: str) -> list[dict]:
        """Every object of `nodes`, `pods` (all namespaces) or `poddisruptionbudgets` (all
        namespaces), as the API's plain JSON (the autoscaler reads fields the models drop)."""
        fns = {
            "nodes": lambda: self.core.list_node,
            "pods": lambda: self.core.list_pod_for_all_namespaces,
            "poddisruptionbudgets": lambda: (
                client.PolicyV1Api(self.api).list_pod_disruption_budget_for_all_namespaces
            ),
        }
        resp = self._call(f"list {what}", fns[what](), _preload_content=False)
        return json.loads(resp.data).get("items") or []

    # -- any object, as plain JSON (the autoscaler agent's objects) -----------------------------
    def request(
        self, method: str, path: str, body: dict | None = None, content_type: str = "application/json"
    ) -> dict:
        """One REST call, JSON in and out, through the client's own serialization and
        authentication (either generation of its ApiClient); ApiException for an error answer."""
        return json.loads(self.request_text(method, path, body, content_type) or "{}")

    def request_text(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> str:
        """`request`'s answer as text (e.g. /readyz); ApiException for an error answer."""
        headers = {"Content-Type": content_type, "Accept": accept}
        if hasattr(self.api, "param_serialize"):  # kubernetes >= 35: the newer generator's client
            m, url, hdrs, data, post = self.api.param_serialize(
                method=method,
                resource_path=path,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self.api.call_api(
                m, url, header_params=hdrs, body=data, post_params=post, _request_timeout=TIMEOUT
            )
            raw = resp.read()
            if resp.status >= 400:
                text = raw.decode() if isinstance(raw, bytes) else raw
                raise ApiException(status=resp.status, reason=resp.reason, body=text)
        else:
            resp = self.api.call_api(
                path,
                method,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=TIMEOUT,
            )
            raw = resp.data
        return raw.decode() if isinstance(raw, bytes) else (raw or "")

    def _json(
        self,
        what: str,
        method: str,
        path: str,
        body: dict | None = None,
        answers: dict[int, object] | None = None,
        content_type: str = "application/json",
    ):
        """`request`, its failures as KubeError naming `what`; an error status listed in
        `answers` returns the value given for it instead (404 -> None: absent)."""
        try:
            return self.request(method, path, body, content_type)
        except ApiException as exc:
            if answers and exc.status in answers:
                return answers[exc.status]
            raise KubeError(f"Kubernetes API {self.server}: {what}: {_api_message(exc)}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(f"Kubernetes API {self.server}: {what}: cannot connect ({exc})") from exc

    def readyz(self) -> bool:
        """The API server's /readyz answers `ok` (its checks, etcd among them, pass)."""
        try:
            return self.request_text("GET", "/readyz").strip() == "ok"
        except ApiException:
            return False
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(f"Kubernetes API {self.server}: /readyz: cannot connect ({exc})") from exc

    def server_version(self) -> str:
        """The API server's gitVersion (GET /version), e.g. "v1.35.4"."""
        return json.loads(self.request_text("GET", "/version"))["gitVersion"]

    def get_object(self, path: str) -> dict | None:
        """The object at `path` (e.g. /api/v1/namespaces/kube-system/configmaps/x), None if absent."""
        return self._json(f"read {path}", "GET", path, answers={404: None})

    def put_object(self, collection: str, obj: dict, replace: bool = True) -> str:
        """Create `obj` in `collection` (its list path); when it exists, replace it (the version
        read just before) unless `replace` is False. Returns created | replaced | kept."""
        path = f"{collection}/{obj['metadata']['name']}"
        if self._json(f"create {path}", "POST", collection, obj, answers={409: _EXISTS}) is not _EXISTS:
            return "created"
        if not replace:
            return "kept"
        current = self._json(f"read {path}", "GET", path)
        version = {"resourceVersion": current["metadata"]["resourceVersion"]}
        self._json(f"replace {path}", "PUT", path, {**obj, "metadata": {**obj["metadata"], **version}})
        return "replaced"

    def patch_object(self, path: str, patch: dict) -> dict:
        """A JSON merge patch (RFC 7386) of the object at `path`."""
        return self._json(f"patch {path}", "PATCH", path, patch, content_type="application/merge-patch+json")

    def delete_object(self, path: str) -> bool:
        """Delete the object at `path`; False when there was none."""
        return self._json(f"delete {path}", "DELETE", path, answers={404: _ABSENT}) is not _ABSENT

    # -- leases (lease.py) ------------------------------------------------------------------------
    def read_lease(self, namespace: str, name: str) -> dict | None:
        """The Lease as plain JSON, or None when there is none."""
        return self.get_object(f"{_LEASES.format(ns=namespace)}/{name}")

    def write_lease(self, body: dict) -> bool:
        """Create the Lease (no resourceVersion in `body`) or replace it (the resourceVersion it
        was read at). False when another writer came first (409: exists, or changed since)."""
        meta = body["metadata"]
        leases = _LEASES.format(ns=meta["namespace"])
        method, path = (
            ("PUT", f"{leases}/{meta['name']}") if meta.get("resourceVersion") else ("POST", leases)
        )
        return (
            self._json(f"write lease {meta['name']}", method, path, body, answers={409: False}) is not False
        )

    # -- pods ----------------------------------------------------------------------------------
    def pods_on(self, node: str) -> list:
        return self._call(
            f"list pods on {node}",
            self.core.list_pod_for_all_namespaces,
            field_selector=f"spec.nodeName={node}",
        ).items

    def workload_counts(self) -> dict[str, tuple[int, int]]:
        """Per node, the pods a drain would have to move (not DaemonSet or mirror pods, not
        finished ones) as (outside kube-system, in kube-system), from one listing of the
        cluster's pods."""
        pods = self._call("list pods", self.core.list_pod_for_all_namespaces).items
        counts: dict[str, tuple[int, int]] = {}
        for p in pods:
            if p.spec.node_name and is_evictable(p) and p.status.phase not in _FINISHED:
                user, system = counts.get(p.spec.node_name, (0, 0))
                system_pod = p.metadata.namespace == "kube-system"
                counts[p.spec.node_name] = (user + (not system_pod), system + system_pod)
        return counts

    def drain(self, node: str, *, timeout: float = 300.0, force: bool = False) -> DrainResult:
        """Evict the node's pods, retrying PDB refusals with backoff until `timeout`; wait until gone."""
        result = DrainResult()
        pending = {}
        for p in self.pods_on(node):
            key = f"{p.metadata.namespace}/{p.metadata.name}"
            if not is_evictable(p):
                continue
            if _controller(p) is None and p.status.phase not in _FINISHED and not force:
                result.blocked[key] = (
                    "not managed by a controller: it would be lost for good (--force evicts it)"
                )
                continue
            pending[key] = p
        if result.blocked:
            return result
        deadline = time.monotonic() + timeout
        attempt = 0
        refusals: dict[str, str] = {}
        while pending:
            for key, p in list(pending.items()):
                body = client.V1Eviction(
                    metadata=client.V1ObjectMeta(name=p.metadata.name, namespace=p.metadata.namespace)
                )
                try:
                    self.core.create_namespaced_pod_eviction(
                        p.metadata.name, p.metadata.namespace, body, _request_timeout=TIMEOUT
                    )
                except ApiException as exc:
                    if exc.status == 404:  # already gone
                        pass
                    elif exc.status == 429:  # a PodDisruptionBudget says not now
                        refusals[key] = _api_message(exc)
                        continue
                    else:
                        raise KubeError(
                            f"Kubernetes API {self.server}: evict {key}: {_api_message(exc)}"
                        ) from exc
                except urllib3.exceptions.HTTPError as exc:
                    log.warning("evict %s: %s; trying again", key, exc)
                    continue
                result.evicted.append(key)
                refusals.pop(key, None)
                del pending[key]
            if not pending:
                break
            if time.monotonic() >= deadline:
                result.blocked = {k: refusals.get(k, "eviction kept failing") for k in pending}
                return result
            attempt += 1
            time.sleep(min(10.0, 0.5 * 1.6**attempt) * (0.75 + random.random() / 2))
        self._wait_gone(node, set(result.evicted), deadline)
        return result

    def _wait_gone(self, node: str, keys: set[str], deadline: float) -> None:
        started = time.monotonic()
        while True:
            left = {f"{p.metadata.namespace}/{p.metadata.name}" for p in self.pods_on(node)} & keys
            if not left:
                return
            if time.monotonic() >= deadline:
                raise KubeError(f"node {node}: evicted pods still terminating: {', '.join(sorted(left))}")
            time.sleep(poll_delay(time.monotonic() - started))

    def wait_ready(self, name: str, timeout: float = 600.0) -> None:
        """Wait (backoff) for the Node's Ready condition; raise KubeError naming the node on timeout."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            try:
                if self.node(name).ready:
                    return
            except KubeError as exc:  # the API may blink while nodes come back
                log.warning("%s", exc)
            delay = poll_delay(time.monotonic() - started, cap=3.0)
            if time.monotonic() + delay > deadline:
                raise KubeError(
                    f"node {name}: the VM is ACTIVE but its Kubernetes Node is not Ready after "
                    f"{timeout:.0f}s; it stays cordoned. Check kubelet on it (ssh, `systemctl status "
                    "kubelet`) and re-run the same command to finish"
                )
            time.sleep(delay)


_FINISHED = ("Succeeded", "Failed")


def _node_info(n) -> NodeInfo:
    conds = {c.type: c.status for c in (n.status.conditions or [])} if n.status else {}
    return NodeInfo(
        name=n.metadata.name,
        ready=conds.get("Ready") == "True",
        unschedulable=bool(n.spec and n.spec.unschedulable),
        scaling=(n.metadata.annotations or {}).get(SCALE_ANNOTATION),
        kubelet=(n.status.node_info.kubelet_version or "") if n.status and n.status.node_info else "",
    )


def kubelet_version(node: dict) -> str:
    """A Node's (as the API's JSON) status.nodeInfo.kubeletVersion, e.g. "v1.35.2"; "" unknown."""
    return ((node or {}).get("status") or {}).get("nodeInfo", {}).get("kubeletVersion") or ""


def node_is_ready(node: dict) -> bool:
    """A Node (as the API's JSON) whose Ready condition is True."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def _api_message(exc: ApiException) -> str:
    """The Status message (and a DisruptionBudget cause) of an API error, else its reason."""
    try:
        status = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        status = {}
    msg = status.get("message") or exc.reason or "error"
    causes = [c.get("message") for c in (status.get("details") or {}).get("causes") or [] if c.get("message")]
    return f"HTTP {exc.status}: {msg}" + (f" ({'; '.join(causes)})" if causes else "")


# -- Secrets and workloads (credential rotation) ----------------------------------------------


def tolerates(toleration: dict, taint: dict) -> bool:
    """core/v1 Toleration.ToleratesTaint (k8s.io/api/core/v1/toleration.go)."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


# What the DaemonSet controller adds to every daemon pod (pkg/controller/daemon/util/
# daemonset_util.go, AddOrUpdateDaemonPodTolerations).
DAEMON_POD_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


def daemon_pod_fits(template_spec: dict, node: dict) -> bool:
    """Whether the DaemonSet controller places a pod of this template on this node (its node
    selector matches, every NoSchedule/NoExecute taint is tolerated): NodeShouldRunDaemonPod in
    pkg/controller/daemon/daemon_controller.go. Required node affinity is not evaluated."""
    labels = node.get("metadata", {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in (template_spec.get("nodeSelector") or {}).items()):
        return False
    tolerations = [*(template_spec.get("tolerations") or []), *DAEMON_POD_TOLERATIONS]
    return all(
        any(tolerates(tol, taint) for tol in tolerations)
        for taint in (node.get("spec") or {}).get("taints") or []
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )


def rollout_complete(kind: str, obj: dict, unavailable_nodes: int = 0) -> bool:
    """What `kubectl rollout status` waits for: the controller saw the newest generation and every
    replica (DaemonSet: every scheduled pod) is updated and available, with no old one left —
    except, for a DaemonSet, the pods of `unavailable_nodes` NotReady nodes, which cannot become
    available before those nodes come back."""
    meta, spec, st = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    if st.get("observedGeneration", 0) < meta.get("generation", 0):
        return False
    if kind == "deployments":
        want = spec.get("replicas", 1)
        updated = st.get("updatedReplicas", 0)
        return (
            updated >= want and st.get("replicas", 0) == updated and st.get("availableReplicas", 0) >= updated
        )
    desired = st.get("desiredNumberScheduled", 0)
    return (
        st.get("updatedNumberScheduled", 0) >= desired
        and st.get("numberAvailable", 0) >= desired - unavailable_nodes
    )


class KubeWorkloads:
    """Secrets and DaemonSets/Deployments of kube-system, read as plain JSON."""

    def __init__(self, kube: Kube, namespace: str = "kube-system") -> None:
        self.kube, self.ns = kube, namespace
        self.apps = client.AppsV1Api(kube.api)

    def secret_text(self, name: str, key: str) -> str:
        sec = self.kube._call(
            f"read Secret {self.ns}/{name}", self.kube.core.read_namespaced_secret, name, self.ns
        )
        data = (sec.data or {}).get(key)
        if data is None:
            raise KubeError(f"Secret {self.ns}/{name} has no key {key!r}")
        return base64.b64decode(data).decode()

    def set_secret_text(self, name: str, key: str, text: str) -> None:
        body = {"data": {key: base64.b64encode(text.encode()).decode()}}
        self.kube._call(
            f"update Secret {self.ns}/{name}", self.kube.core.patch_namespaced_secret, name, self.ns, body
        )

    def _fns(self, kind: str):
        if kind == "deployments":
            return self.apps.read_namespaced_deployment, self.apps.patch_namespaced_deployment
        return self.apps.read_namespaced_daemon_set, self.apps.patch_namespaced_daemon_set

    def get(self, kind: str, name: str) -> dict:
        read_fn, _ = self._fns(kind)
        resp = self.kube._call(
            f"read {kind} {self.ns}/{name}", read_fn, name, self.ns, _preload_content=False
        )
        return json.loads(resp.data)

    def ensure_toleration(self, kind: str, name: str, toleration: dict) -> bool:
        """The workload's pods tolerate `toleration` (added to the template's list, the others
        kept); False when they did already. Tolerations have no merge key: the patch carries the
        whole list, as `kubectl edit` would."""
        _, patch_fn = self._fns(kind)
        current = self.get(kind, name)
        have = ((current.get("spec") or {}).get("template") or {}).get("spec", {}).get("tolerations") or []
        if toleration in have:
            return False
        body = {"spec": {"template": {"spec": {"tolerations": [*have, toleration]}}}}
        self.kube._call(f"patch {kind} {self.ns}/{name}", patch_fn, name, self.ns, body)
        return True

    def not_ready_nodes_for(self, ds: dict, down: frozenset[str] = frozenset()) -> list[str]:
        """Nodes this DaemonSet's pods are placed on that cannot run them: NotReady ones, and
        those `down` names (servers the cloud says are not ACTIVE, e.g. shelved a moment ago:
        Kubernetes keeps such a node Ready until its node-monitor grace period, 40 s on a
        Kubespray cluster, has passed, while its new pod can never become available)."""
        nodes = self.kube._call("list nodes", self.kube.core.list_node, _preload_content=False)
        template = (ds.get("spec") or {}).get("template", {}).get("spec") or {}
        out = []
        for node in json.loads(nodes.data).get("items", []):
            gone = not node_is_ready(node) or node["metadata"]["name"] in down
            if gone and daemon_pod_fits(template, node):
                out.append(node["metadata"]["name"])
        return sorted(out)

    def restart(self, kind: str, name: str, down: frozenset[str] = frozenset()) -> list[str]:
        """`kubectl rollout restart`: a new pod template annotation, so every pod is replaced.

        A DaemonSet with pods on NotReady (shelved) nodes would never finish: the controller
        replaces available pods only while fewer than maxUnavailable daemon pods are unavailable
        (pkg/controller/daemon/update.go), and a shelved node's pod is never available. So its
        maxUnavailable is raised by the number of such nodes for the restart (the value before
        kept in an annotation, and put back by `wait_rollout`): the Ready nodes roll one at a time
        as usual, the shelved ones get the new pod when they come back. Returns those nodes."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body: dict = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        away: list[str] = []
        if kind == "daemonsets":
            ds = self.get(kind, name)
            away = self.not_ready_nodes_for(ds, down)
            annotations = ds["metadata"].get("annotations") or {}
            rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
            before = annotations.get(MAX_UNAVAILABLE_BEFORE, json.dumps(rolling.get("maxUnavailable")))
            if (
                away
                and (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
            ):
                base = json.loads(before)
                limit = (base if isinstance(base, int) else 1) + len(away)
                body["metadata"] = {"annotations": {MAX_UNAVAILABLE_BEFORE: before}}
                body["spec"]["updateStrategy"] = {"rollingUpdate": {"maxUnavailable": limit}}
        _, patch_fn = self._fns(kind)
        self.kube._call(
            f"restart {kind} {self.ns}/{name}", patch_fn, name, self.ns, body, _preload_content=False
        )
        return away

    def wait_rollout(self, kind: str, name: str, timeout: float, down: frozenset[str] = frozenset()) -> None:
        """Until the restarted pods are updated and available — on every node that can run them
        (a DaemonSet's pods on NotReady nodes start when those nodes come back) — then put back a
        maxUnavailable that `restart` raised."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            obj = self.get(kind, name)
            away = self.not_ready_nodes_for(obj, down) if kind == "daemonsets" else []
            if rollout_complete(kind, obj, unavailable_nodes=len(away)):
                break
            delay = poll_delay(time.monotonic() - started)
            if time.monotonic() + delay > deadline:
                raise KubeError(
                    f"{kind} {self.ns}/{name}: the restarted pods are not Ready after {timeout:.0f}s "
                    f"(kubectl -n {self.ns} rollout status {kind}/{name})"
                )
            time.sleep(delay)
        before = (obj["metadata"].get("annotations") or {}).get(MAX_UNAVAILABLE_BEFORE)
        if kind == "daemonsets" and before is not None:
            body = {
                "metadata": {"annotations": {MAX_UNAVAILABLE_BEFORE: None}},
                "spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": json.loads(before)}}},
            }
            _, patch_fn = self._fns(kind)
            self.kube._call(
                f"restore maxUnavailable of {kind} {self.ns}/{name}",
                patch_fn,
                name,
                self.ns,
                body,
                _preload_content=False,
            )


RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MAX_UNAVAILABLE_BEFORE = "stackspray.io/max-unavailable-before"
