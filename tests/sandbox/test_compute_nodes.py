"""Nova in the sandbox and the node hosts that follow it over SSH."""

from __future__ import annotations

from conftest import fixed_ip, ssh, ssh_refused
from stackspray_sandbox import nodehost


def test_flavors_image_and_quotas_look_like_jetstream2(conn, admin_conn):
    flavors = {f.name: f for f in conn.compute.flavors()}
    for name, (vcpus, ram_gib) in {
        "m3.tiny": (1, 3),
        "m3.small": (2, 6),
        "m3.quad": (4, 15),
        "m3.medium": (8, 30),
        "m3.large": (16, 60),
        "g3.small": (4, 15),
    }.items():
        assert flavors[name].vcpus == vcpus
        assert flavors[name].ram == ram_gib * 1024
    assert "gpu:model" in admin_conn.compute.fetch_flavor_extra_specs(flavors["g3.small"]).extra_specs
    assert "gpu:model" not in (
        admin_conn.compute.fetch_flavor_extra_specs(flavors["m3.small"]).extra_specs or {}
    )
    assert conn.image.find_image("Featured-Ubuntu24").status == "active"
    limits = conn.compute.get_limits().absolute
    assert limits.total_cores == 150
    assert limits.total_ram == 585 * 1024


def test_server_lifecycle_with_node_host(conn, sandbox, make_network, make_server, ssh_key):
    net = make_network()
    server = make_server(net, name="lifecycle-node")
    ip = fixed_ip(server)

    # ACTIVE -> a real host: our key, its own hostname, systemd running.
    assert ssh(ip, ssh_key, "hostname").strip() == "lifecycle-node"
    assert ssh(ip, ssh_key, "systemctl is-system-running --wait || true").strip() in ("running", "degraded")
    ssh(ip, ssh_key, "echo kept-across-shelve > ~/marker && sudo -n true")

    # Shelve -> SHELVED_OFFLOADED (snapshot in Glance), the host stops: SSH refused.
    conn.compute.shelve_server(server)
    server = conn.compute.wait_for_server(server, status="SHELVED_OFFLOADED", failures=["ERROR"], wait=120)
    snapshot = conn.image.find_image(f"{server.name}-shelved")
    assert snapshot is not None, "image-backed shelve snapshots into Glance"
    _wait(lambda: ssh_refused(ip, ssh_key), "SSH refused while shelved")
    assert not nodehost.is_running(sandbox.paths, server.id)

    # Unshelve -> same addresses, same disk.
    conn.compute.unshelve_server(server)
    server = conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], wait=120)
    assert fixed_ip(server) == ip
    assert ssh(ip, ssh_key, "cat ~/marker").strip() == "kept-across-shelve"

    # Delete -> the node host and its disk are destroyed.
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120)
    _wait(lambda: not nodehost.node_dir(sandbox.paths, server.id).exists(), "node destroyed after delete")
    assert ssh_refused(ip, ssh_key)


def test_floating_ip_reaches_the_node(conn, make_network, make_server, ssh_key):
    net = make_network()
    server = make_server(net, name="fip-node")
    port = next(conn.network.ports(device_id=server.id))
    fip = conn.network.create_ip(
        floating_network_id=net.router.external_gateway_info["network_id"], port_id=port.id
    )
    try:
        assert ssh(fip.floating_ip_address, ssh_key, "hostname").strip() == "fip-node"
    finally:
        conn.network.delete_ip(fip)
    _wait(lambda: ssh_refused(fip.floating_ip_address, ssh_key, timeout=2), "FIP released")


def test_nodes_on_one_network_reach_each_other(conn, make_network, make_server, ssh_key):
    net = make_network()
    a = make_server(net, name="peer-a")
    b = make_server(net, name="peer-b")
    assert ssh(fixed_ip(b), ssh_key, "hostname").strip() == "peer-b"  # b has booted
    probe = f"import socket; s=socket.create_connection(('{fixed_ip(b)}', 22), 3); print(s.recv(4))"
    assert "SSH-" in ssh(fixed_ip(a), ssh_key, f'python3 -c "{probe}"')


def _wait(predicate, what: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for: {what}")
