"""Every operation against the cloud's floor for the same operations, in one run.

    .venv/bin/python benchmarks/floors.py [--workers 20] [--shelve 8] [--add 4] [--json]

On the sandbox, in one process, for each operation: stackspray's time (the library call the
command makes) and the floor — the same cloud and Kubernetes calls made directly, each batch all
at once (no limit on calls in flight), one listing per poll every 0.2 s, nothing observed twice,
no state file, no checks. The ratio stackspray / floor is what stackspray's own work costs.

  create      1 control plane + N workers, OpenStack side (network, subnet, router interface,
              4 security groups and their rules, keypair, server groups, ports, servers, floating
              IP). Floor: network and security groups and keypair and server groups at once, then
              every port at once, then every server at once; the floating IP as soon as the
              control-plane port exists.
  shelve      S workers: cordon, evict their pods, shelve, until SHELVED_OFFLOADED.
  unshelve    the same S: unshelve, until ACTIVE and the Node Ready, uncordon.
  refresh     a forced credential rotation: new application credential, one authentication with
              it, the two cloud-config Secrets, the control-plane node's cloud-config files (one
              ssh command), the three workloads restarted until rolled out, the old one deleted.
  add-nodes   A workers: ports and servers at once until ACTIVE (the OpenStack part), then the
              Ansible part (prepare-nodes and Kubespray's scale.yml, on the sandbox its stand-in),
              which has no floor but itself: reported with its share of the time.

Each stackspray run also yields its phase trace (the progress messages with their times).
Everything is deleted afterwards.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openstack
import yaml
from keystoneauth1 import exceptions as ks_exc
from kubernetes import client
from stackspray_sandbox.paths import SandboxPaths
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray import inventory, names
from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.kube import Kube
from stackspray.progress import Progress
from stackspray.resize import resize_group
from stackspray.rotation import SECRET_KEY, SECRETS, WORKLOADS, refresh, with_credential
from stackspray.scale import Request, scale_cluster
from stackspray.spec import load_spec
from stackspray.state import ClusterDir

POLL = 0.2
WIDE = 64  # "all at once": more threads than any batch here


class Trace:
    """A Progress that records each message with its time since the start."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []
        self.progress = Progress(emit=self._record)

    def _record(self, line: str) -> None:
        self.events.append((round(time.monotonic() - self.progress.started, 2), line.split("] ", 1)[1]))

    def first(self, needle: str) -> float | None:
        return next((t for t, m in self.events if needle in m), None)

    def last(self, needle: str) -> float | None:
        hits = [t for t, m in self.events if needle in m]
        return hits[-1] if hits else None


def timed(fn, *args, **kwargs) -> tuple[float, Trace, object]:
    trace = Trace()
    t0 = time.monotonic()
    out = fn(*args, progress=trace.progress, **kwargs)
    return round(time.monotonic() - t0, 2), trace, out


def again(fn):
    """fn, tried again when the connection was lost (a 2-core sandbox's API resets some of many
    calls at once); any client does that. A create tried again may have happened: the cleanup
    finds what the floor made by its names, not by what the calls answered."""

    def call(*args, **kwargs):
        for attempt in range(4):
            try:
                return fn(*args, **kwargs)
            except ks_exc.ConnectionError:
                if attempt == 3:
                    raise
                time.sleep(0.5 * (attempt + 1))

    return call


def all_at_once(fn, items) -> list:
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(WIDE, len(items))) as pool:
        return list(pool.map(again(fn), items))


def fresh_connection():
    """What every floor starts with, as a command does: a new connection and its token."""
    conn = openstack.connect(cloud="sandbox")
    conn.authorize()
    return conn


def at_once(**calls):
    """Independent look-ups all at once; their results by name."""
    keys = list(calls)
    return dict(zip(keys, all_at_once(lambda k: calls[k](), keys), strict=True))


def poll(check, what: str, timeout: float = 900.0):
    deadline = time.monotonic() + timeout
    while True:
        out = check()
        if out:
            return out
        if time.monotonic() > deadline:
            raise RuntimeError(f"floor: {what} not done after {timeout:.0f}s")
        time.sleep(POLL)


# -- create --------------------------------------------------------------------------------

SG_RULES = {  # what the planner puts in a new cluster's groups (names.SECURITY_GROUP_ROLES)
    "cluster": [{"remote_group": True}],
    "ssh": [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}],
    "api": [
        {"protocol": "tcp", "port_range_min": 6443, "port_range_max": 6443, "remote_ip_prefix": "0.0.0.0/0"}
    ],
    "nodeport": [
        {"protocol": "tcp", "port_range_min": 30000, "port_range_max": 32767, "remote_ip_prefix": "0.0.0.0/0"}
    ],
}


def floor_create(tag: str, workers: int, public_key: str, cidr: str, made: dict) -> float:
    """The floor of create (OpenStack side); `made` gathers what to delete (floor_create_cleanup,
    which the caller runs whatever happens)."""
    n_servers = 1 + workers
    t0 = time.monotonic()
    made["phases"] = []

    def mark(what: str) -> None:
        made["phases"].append((what, round(time.monotonic() - t0, 2)))

    conn = fresh_connection()
    net = conn.network
    found = at_once(
        image=lambda: conn.image.find_image("Featured-Ubuntu24"),
        flavor=lambda: conn.compute.find_flavor("m3.tiny"),
        ext=lambda: net.find_network("public"),
        router=lambda: net.find_router("auto_allocated_router"),
    )
    image, flavor, ext, router = found["image"], found["flavor"], found["ext"], found["router"]
    made.update(conn=conn, router=router, tag=tag)
    mark("connected, image, flavor, external network and router found")

    with ThreadPoolExecutor(max_workers=WIDE) as pool:

        def network():
            n = net.create_network(name=f"{tag}-net")
            made["net"] = n
            s = net.create_subnet(network_id=n.id, ip_version=4, cidr=cidr, name=f"{tag}-subnet")
            made["subnet"] = s
            net.add_interface_to_router(router, subnet=s.id)
            return n, s

        def group(role: str):
            sg = net.create_security_group(name=f"{tag}-{role}")
            rules = [
                dict({"security_group_id": sg.id, "direction": "ingress", "ethertype": "IPv4"}, **r)
                for r in SG_RULES[role]
            ]
            for r in rules:
                if r.pop("remote_group", False):
                    r["remote_group_id"] = sg.id
            all_at_once(lambda r: net.create_security_group_rule(**r), rules)
            return role, sg.id

        def server_group(name: str):
            g = conn.compute.create_server_group(name=name, policy="soft-anti-affinity")
            return g.id

        submit = lambda fn, *a: pool.submit(again(fn), *a)  # noqa: E731
        f_net = submit(network)
        f_sgs = [submit(group, role) for role in SG_RULES]
        made["key"] = f"{tag}-key"
        f_kp = submit(lambda: conn.compute.create_keypair(name=made["key"], public_key=public_key))
        f_cp_group = submit(server_group, f"{tag}-control-plane")
        f_w_groups = [submit(server_group, f"{tag}-workers-{g}") for g in range((workers + 9) // 10)]

        def fip():
            made["fip"] = net.create_ip(floating_network_id=ext.id)
            return made["fip"]

        f_fip = submit(fip)
        n, s = f_net.result()
        sgs = dict(f.result() for f in f_sgs)
        mark("network and security groups ready")

        def port(i: int):
            role = "api" if i == 0 else "nodeport"
            p = net.create_port(
                name=f"{tag}-port-{i}",
                network_id=n.id,
                fixed_ips=[{"subnet_id": s.id}],
                security_group_ids=[sgs["cluster"], sgs["ssh"], sgs[role]],
                allowed_address_pairs=[{"ip_address": "10.233.64.0/18"}, {"ip_address": "10.233.0.0/18"}],
            )
            return p

        ports = all_at_once(port, range(n_servers))
        mark("last port")
        f_fip.result()
        f_assoc = submit(lambda: net.update_ip(made["fip"], port_id=ports[0].id))
        f_kp.result()
        groups = [f_cp_group.result()] + [f.result() for f in f_w_groups]

        def server(i: int):
            srv = conn.compute.create_server(
                name=f"{tag}-{i}",
                image_id=image.id,
                flavor_id=flavor.id,
                key_name=f"{tag}-key",
                networks=[{"port": ports[i].id}],
                scheduler_hints={"group": groups[0] if i == 0 else groups[1 + (i - 1) // 10]},
            )
            return srv.id

        ids = set(all_at_once(server, range(n_servers)))
        mark("last server submitted")

        def active():
            listed = [s for s in conn.compute.servers(name=f"^{tag}-") if s.id in ids]
            if any(s.status == "ERROR" for s in listed):
                raise RuntimeError("floor: a server went to ERROR")
            return len(listed) == len(ids) and all(s.status == "ACTIVE" for s in listed)

        poll(active, "servers ACTIVE")
        mark("last server ACTIVE")
        f_assoc.result()
    return round(time.monotonic() - t0, 2)


def floor_create_cleanup(made: dict) -> None:
    """Everything the floor made, found by its names (a create tried again may have made two)."""
    conn, tag = made.get("conn"), made.get("tag")
    if conn is None:
        return
    net, compute = conn.network, conn.compute
    servers = list(compute.servers(name=f"^{tag}-"))
    for s in servers:
        compute.delete_server(s, ignore_missing=True)
    for s in servers:
        compute.wait_for_delete(s, wait=600)
    if made.get("fip"):
        net.delete_ip(made["fip"], ignore_missing=True)
    for p in list(net.ports()):
        if (p.name or "").startswith(f"{tag}-port-"):
            net.delete_port(p, ignore_missing=True)
    for sub in list(net.subnets(name=f"{tag}-subnet")):
        try:
            net.remove_interface_from_router(made["router"], subnet_id=sub.id)
        except openstack.exceptions.NotFoundException:
            pass  # not attached yet
    for n in list(net.networks(name=f"{tag}-net")):
        net.delete_network(n, ignore_missing=True)
    for sg in list(net.security_groups()):
        if sg.name.startswith(f"{tag}-"):
            net.delete_security_group(sg, ignore_missing=True)
    for g in list(compute.server_groups()):
        if g.name.startswith(f"{tag}-"):
            compute.delete_server_group(g, ignore_missing=True)
    compute.delete_keypair(f"{tag}-key", ignore_missing=True)


# -- shelve / unshelve ---------------------------------------------------------------------


def put_pods(core, nodes: list[str], round_: str) -> None:
    """One ReplicaSet-owned pod per node (what a drain evicts)."""
    for node in nodes:
        core.create_namespaced_pod(
            "bench",
            client.V1Pod(
                metadata=client.V1ObjectMeta(
                    name=f"app-{round_}-{node.rsplit('-', 1)[1]}",
                    owner_references=[
                        client.V1OwnerReference(
                            api_version="apps/v1", kind="ReplicaSet", name="app", uid="bench", controller=True
                        )
                    ],
                ),
                spec=client.V1PodSpec(node_name=node, containers=[client.V1Container(name="c", image="x")]),
            ),
        )


def floor_shelve(core, cluster: str, nodes: list[str]) -> float:
    t0 = time.monotonic()
    conn = fresh_connection()
    servers = {s.name: s for s in conn.compute.servers(name=f"^{cluster}-workers-")}
    ids = {servers[n].id for n in nodes}

    def one(node: str) -> None:
        core.patch_node(node, {"spec": {"unschedulable": True}})
        pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
        for p in pods:
            if p.metadata.namespace == "kube-system":
                continue  # DaemonSet pods stay, as kubectl drain --ignore-daemonsets
            core.create_namespaced_pod_eviction(
                p.metadata.name,
                p.metadata.namespace,
                client.V1Eviction(
                    metadata=client.V1ObjectMeta(name=p.metadata.name, namespace=p.metadata.namespace)
                ),
            )

    all_at_once(one, nodes)

    def drained():
        pods = core.list_pod_for_all_namespaces().items
        return not any(p.spec.node_name in nodes and p.metadata.namespace == "bench" for p in pods)

    poll(drained, "pods evicted")
    all_at_once(conn.compute.shelve_server, ids)
    poll(lambda: _all(conn, cluster, ids, "SHELVED_OFFLOADED"), "SHELVED_OFFLOADED")
    return round(time.monotonic() - t0, 2)


def floor_unshelve(core, cluster: str, nodes: list[str]) -> float:
    t0 = time.monotonic()
    conn = fresh_connection()
    servers = {s.name: s for s in conn.compute.servers(name=f"^{cluster}-workers-")}
    ids = {servers[n].id for n in nodes}
    all_at_once(conn.compute.unshelve_server, ids)
    poll(lambda: _all(conn, cluster, ids, "ACTIVE"), "ACTIVE")

    def ready():
        listed = {n.metadata.name: n for n in core.list_node().items}
        return all(
            any(c.type == "Ready" and c.status == "True" for c in listed[n].status.conditions or [])
            for n in nodes
        )

    poll(ready, "Nodes Ready")
    all_at_once(lambda n: core.patch_node(n, {"spec": {"unschedulable": None}}), nodes)
    return round(time.monotonic() - t0, 2)


def _all(conn, cluster: str, ids: set[str], status: str) -> bool:
    listed = [s for s in conn.compute.servers(name=f"^{cluster}-workers-") if s.id in ids]
    return all(s.status == status and not s.task_state for s in listed)


# -- credential refresh --------------------------------------------------------------------


def ssh_to_first_control_plane(cdir: ClusterDir, key: Path, user_name: str) -> list[str]:
    """The ssh command line to the first control-plane node, with the cluster's known_hosts."""
    hosts = yaml.safe_load((cdir.path / inventory.HOSTS_FILE).read_text())
    cp = next(iter(hosts["all"]["children"]["kube_control_plane"]["hosts"]))
    return [
        "ssh",
        "-o", "BatchMode=yes",
        *inventory.known_hosts_opts(cdir.path).split(),
        "-i", str(key),
        f"{user_name}@{hosts['all']['hosts'][cp]['ansible_host']}",
    ]  # fmt: skip


def floor_refresh(kube: Kube, cdir: ClusterDir, key: Path, user_name: str) -> float:
    """The rotation's calls, directly: a throwaway credential goes everywhere the real one lives,
    then is deleted (in place of the old one). The next stackspray refresh puts a real one back."""
    core, apps = kube.core, client.AppsV1Api(kube.api)
    ssh = ssh_to_first_control_plane(cdir, key, user_name)
    t0 = time.monotonic()
    conn = fresh_connection()
    user = conn.current_user_id
    made = conn.identity.create_application_credential(
        user,
        name=f"floor-{uuid.uuid4().hex[:6]}",
        expires_at=(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    auth = openstack.connect(
        auth_type="v3applicationcredential",
        auth={
            "auth_url": conn.config.auth["auth_url"],
            "application_credential_id": made.id,
            "application_credential_secret": made.secret,
        },
    )
    auth.authorize()

    class Cred:
        id, name, secret = made.id, made.name, made.secret

    def secret(name: str) -> None:
        s = core.read_namespaced_secret(name, "kube-system")
        conf = base64.b64decode(s.data[SECRET_KEY]).decode()
        new = base64.b64encode(with_credential(conf, Cred).encode()).decode()
        core.patch_namespaced_secret(name, "kube-system", {"data": {SECRET_KEY: new}})

    def node_files(_x=None) -> None:
        sed = (
            f"s/^application-credential-id=.*/application-credential-id={made.id}/;"
            f"s/^application-credential-name=.*/application-credential-name={made.name}/"
        )
        subprocess.run(
            [*ssh, f"sudo sed -i '{sed}' /etc/kubernetes/cinder_cloud_config"],
            check=True,
            capture_output=True,
        )

    with ThreadPoolExecutor(max_workers=WIDE) as pool:
        jobs = [pool.submit(secret, n) for n in SECRETS] + [pool.submit(node_files)]
        for j in jobs:
            j.result()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = {"spec": {"template": {"metadata": {"annotations": {"floor/restartedAt": stamp}}}}}
    patch = {"daemonsets": apps.patch_namespaced_daemon_set, "deployments": apps.patch_namespaced_deployment}
    read = {"daemonsets": apps.read_namespaced_daemon_set, "deployments": apps.read_namespaced_deployment}
    all_at_once(lambda w: patch[w[0]](w[1], "kube-system", body), WORKLOADS)

    def rolled(w) -> bool:
        o = read[w[0]](w[1], "kube-system")
        st = o.status
        if o.metadata.generation != st.observed_generation:
            return False
        if w[0] == "daemonsets":
            return (
                st.updated_number_scheduled == st.desired_number_scheduled
                and (st.number_available or 0) == st.desired_number_scheduled
            )
        return (st.updated_replicas or 0) == o.spec.replicas and (
            st.available_replicas or 0
        ) == o.spec.replicas

    poll(lambda: all(all_at_once(rolled, WORKLOADS)), "rollouts")
    conn.identity.delete_application_credential(user, made.id)
    return round(time.monotonic() - t0, 2)


# -- add-nodes -----------------------------------------------------------------------------


def floor_add(cluster: str, count: int) -> float:
    """Ports and servers for `count` workers, at once, until ACTIVE; deleted afterwards."""
    tag = f"fl{uuid.uuid4().hex[:4]}"
    t0 = time.monotonic()
    conn = fresh_connection()
    net = conn.network
    found = at_once(
        image=lambda: conn.image.find_image("Featured-Ubuntu24"),
        flavor=lambda: conn.compute.find_flavor("m3.tiny"),
        subnet=lambda: next(net.subnets(name=names.subnet(cluster))),
        sgs=lambda: {g.name: g.id for g in net.security_groups() if g.name.startswith(f"{cluster}-")},
        keyname=lambda: next(k.name for k in conn.compute.keypairs() if cluster in k.name),
    )
    image, flavor, subnet, sgs, keyname = (found[k] for k in ("image", "flavor", "subnet", "sgs", "keyname"))
    network = subnet.network_id

    def one(i: int):
        p = net.create_port(
            name=f"{tag}-port-{i}",
            network_id=network,
            fixed_ips=[{"subnet_id": subnet.id}],
            security_group_ids=[sgs[f"{cluster}-cluster"], sgs[f"{cluster}-ssh"], sgs[f"{cluster}-nodeport"]],
        )
        return conn.compute.create_server(
            name=f"{tag}-{i}",
            image_id=image.id,
            flavor_id=flavor.id,
            key_name=keyname,
            networks=[{"port": p.id}],
        ), p

    made = all_at_once(one, range(count))
    ids = {s.id for s, _ in made}

    def active():
        listed = [s for s in conn.compute.servers(name=f"^{tag}-") if s.id in ids]
        return len(listed) == count and all(s.status == "ACTIVE" for s in listed)

    poll(active, "servers ACTIVE")
    seconds = round(time.monotonic() - t0, 2)
    for s, _ in made:
        conn.compute.delete_server(s)
    for s, p in made:
        conn.compute.wait_for_delete(s, wait=600)
        net.delete_port(p, ignore_missing=True)
    return seconds


# -- the run -------------------------------------------------------------------------------


def phases(trace: Trace) -> list[tuple[str, float]]:
    """The phase trace: each distinct kind of message, the time it was first seen."""
    marks = [
        ("observed, plan ready", trace.first("quota")),
        ("network ready", trace.first("attached ")),
        ("security groups done", trace.last("security group ")),
        ("first port", trace.first("created port")),
        ("last port", trace.last("created port")),
        ("first server submitted", trace.first("booting ")),
        ("last server submitted", trace.last("booting ")),
        ("last server ACTIVE", trace.last(" ACTIVE")),
        ("floating IP", trace.first("floating IP ")),
        ("state recorded", trace.first("state in ")),
        ("prepare-nodes done", trace.last("prepare-nodes.yml")),
        ("Kubespray done", trace.last("scale.yml") or trace.last("cluster.yml")),
        ("first drain", trace.first("cordon and drain")),
        ("first shelve call", trace.first(": shelving")),
        ("first unshelve call", trace.first(": unshelving")),
        ("first ACTIVE (unshelve)", trace.first("ACTIVE; waiting")),
        ("verified", trace.first("verified ")),
        ("Secrets", trace.first("Secrets ")),
        ("node files", trace.last("cloud-credential.yml")),
        ("restarted", trace.first("restarted and Ready")),
        ("old deleted", trace.last("deleted application credential")),
    ]
    return [(k, v) for k, v in marks if v is not None]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--shelve", type=int, default=8)
    ap.add_argument("--add", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--trace", action="store_true", help="print every progress message with its time")
    args = ap.parse_args()
    paths = SandboxPaths.default()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(paths.clouds_yaml))
    tmp = Path(tempfile.mkdtemp(prefix="bench-floors-"))
    inv = tmp / "inventories"
    key = tmp / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub")
    name = f"fl{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(
        tmp, name, public, "10.97.0.0/24", args.workers, control_plane_flavor="m3.tiny"
    )
    rows: list[dict] = []
    traces: dict[str, list] = {}

    def row(op: str, ours: float, floor: float, trace: Trace | None, note: str = "") -> None:
        rows.append(
            {
                "operation": op,
                "stackspray_s": ours,
                "floor_s": floor,
                "ratio": round(ours / floor, 2),
                "note": note,
            }
        )
        if trace is not None:
            traces[op] = phases(trace)
            if args.trace:
                for t, m in trace.events:
                    print(f"  {op} {t:7.2f} {m}", file=sys.stderr)
        print(f"{op}: {ours} s, floor {floor} s", file=sys.stderr, flush=True)

    try:
        # create: the floor first, then stackspray, on a cloud with the same things in it.
        made: dict = {}
        try:
            fl_s = floor_create(
                f"flc{uuid.uuid4().hex[:4]}", args.workers, public.read_text().strip(), "10.96.0.0/24", made
            )
        finally:
            floor_create_cleanup(made)
        traces[f"floor of create 1+{args.workers}"] = made["phases"]
        ours, trace, _ = timed(create_cluster, load_spec(spec), root=inv, kubernetes=False)
        row(f"create 1+{args.workers} (OpenStack)", ours, fl_s, trace)
        built, btrace, _ = timed(create_cluster, load_spec(spec), root=inv)
        traces["build Kubernetes (converge)"] = phases(btrace)
        if args.trace:
            for t, m in btrace.events:
                print(f"  build {t:7.2f} {m}", file=sys.stderr)
        rows.append(
            {
                "operation": "build Kubernetes on it (stand-in cluster.yml)",
                "stackspray_s": built,
                "floor_s": None,
                "ratio": None,
                "note": "no floor: Ansible",
            }
        )

        cdir = ClusterDir(name, inv)
        kube = Kube(cdir.load().kubeconfig)
        core = kube.core
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="bench")))
        workers = [f"{name}-workers-{i}" for i in range(1, args.workers + 1)]
        put_pods(core, workers, "a")
        keep = args.workers - args.shelve
        # stackspray, then the floor on the same workers, then stackspray again: neither side
        # always runs on a cloud the other has just warmed.
        runs = []
        chosen: list[str] = []
        fl_down = fl_up = 0.0
        for round_ in ("a", "c"):
            if round_ == "c":
                put_pods(core, chosen, "b")
                fl_down = floor_shelve(core, name, chosen)
                fl_up = floor_unshelve(core, name, chosen)
                put_pods(core, chosen, "c")
            down_s, dtrace, down = timed(scale_cluster, name, Request(workers=keep), root=inv)
            up_s, utrace, up = timed(scale_cluster, name, Request(workers=args.workers), root=inv)
            assert down.ok and up.ok, (down.to_dict(), up.to_dict())
            chosen = [s.node for s in down.steps if s.action == "shelve"]
            runs.append((down_s, dtrace, up_s, utrace))
        (d1, dt1, u1, ut1), (d2, dt2, u2, ut2) = runs
        row(
            f"shelve {args.shelve}",
            min(d1, d2),
            fl_down,
            dt1 if d1 <= d2 else dt2,
            f"two runs: {d1} s, {d2} s",
        )
        row(
            f"unshelve {args.shelve}",
            min(u1, u2),
            fl_up,
            ut1 if u1 <= u2 else ut2,
            f"two runs: {u1} s, {u2} s",
        )

        ref_s, rtrace, res = timed(refresh, name, force=True, root=inv)
        assert res.outcome == "rotated", res
        fl_ref = floor_refresh(kube, cdir, key, load_spec(spec).ssh_user)
        ref2_s, rtrace2, res2 = timed(refresh, name, force=True, root=inv)
        assert res2.outcome == "rotated", res2
        row(
            "credential refresh",
            min(ref_s, ref2_s),
            fl_ref,
            rtrace if ref_s <= ref2_s else rtrace2,
            f"two runs: {ref_s} s, {ref2_s} s",
        )
        if args.trace:
            for t, m in rtrace2.events:
                print(f"  refresh-2 {t:7.2f} {m}", file=sys.stderr)

        fl_add = floor_add(name, args.add)
        add_s, atrace, _ = timed(resize_group, spec, "workers", args.add, root=inv)
        provisioned = atrace.last(" ACTIVE") or add_s
        row(f"add-nodes {args.add} (OpenStack part)", provisioned, fl_add, None)
        row(
            f"add-nodes {args.add} (whole)",
            add_s,
            fl_add,
            atrace,
            "the rest is Ansible: prepare-nodes, scale.yml",
        )
    finally:
        destroy_cluster(name, cloud="sandbox", root=inv, progress=Progress(emit=lambda m: None))
    if args.json:
        print(json.dumps({"rows": rows, "phases": traces}))
        return 0
    print(f"{'operation':<42} {'stackspray s':>12} {'floor s':>8} {'ratio':>6}  note")
    for r in rows:
        print(
            f"{r['operation']:<42} {r['stackspray_s']!s:>12} {r['floor_s']!s:>8} {r['ratio']!s:>6}",
            r["note"],
        )
    for op, marks in traces.items():
        print(f"\n{op}: " + "; ".join(f"{k} {v:.1f}s" for k, v in marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
