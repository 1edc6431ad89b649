"""STAND-IN: the Deployment, ReplicaSet and garbage-collector controllers' arithmetic, each
following kubernetes/kubernetes v1.35 (files cited per function). server.py runs them once a
second over its objects; everything here is pure, so a unit test (test_kube_controllers.py) checks it
without a server.

What they do together, as on a real cluster:
- a Deployment owns one ReplicaSet per pod template, named `<deployment>-<pod-template-hash>`;
  the ReplicaSet of the current template gets `spec.replicas`, older ones 0 (the stand-in rolls
  a new template out at once, as the Recreate strategy does, rather than surge by surge);
- a ReplicaSet keeps `spec.replicas` pods named `<replicaset>-<5 random characters>`, owned by
  it (controller reference), labelled with its pod-template-hash; a pod that is evicted or
  deleted is replaced — pending until the scheduler binds it, which is what a drain relies on;
  extra pods go unscheduled first, then those on NotReady nodes, then the newest;
- deleting an owner deletes its dependents (background propagation), unless the delete asks for
  `propagationPolicy: Orphan`, which removes the owner references instead.
"""

from __future__ import annotations

import json
import random

# k8s.io/apimachinery/pkg/util/rand: the alphabet of SafeEncodeString and String (no vowels,
# no look-alikes, so generated names never spell words).
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
TEMPLATE_HASH_LABEL = "pod-template-hash"  # apps/v1 DefaultDeploymentUniqueLabelKey
REVISION = "deployment.kubernetes.io/revision"
FINISHED = ("Succeeded", "Failed")


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: every byte mapped onto ALPHANUMS."""
    return "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in text.encode())


def template_hash(template: dict, collision_count: int = 0) -> str:
    """The pod-template-hash of a Deployment's template: pkg/controller/controller_utils.go
    ComputeHash (an FNV-32a hash of the template, plus the collision count, safe-encoded). The
    stand-in hashes the template's JSON, so its values differ from a real cluster's, not its form."""
    data = json.dumps(template, sort_keys=True).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(_fnv32a(data)))


def pod_name(owner: str, rng: random.Random | None = None) -> str:
    """A ReplicaSet's pod: generateName `<owner>-` plus 5 characters (names.SimpleNameGenerator,
    staging/src/k8s.io/apiserver/pkg/storage/names/generate.go; the prefix cut to 58)."""
    pick = (rng or random).choice
    return owner[:58] + "-" + "".join(pick(ALPHANUMS) for _ in range(5))


def controller_uid(obj: dict) -> str | None:
    """metav1.GetControllerOf: the uid of the owner reference with controller: true."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def owner_reference(owner: dict, kind: str, api_version: str = "apps/v1") -> dict:
    """What a controller puts on what it creates (metav1.NewControllerRef)."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def replica_set_for(deployment: dict) -> dict:
    """The ReplicaSet a Deployment's current template should have (pkg/controller/deployment/
    sync.go getNewReplicaSet): name, labels and selector with the pod-template-hash, the
    template's labels too, and the Deployment's replicas."""
    spec = deployment.get("spec") or {}
    template = json.loads(json.dumps(spec.get("template") or {}))
    h = template_hash(template, (deployment.get("status") or {}).get("collisionCount", 0))
    labels = dict((template.get("metadata") or {}).get("labels") or {}, **{TEMPLATE_HASH_LABEL: h})
    template.setdefault("metadata", {})["labels"] = labels
    selector = json.loads(json.dumps(spec.get("selector") or {}))
    selector.setdefault("matchLabels", {})[TEMPLATE_HASH_LABEL] = h
    name = deployment["metadata"]["name"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name}-{h}",
            "namespace": deployment["metadata"].get("namespace", "default"),
            "labels": labels,
            "ownerReferences": [owner_reference(deployment, "Deployment")],
        },
        "spec": {"replicas": spec.get("replicas", 1), "selector": selector, "template": template},
    }


def pods_to_delete(pods: list[dict], count: int, node_ready: dict[str, bool]) -> list[dict]:
    """Which of a ReplicaSet's pods go when it has `count` too many: pkg/controller/replicaset/
    replica_set.go getPodsToDelete, ranked by controller.ActivePods — unscheduled before
    scheduled, on a NotReady node before a Ready one, then the newest first."""

    def rank(p: dict) -> tuple:
        node = (p.get("spec") or {}).get("nodeName")
        return (
            bool(node),
            bool(node and node_ready.get(node)),
            # newest first: a later creationTimestamp sorts earlier
            "".join(chr(0x10FFFF - ord(c)) for c in p["metadata"].get("creationTimestamp", "")),
        )

    return sorted(pods, key=rank)[:count]


def new_pod(replica_set: dict, name: str) -> dict:
    """A pod of a ReplicaSet's template (pkg/controller/controller_utils.go GetPodFromTemplate):
    the template's labels and annotations, its spec, the ReplicaSet as controller."""
    template = replica_set["spec"].get("template") or {}
    tmeta = template.get("metadata") or {}
    meta = {
        "name": name,
        "namespace": replica_set["metadata"].get("namespace", "default"),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_reference(replica_set, "ReplicaSet")],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": json.loads(json.dumps(template.get("spec") or {})),
    }


def replica_set_status(rs: dict, pods: list[dict], node_ready: dict[str, bool]) -> dict:
    """pkg/controller/replicaset/replica_set_utils.go calculateStatus (minReadySeconds 0: a
    ready pod is available)."""
    ready = [p for p in pods if node_ready.get((p.get("spec") or {}).get("nodeName") or "")]
    labels = (rs["spec"].get("template") or {}).get("metadata", {}).get("labels") or {}
    status = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(
            1 for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        ),
        "readyReplicas": len(ready),
        "availableReplicas": len(ready),
        "observedGeneration": rs["metadata"].get("generation", 1),
    }
    return {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}


def deployment_status(
    deployment: dict, current: dict | None, pods_by_rs: dict[str, list[dict]], node_ready: dict[str, bool]
) -> dict:
    """pkg/controller/deployment/sync.go calculateStatus, and the Available condition
    (util/deployment_util.go: available replicas at least replicas less maxUnavailable)."""
    spec = deployment.get("spec") or {}
    want = spec.get("replicas", 1)
    every = [p for pods in pods_by_rs.values() for p in pods]
    updated = pods_by_rs.get(current["metadata"]["uid"], []) if current else []
    available = [p for p in every if node_ready.get((p.get("spec") or {}).get("nodeName") or "")]
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    max_unavailable = rolling.get("maxUnavailable", "25%")
    if isinstance(max_unavailable, str) and max_unavailable.endswith("%"):
        max_unavailable = int(want * int(max_unavailable[:-1]) / 100)  # rounded down, as for it
    ok = len(available) >= want - int(max_unavailable)
    status = {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": len(every),
        "updatedReplicas": len(updated),
        "readyReplicas": len(available),
        "availableReplicas": len(available),
        "conditions": [
            {
                "type": "Available",
                "status": "True" if ok else "False",
                "reason": "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if ok
                else "Deployment does not have minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if len(available) >= want else "ReplicaSetUpdated",
                "message": f'ReplicaSet "{current["metadata"]["name"]}" '
                + ("has successfully progressed." if len(available) >= want else "is progressing.")
                if current
                else "",
            },
        ],
    }
    if want - len(available) > 0:
        status["unavailableReplicas"] = want - len(available)
    return {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration", "conditions")}
