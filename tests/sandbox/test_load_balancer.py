"""Octavia in the sandbox: upstream Octavia's API and worker; a load balancer's VIP is a real
Neutron port on the subnet it was asked for (the amphorae are Octavia's no-op drivers)."""

from __future__ import annotations

import openstack
import pytest
from conftest import unique
from test_openstackclient import openstack_cli


@pytest.fixture
def make_load_balancer(conn):
    """Factory: a load balancer (fully populated, as the cloud controller makes them), waited
    ACTIVE; deleted with everything in it after the test."""
    made = []

    def make(subnet_id: str, **attrs):
        name = unique("test-lb")
        lb = conn.load_balancer.create_load_balancer(
            name=name,
            vip_subnet_id=subnet_id,
            listeners=[
                {
                    "name": f"listener_0_{name}",
                    "protocol": "TCP",
                    "protocol_port": 80,
                    "default_pool": {
                        "name": f"pool_0_{name}",
                        "protocol": "TCP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [{"address": "10.255.0.5", "protocol_port": 30080}],
                    },
                }
            ],
            **attrs,
        )
        made.append(lb)
        return conn.load_balancer.wait_for_load_balancer(lb.id, status="ACTIVE", failures=["ERROR"], wait=120)

    yield make
    for lb in made:
        try:
            conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
        except openstack.exceptions.ConflictException:  # still PENDING: wait, then delete
            conn.load_balancer.wait_for_load_balancer(lb.id, status="ACTIVE", failures=["ERROR"], wait=120)
            conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
        except openstack.exceptions.NotFoundException:
            continue
    for lb in made:
        conn.load_balancer.wait_for_delete(lb, wait=120)


def test_a_load_balancer_holds_a_real_vip_port_on_its_subnet(conn, make_network, make_load_balancer):
    net = make_network()
    lb = make_load_balancer(net.subnet.id, description="sandbox test", tags=["one-tag"])
    assert lb.provider == "amphora" and lb.tags == ["one-tag"]
    assert [listener["id"] for listener in lb.listeners], "the listener was made with the load balancer"
    port = conn.network.get_port(lb.vip_port_id)
    # As Octavia's AllowedAddressPairsDriver makes it: in the user's project, on the subnet.
    assert port.name == f"octavia-lb-{lb.id}" and port.device_owner == "Octavia"
    assert port.project_id == conn.current_project_id
    assert port.fixed_ips == [{"subnet_id": net.subnet.id, "ip_address": lb.vip_address}]
    # The port holds an address of the subnet: Neutron refuses to delete the subnet under it.
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_subnet(net.subnet)
    # A floating IP on the VIP, as the cloud controller gives a LoadBalancer Service.
    public = conn.network.find_network("public")
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    try:
        assert conn.network.get_ip(fip).fixed_ip_address == lb.vip_address
    finally:
        conn.network.delete_ip(fip)

    conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
    conn.load_balancer.wait_for_delete(lb, wait=120)
    assert conn.network.find_port(port.id) is None, "deleting the load balancer deletes its VIP port"


def test_a_subnet_that_does_not_exist_is_refused(conn):
    missing = "9daa1cf0-91a3-4b79-b62c-000000000000"
    with pytest.raises(openstack.exceptions.BadRequestException, match=f"Subnet {missing} not found"):
        conn.load_balancer.create_load_balancer(name=unique("test-lb"), vip_subnet_id=missing)


def test_openstack_cli_lists_load_balancers(sandbox, conn, make_network, make_load_balancer):
    lb = make_load_balancer(make_network().subnet.id)
    rows = openstack_cli(sandbox, "loadbalancer", "list")
    assert {r["id"]: r["provisioning_status"] for r in rows}.get(lb.id) == "ACTIVE"
