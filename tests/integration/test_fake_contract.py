"""The fake cloud's contract: the same scenario on the sandbox (upstream services over HTTP) and on
stackspray_sandbox.fakecloud, compared — what a create leaves, that a re-run plans nothing, the
unfriendly answers (each typed as stackspray types it) and what a destroy leaves. When they
differ, the fake changes: it must never be kinder than the cloud the unit tests stand in for."""

from __future__ import annotations

import openstack
from helpers import make_spec, quiet  # noqa: F401 (make_spec is a fixture)
from stackspray_sandbox.contract import cluster_shape
from stackspray_sandbox.fakecloud import FakeCloud

from stackspray import cloudops
from stackspray.cloudapi import OpenStackAPI
from stackspray.cluster import create_cluster, destroy_cluster
from stackspray.errors import CloudError
from stackspray.spec import load_spec


def answer(call) -> str:
    """What a call answered, as stackspray types it: "ok" or the error's class name."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 (typed below)
        err = cloudops.typed(exc, "call")
        return type(err).__name__ if isinstance(err, CloudError) else f"untyped {type(exc).__name__}"
    return "ok"


def unfriendly_answers(api, name: str) -> dict[str, str]:
    """Calls the cloud refuses, made the same way on both clouds."""
    groups = {g.name: g for g in api.list("security_group") if g.name.startswith(f"{name}-")}
    ports = {p.name: p for p in api.list("port") if p.name.startswith(f"{name}-")}
    subnet = next(s for s in api.list("subnet") if s.name == f"{name}-subnet")
    router = next(r for r in api.list("router") if r.name == "auto_allocated_router")
    net = next(n for n in api.list("network") if n.name == f"{name}-net")
    worker = api.list("server", name=f"^{name}-workers-1$")[0]
    out = {
        "delete a security group a port uses": answer(
            lambda: api.delete("security_group", groups[f"{name}-ssh"].id)
        ),
        "attach the subnet to its router again": answer(
            lambda: api.add_router_interface(router.id, subnet.id)
        ),
        "delete a network with ports": answer(lambda: api.delete("network", net.id)),
        "read a port that does not exist": answer(
            lambda: api.get("port", "0b1c2d3e-0000-4000-8000-000000000000")
        ),
        "upload a keypair under a name taken": answer(
            lambda: api.create("keypair", name=f"{name}-key", public_key=_key_of(api, name))
        ),
        "unshelve an ACTIVE server": answer(lambda: api.server_action(worker.id, "unshelve")),
        "shelve": answer(lambda: api.server_action(worker.id, "shelve")),
        "shelve it again at once": answer(lambda: api.server_action(worker.id, "shelve")),
        "boot on a port a server uses": answer(
            lambda: api.create(
                "server",
                name=f"{name}-intruder",
                flavor_id=api.find("flavor", "m3.tiny").id,
                image_id=api.find("image", worker_image(api, worker)).id,
                networks=[{"port": ports[f"{name}-workers-1-port"].id}],
            )
        ),
    }
    cloudops.wait_until(
        lambda: True if api.get("server", worker.id).status == "SHELVED_OFFLOADED" else None,
        "worker shelved",
        timeout=300,
    )
    return out


def service_load_balancer(api, name: str) -> str:
    """What the cloud controller makes for a LoadBalancer Service of cluster `name`, on its subnet:
    an Octavia load balancer (VIP port on the subnet) and a floating IP on the VIP. Its id."""
    subnet = next(s for s in api.list("subnet") if s.name == f"{name}-subnet")
    lb_name = f"kube_service_{name}_default_web"
    desc = f"Kubernetes external service default/web from cluster {name}"
    fip_desc = f"Floating IP for Kubernetes external service default/web from cluster {name}"
    if isinstance(api, FakeCloud):
        return api.add_service_load_balancer(lb_name, desc, subnet.id, fip=fip_desc)["id"]
    lb = api.conn.load_balancer.create_load_balancer(
        name=lb_name, description=desc, tags=[lb_name], vip_subnet_id=subnet.id
    )
    lb = api.conn.load_balancer.wait_for_load_balancer(lb.id, status="ACTIVE", failures=["ERROR"], wait=120)
    public = api.conn.network.find_network("public")
    api.conn.network.create_ip(floating_network_id=public.id, port_id=lb.vip_port_id, description=fip_desc)
    return lb.id


def _key_of(api, name: str) -> str:
    return api.find("keypair", f"{name}-key").public_key


def worker_image(api, worker) -> str:
    image = worker.image
    image_id = image["id"] if isinstance(image, dict) else image.id
    return api.get("image", image_id).name


def fake_like(conn) -> FakeCloud:
    """A fake project with the sandbox's flavors and images (names, sizes)."""
    flavors = {f.name: (f.vcpus, f.ram) for f in conn.compute.flavors()}
    images = [i.name for i in conn.image.images()]
    return FakeCloud(
        flavors=flavors,
        images=images,
        services=(*FakeCloud().services, "block-storage", "load-balancer"),
    )


def test_the_fake_cloud_answers_as_the_sandbox(conn, make_spec, tmp_path):
    path, inv = make_spec(workers=1, share=True)
    spec = load_spec(path)
    real, fake = OpenStackAPI(openstack.connect(cloud="sandbox")), fake_like(conn)
    shapes, reruns, refusals, left, kube_left = {}, {}, {}, {}, {}
    for label, api, root in (("sandbox", real, inv), ("fake", fake, tmp_path / "fake-inventories")):
        create_cluster(spec, progress=quiet(), root=root, kubernetes=False, api=api)
        shapes[label] = cluster_shape(api, spec.name)
        again = create_cluster(spec, progress=quiet(), root=root, kubernetes=False, api=api, dry_run=True)
        reruns[label] = sorted({a["kind"] for a in again.actions})
        refusals[label] = unfriendly_answers(api, spec.name)
        lb = service_load_balancer(api, spec.name)
        subnet = next(s for s in api.list("subnet") if s.name == f"{spec.name}-subnet")
        refusals[label]["delete the subnet under a load balancer's VIP"] = answer(
            lambda api=api, subnet=subnet: api.delete("subnet", subnet.id)
        )
        destroy_cluster(spec.name, root=root, api=api, progress=quiet())
        left[label] = cluster_shape(api, spec.name)
        kube_left[label] = {
            "load balancers": [b.id for b in api.list("load_balancer") if b.id == lb],
            "floating IPs": [f.id for f in api.list("floating_ip") if spec.name in (f.description or "")],
        }

    assert shapes["sandbox"]["servers"] and shapes["sandbox"]["shares"], "the scenario built something"
    assert shapes["fake"] == shapes["sandbox"]
    assert reruns == {"sandbox": ["noop"], "fake": ["noop"]}
    assert refusals["fake"] == refusals["sandbox"]
    assert (
        refusals["sandbox"]["shelve"] == "ok"
        and refusals["sandbox"]["delete a network with ports"] == "Conflict"
    )
    assert left["fake"] == left["sandbox"] and all(v == [] for v in left["sandbox"].values())
    assert refusals["sandbox"]["delete the subnet under a load balancer's VIP"] == "Conflict"
    assert kube_left["fake"] == kube_left["sandbox"] == {"load balancers": [], "floating IPs": []}
