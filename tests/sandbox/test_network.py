"""Neutron in the sandbox: tenant network, subnet, router, security group, floating IP."""

from __future__ import annotations

from conftest import unique


def test_network_subnet_router_floating_ip(conn, admin_conn, make_network, make_server):
    net = make_network()
    assert net.network.mtu == 1450, "tenant vxlan networks carry the VXLAN overhead"
    router = conn.network.get_router(net.router.id)
    assert router.external_gateway_info["network_id"] == conn.network.find_network("public").id
    ifaces = [
        p for p in conn.network.ports(device_id=router.id) if p.device_owner == "network:router_interface"
    ]
    # The project's one router (quota 1) holds the auto-allocated subnet and ours.
    assert net.subnet.id in [ip["subnet_id"] for p in ifaces for ip in p.fixed_ips]

    server = make_server(net)
    port = next(conn.network.ports(device_id=server.id))
    # Binding details are admin-only.
    assert admin_conn.network.get_port(port.id).binding_vif_type == "ovs", "our ML2 driver binds it"
    fip = conn.network.create_ip(floating_network_id=net.router.external_gateway_info["network_id"])
    try:
        conn.network.update_ip(fip, port_id=port.id)
        fip = conn.network.get_ip(fip.id)
        assert fip.port_id == port.id
        assert fip.fixed_ip_address == port.fixed_ips[0]["ip_address"]
        assert fip.floating_ip_address.startswith("172.24.4.")
    finally:
        conn.network.delete_ip(fip)


def test_security_group_rules_and_allowed_address_pairs(conn, make_network):
    sg = conn.network.create_security_group(name=unique("test-sg"))
    try:
        rule = conn.network.create_security_group_rule(
            security_group_id=sg.id,
            direction="ingress",
            protocol="tcp",
            port_range_min=6443,
            port_range_max=6443,
            remote_ip_prefix="192.0.2.0/24",
        )
        rules = [r for r in conn.network.security_group_rules(security_group_id=sg.id) if r.id == rule.id]
        assert rules and rules[0].port_range_min == 6443
        net = make_network()
        port = conn.network.create_port(
            network_id=net.network.id,
            security_group_ids=[sg.id],
            allowed_address_pairs=[{"ip_address": "10.233.64.0/18"}, {"ip_address": "10.233.0.0/18"}],
        )
        try:
            got = conn.network.get_port(port.id)
            assert {p["ip_address"] for p in got.allowed_address_pairs} == {"10.233.64.0/18", "10.233.0.0/18"}
            assert got.is_port_security_enabled
        finally:
            conn.network.delete_port(port)
    finally:
        conn.network.delete_security_group(sg)


def test_floating_ip_quota_is_jetstream2_default(admin_conn, conn):
    quota = admin_conn.network.get_quota(conn.current_project_id)
    assert quota.floating_ips == 10
