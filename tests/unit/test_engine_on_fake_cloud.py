"""The engine on the in-memory fake cloud (stackspray_sandbox.fakecloud): the whole life of a
cluster's OpenStack side in seconds — create, re-run (nothing to do), add and remove nodes,
shelve and unshelve, destroy — and a kill after every cloud call of a create, followed by a
re-run that converges on exactly what an uninterrupted create makes.

Kubernetes is not built here (`kubernetes=False`, as `create-cluster --no-kubernetes`); soft
scaling talks to a small stand-in for the Node API (`NodesOnFakeCloud`) that calls a Node Ready
once its server is ACTIVE. Waits sleep on a virtual clock."""

from __future__ import annotations

import copy
import textwrap
import time
from pathlib import Path

import pytest
from stackspray_sandbox.contract import cluster_shape
from stackspray_sandbox.fakecloud import FakeCloud, Killed

from stackspray import cloudops, scale
from stackspray.cli.output import text
from stackspray.cluster import cluster_status, create_cluster, destroy_cluster
from stackspray.kube import DrainResult, NodeInfo
from stackspray.progress import quiet
from stackspray.resize import resize_group
from stackspray.resources import dns_record
from stackspray.scale import make_request, scale_cluster
from stackspray.spec import load_spec
from stackspray.state import ClusterDir


class VirtualClock:
    """time.monotonic/sleep for the engine's waits: a sleep moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str):
        return getattr(time, name)  # strftime, gmtime, ...


@pytest.fixture(autouse=True)
def virtual_time(monkeypatch):
    clock = VirtualClock()
    monkeypatch.setattr(cloudops, "time", clock)
    monkeypatch.setattr(dns_record, "time", clock)
    monkeypatch.setattr(scale, "time", clock)
    return clock


SPEC = """\
name: {name}
cloud: fake
image: Featured-Ubuntu24
keypair:
  name: {name}-key
  public_key_file: {key}
network:
  cidr: 10.42.0.0/24
node_groups:
  control-plane:
    flavor: m3.small
    count: 1
  workers:
    flavor: m3.small
    count: {workers}
share:
  size_gb: 10
"""


def write_spec(tmp_path: Path, name: str = "lab", workers: int = 2) -> Path:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n")
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(SPEC.format(name=name, key=key, workers=workers)))
    return path


def create(cloud: FakeCloud, spec_path: Path, root: Path) -> dict:
    return create_cluster(load_spec(spec_path), progress=quiet(), root=root, kubernetes=False, api=cloud)


def shape(cloud: FakeCloud, cluster: str = "lab") -> dict[str, list]:
    """What the cluster holds, without ids: what two runs must agree on."""
    return cluster_shape(cloud, cluster)


def project_names(cloud: FakeCloud, kind: str) -> list[str]:
    return sorted(r["name"] or r["device_owner"] for r in cloud.resources(kind))


MUTATING = {
    "create",
    "update",
    "delete",
    "set_tags",
    "add_interface",
    "remove_interface",
    "shelve",
    "unshelve",
}


def changes_made(cloud: FakeCloud, since: int) -> list[tuple[str, str]]:
    return [c for c in cloud.calls[since:] if c[0] in MUTATING]


class NodesOnFakeCloud:
    """The Node API as soft scaling uses it: a Node per server of the cluster, Ready while its
    server is ACTIVE; cordon marks it unschedulable (annotated as ours); no pods."""

    def __init__(self, cloud: FakeCloud, cluster: str) -> None:
        self.cloud, self.cluster = cloud, cluster
        self.cordoned: dict[str, str | None] = {}
        self.leases: dict[tuple[str, str], dict] = {}
        self.lease_writes: list[str | None] = []

    def read_lease(self, namespace: str, name: str) -> dict | None:
        return copy.deepcopy(self.leases.get((namespace, name)))

    def write_lease(self, body: dict) -> bool:
        """The API server's create/replace: 409 (False) for an existing one or a stale version."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        held = self.leases.get(key)
        if (held is None) == bool(meta.get("resourceVersion")):
            return False
        if held is not None and held["metadata"]["resourceVersion"] != meta["resourceVersion"]:
            return False
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(len(self.lease_writes) + 1)
        self.leases[key] = body
        self.lease_writes.append(body["spec"].get("holderIdentity"))
        return True

    def nodes(self) -> dict[str, NodeInfo]:
        out = {}
        for s in self.cloud.resources("server"):
            if s["metadata"].get("stackspray-cluster") == self.cluster:
                name = s["name"]
                ready = s["status"] == "ACTIVE" and s["task_state"] is None
                out[name] = NodeInfo(name, ready, name in self.cordoned, self.cordoned.get(name))
        return out

    def node(self, name: str) -> NodeInfo:
        return self.nodes()[name]

    def workload_counts(self) -> dict[str, tuple[int, int]]:
        return {}

    def cordon(self, name: str) -> None:
        self.cordoned[name] = "shelve"

    def uncordon(self, name: str) -> None:
        self.cordoned.pop(name, None)

    def drain(self, name: str, *, timeout: float = 300.0, force: bool = False) -> DrainResult:
        return DrainResult()

    def wait_ready(self, name: str, timeout: float = 600.0) -> None:
        cloudops.wait_until(lambda: True if self.node(name).ready else None, f"{name} Ready", timeout=timeout)


def test_a_clusters_life_on_the_fake_cloud(tmp_path):
    cloud = FakeCloud()
    root = tmp_path / "inventories"
    spec_path = write_spec(tmp_path)

    create(cloud, spec_path, root)
    made = shape(cloud)
    assert [s[:2] for s in made["servers"]] == [
        ("lab-control-plane-1", "ACTIVE"),
        ("lab-workers-1", "ACTIVE"),
        ("lab-workers-2", "ACTIVE"),
    ]
    assert (
        made["shares"] == [("lab-share", "available", 10, "CEPHFS")]
        and made["access_rules"][0][3] == "active"
    )
    assert made["floating_ips"] == [(["stackspray", "stackspray-cluster=lab"], "lab-control-plane-1-port")], (
        "the FIP is on the first control-plane node"
    )
    assert made["routers"] == [] and made["router_interfaces"] == ["lab-subnet"], (
        "the subnet goes on the project's router (router quota 1)"
    )
    assert project_names(cloud, "router") == ["auto_allocated_router"]
    assert (ClusterDir("lab", root).secrets / "share-access-key").stat().st_mode & 0o777 == 0o600

    before = len(cloud.calls)
    again = create(cloud, spec_path, root)
    assert {a["kind"] for a in again.actions} == {"noop"}, "a re-run plans only no-ops"
    assert changes_made(cloud, before) == [], "a re-run changes nothing in the cloud"
    assert shape(cloud) == made

    resize_group(spec_path, "workers", 1, progress=quiet(), root=root, kubernetes=False, api=cloud)
    assert [s[0] for s in shape(cloud)["servers"]][-1] == "lab-workers-3"
    resize_group(
        spec_path, "workers", 2, remove=True, progress=quiet(), root=root, kubernetes=False, api=cloud
    )
    after_remove = shape(cloud)
    assert [s[0] for s in after_remove["servers"]] == ["lab-control-plane-1", "lab-workers-1"]
    assert [p[0] for p in after_remove["ports"]] == ["lab-control-plane-1-port", "lab-workers-1-port"], (
        "a removed node's port goes too"
    )

    kube = NodesOnFakeCloud(cloud, "lab")
    shelved = scale_cluster(
        "lab", make_request(shelve=True), progress=quiet(), root=root, api=cloud, kube=kube
    )
    assert shelved.ok and [s.node for s in shelved.steps if s.action == "shelve"] == ["lab-workers-1"]
    assert ("lab-workers-1", "SHELVED_OFFLOADED") in [s[:2] for s in shape(cloud)["servers"]]
    assert kube.cordoned == {"lab-workers-1": "shelve"}, "a shelved worker stays cordoned"
    back = scale_cluster(
        "lab", make_request(unshelve=True), progress=quiet(), root=root, api=cloud, kube=kube
    )
    assert back.ok and ("lab-workers-1", "ACTIVE") in [s[:2] for s in shape(cloud)["servers"]]
    assert kube.cordoned == {}, "uncordoned once Ready"
    holders = [h.split("@")[0] if h else None for h in kube.lease_writes]
    assert holders[:2] == ["scale", None] and holders[-1] is None, (
        "each scale held the node Lease, then freed it"
    )

    plan = destroy_cluster("lab", root=root, dry_run=True, api=cloud, progress=quiet())
    planned = {(a["resource"], a["name"]) for a in plan.actions}
    assert ("router-interface", "auto_allocated_router:lab-subnet") in planned
    assert not any(r == "router" for r, _ in planned), "the project's router is never deleted"
    gone = destroy_cluster("lab", root=root, api=cloud, progress=quiet())
    assert all(v == [] for v in shape(cloud).values()), shape(cloud)
    cdir = ClusterDir("lab", root)
    assert (
        "secrets/share-access-key" in gone.removed_files and not (cdir.secrets / "share-access-key").exists()
    )
    assert cdir.state_file.exists() and cdir.load().destroyed_at, "the record of the cluster is kept"
    assert project_names(cloud, "network") == ["auto_allocated_network", "public"]
    assert project_names(cloud, "router") == ["auto_allocated_router"]
    assert project_names(cloud, "port") == ["network:router_interface"], "only the project's own interface"
    assert project_names(cloud, "keypair") == [] and project_names(cloud, "security_group") == []
    again = destroy_cluster("lab", root=root, api=cloud, progress=quiet())
    assert [a["kind"] for a in again.actions] == ["noop"], "a second destroy finds nothing"


def test_lost_answers_are_found_again_not_made_twice(tmp_path):
    """A create whose answer is lost took effect: ensure looks before it creates again."""
    cloud = FakeCloud()
    for kind in ("network", "subnet", "port", "server", "security_group", "floating_ip", "share"):
        cloud.lose("create", kind)
    create(cloud, write_spec(tmp_path), tmp_path / "inventories")
    got = shape(cloud)
    assert [p[0] for p in got["ports"]] == [
        "lab-control-plane-1-port",
        "lab-workers-1-port",
        "lab-workers-2-port",
    ]
    assert len(got["servers"]) == 3 and len(got["floating_ips"]) == 1 and len(got["shares"]) == 1
    assert [n[0] for n in got["networks"]].count("lab-net") == 1


def test_a_quota_refusal_names_the_quota_before_anything_is_made(tmp_path):
    cloud = FakeCloud(quotas={"instances": 2})
    with pytest.raises(Exception, match="instances"):
        create(cloud, write_spec(tmp_path), tmp_path / "inventories")
    assert changes_made(cloud, 0) == []


def reference_shape(tmp_path: Path) -> dict:
    cloud = FakeCloud()
    create(cloud, write_spec(tmp_path / "ref", workers=1), tmp_path / "ref" / "inventories")
    return shape(cloud)


def test_a_kill_after_any_call_is_finished_by_a_rerun(tmp_path):
    """SIGKILL after the n-th cloud call of a create, for every n: the re-run converges on
    exactly what an uninterrupted create makes, and a third run has nothing to do."""
    (tmp_path / "ref").mkdir()
    want = reference_shape(tmp_path)
    probe = FakeCloud()
    (tmp_path / "probe").mkdir()
    create(probe, write_spec(tmp_path / "probe", workers=1), tmp_path / "probe" / "inventories")
    total = len(probe.calls)
    assert total > 40
    for n in range(total):
        base = tmp_path / f"kill-{n}"
        base.mkdir()
        spec_path, root = write_spec(base, workers=1), base / "inventories"
        cloud = FakeCloud()
        cloud.kill_after(n)
        try:
            create(cloud, spec_path, root)
        except Killed:
            pass
        cloud.revive()
        create(cloud, spec_path, root)
        assert shape(cloud) == want, (
            f"killed after call {n} ({cloud.calls[n] if n < len(cloud.calls) else '-'})"
        )
        before = len(cloud.calls)
        third = create(cloud, spec_path, root)
        assert {a["kind"] for a in third.actions} == {"noop"} and changes_made(cloud, before) == [], n


def test_destroy_keeps_kubernetes_volumes_detached_unless_asked_and_never_a_neighbours(tmp_path):
    """Cinder CSI's volumes (metadata cinder.csi.openstack.org/cluster = Kubespray's cluster_name,
    which stackspray sets to the cluster's name): listed, kept and detached by default, deleted
    with --delete-volumes; a neighbour's volume (another cluster_name) is never touched."""
    cloud = FakeCloud(services=(*FakeCloud().services, "block-storage"))
    root = tmp_path / "inv"
    create(cloud, write_spec(tmp_path, "lab", workers=1), root)

    def csi_volume(cluster_name: str, claim: str, size: int) -> str:
        meta = {
            "cinder.csi.openstack.org/cluster": cluster_name,
            "csi.storage.k8s.io/pvc/name": claim,
            "csi.storage.k8s.io/pvc/namespace": "jhub",
        }
        return cloud.create("volume", name=f"pvc-{claim}", size=size, metadata=meta).id

    mine, neighbours = csi_volume("lab", "claim-ada", 10), csi_volume("lab-2", "claim-bob", 5)
    unmarked = cloud.create("volume", name="lab-notes", size=1).id  # a user's own, named like ours
    worker = next(s for s in cloud.resources("server") if s["name"] == "lab-workers-1")
    for _ in range(3):
        cloud.list("volume")  # let them turn available
    cloud.attach_volume(worker["id"], mine)
    seen = cluster_status("lab", root=root, api=cloud).volumes
    assert (seen["count"], seen["gb"], seen["in_use"], seen["available"]) == (1, 10, 1, 0), seen
    assert seen["items"][0]["claim"] == "jhub/claim-ada" and not seen["shared_mark"]
    assert "volumes Kubernetes made: 1 (10 GB" in "\n".join(text(cluster_status("lab", root=root, api=cloud)))

    dry = destroy_cluster("lab", root=root, dry_run=True, api=cloud, progress=quiet())
    (kept,) = [a for a in dry.actions if a["resource"] == "volume"]
    assert kept["kind"] == "noop" and kept["detail"]["id"] == mine
    assert "10 GB, claim jhub/claim-ada" in kept["reason"] and "--delete-volumes" in kept["reason"]

    said: list[str] = []
    gone = destroy_cluster("lab", root=root, api=cloud, progress=said.append)
    volumes = {v["id"]: v for v in cloud.resources("volume")}
    assert set(volumes) == {mine, neighbours, unmarked}
    assert volumes[mine]["status"] == "available" and volumes[mine]["attachments"] == [], "left detached"
    assert any(mine in line for line in gone.left), gone.left
    assert any("kept 1 volume(s) Kubernetes made (10 GB" in line for line in said), said

    again = destroy_cluster("lab", root=root, api=cloud, progress=quiet(), delete_volumes=True)
    assert [(a["kind"], a["resource"]) for a in again.actions] == [("delete", "volume")]
    assert {v["id"] for v in cloud.resources("volume")} == {neighbours, unmarked}


def lab_on_a_cloud_with_octavia(tmp_path: Path) -> tuple[FakeCloud, Path, dict]:
    """Cluster `lab` (one worker) built on a fake cloud with Octavia; its subnet."""
    cloud = FakeCloud(services=(*FakeCloud().services, "load-balancer"))
    root = tmp_path / "inv"
    create(cloud, write_spec(tmp_path, "lab", workers=1), root)
    return cloud, root, next(s for s in cloud.resources("subnet") if s["name"].startswith("lab"))


def test_destroy_deletes_kubernetes_load_balancers_before_the_network_and_never_a_neighbours(tmp_path):
    """The cloud controller's load balancers (named kube_service_<cluster_name>_<ns>_<svc> and
    described "... from cluster <cluster_name>") hold a VIP port on the cluster's subnet: destroy
    deletes each with the floating IP the cloud controller made on it, before the network; one of
    another cluster, or one only named like ours, stays."""
    cloud, root, subnet = lab_on_a_cloud_with_octavia(tmp_path)
    mine = cloud.add_service_load_balancer(
        "kube_service_lab_default_web",
        "Kubernetes external service default/web from cluster lab",
        subnet["id"],
        fip="Floating IP for Kubernetes external service default/web from cluster lab",
    )
    named_like_ours = cloud.add_service_load_balancer(
        "kube_service_lab_default_x", "a user's own", subnet["id"]
    )
    seen = cluster_status("lab", root=root, api=cloud).load_balancers
    assert seen["count"] == 1 and seen["items"][0]["service"] == "default/web"
    assert seen["items"][0]["floating_ip"] and seen["items"][0]["vip_address"] == mine["vip_address"]
    assert "default/web: 203.0.113." in "\n".join(text(cluster_status("lab", root=root, api=cloud)))

    dry = destroy_cluster("lab", root=root, dry_run=True, api=cloud, progress=quiet())
    kinds = [(a["kind"], a["resource"]) for a in dry.actions]
    assert kinds.index(("delete", "load-balancer")) < kinds.index(("delete", "network"))
    (lb_action,) = [a for a in dry.actions if a["resource"] == "load-balancer"]
    assert "Service default/web" in lb_action["reason"] and "floating IP 203.0.113." in lb_action["reason"]
    assert lb_action["detail"]["id"] == mine["id"], "only named like ours: not listed"

    cloud.delete("load_balancer", named_like_ours["id"])  # the user deletes their own first
    for _ in range(3):
        cloud.list("load_balancer")
    destroy_cluster("lab", root=root, api=cloud, progress=quiet())
    assert cloud.resources("load_balancer") == []
    assert cloud.resources("floating_ip") == [], (
        "the cloud controller's floating IP went with its load balancer"
    )
    assert not [n for n in cloud.resources("network") if n["name"].startswith("lab")]


def test_a_neighbours_load_balancer_is_not_ours(tmp_path):
    cloud, root, subnet = lab_on_a_cloud_with_octavia(tmp_path)
    theirs = cloud.add_service_load_balancer(
        "kube_service_lab-2_default_web",
        "Kubernetes external service default/web from cluster lab-2",
        subnet["id"],
    )
    assert cluster_status("lab", root=root, api=cloud).load_balancers["count"] == 0
    dry = destroy_cluster("lab", root=root, dry_run=True, api=cloud, progress=quiet())
    assert not [a for a in dry.actions if a["resource"] == "load-balancer"]
    assert {lb["id"] for lb in cloud.resources("load_balancer")} == {theirs["id"]}


def spec_with_workloads(tmp_path: Path, folder: str, workloads: str) -> Path:
    (tmp_path / folder).mkdir()
    path = write_spec(tmp_path / folder, "lab", workers=1)
    path.write_text(path.read_text() + f"workloads: {workloads}\n")
    return path


def test_the_quota_preflight_counts_what_the_workloads_will_make(tmp_path):
    """A course of 12 students on a 10-volume quota is refused before anything is made, with
    the volumes row; LoadBalancer Services count a floating IP each; what the workloads already
    made counts as made, so a re-run asks only for the rest."""
    cloud = FakeCloud(services=(*FakeCloud().services, "block-storage", "load-balancer"))
    course = spec_with_workloads(tmp_path, "a", "{volumes: 12, volume_gb: 10, load_balancers: 1}")
    with pytest.raises(Exception, match=r"volumes\s+12\s+0\s+10"):
        create(cloud, course, tmp_path / "inv")
    assert changes_made(cloud, 0) == []
    services = spec_with_workloads(tmp_path, "b", "{load_balancers: 10}")
    with pytest.raises(Exception, match=r"floating IPs\s+11\s+0\s+10"):  # the cluster's own + 10
        create(cloud, services, tmp_path / "inv")

    fits = spec_with_workloads(tmp_path, "c", "{volumes: 9, volume_gb: 100, load_balancers: 1}")
    create(cloud, fits, tmp_path / "inv")
    for i in range(9):  # Cinder CSI made the nine claims' volumes
        cloud.create(
            "volume", name=f"pvc-{i}", size=100, metadata={"cinder.csi.openstack.org/cluster": "lab"}
        )
    before = len(cloud.calls)
    create(cloud, fits, tmp_path / "inv")  # 900 GB in 9 of 10 volumes used: nothing more is needed
    assert changes_made(cloud, before) == []


def test_workloads_on_a_cloud_without_the_service_are_refused_by_field(tmp_path):
    spec = spec_with_workloads(tmp_path, "a", "{volumes: 2, volume_gb: 5}")
    with pytest.raises(Exception, match="workloads.volumes: this cloud has no block storage"):
        create(FakeCloud(), spec, tmp_path / "inv")
