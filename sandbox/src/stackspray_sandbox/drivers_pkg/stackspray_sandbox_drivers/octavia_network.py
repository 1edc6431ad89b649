"""Octavia network driver for the sandbox: real VIP ports in Neutron, no amphorae to plug.

A load balancer's footprint in the project is its VIP port: a Neutron port named
``octavia-lb-<id>`` on the subnet the load balancer was asked for, which holds an address of that
subnet (so the subnet and network cannot be deleted while it exists) and which the cloud
controller attaches a floating IP to. Octavia's AllowedAddressPairsDriver makes and deletes that
port (octavia/network/drivers/neutron/allowed_address_pairs.py allocate_vip, deallocate_vip); this
driver uses it for exactly that and for reading networks, subnets and ports.

Everything else concerns amphorae — service VMs running HAProxy, which the sandbox cannot boot —
and is Octavia's own no-op driver (octavia/network/drivers/noop_driver/driver.py), as its no-op
test jobs run it with the no-op compute and amphora drivers. What is missing next to a real
cloud: the VRRP ports of the amphorae and the `lb-<id>` security group, which live in Octavia's
service project, not in the user's.
"""

from octavia.network.drivers.neutron.allowed_address_pairs import AllowedAddressPairsDriver
from octavia.network.drivers.noop_driver.driver import NoopNetworkDriver


class VipPortNetworkDriver(NoopNetworkDriver):
    """Neutron for VIP ports and reads; no-op for amphora plumbing (sandbox only)."""

    def __init__(self):
        super().__init__()
        self._neutron = AllowedAddressPairsDriver()

    def allocate_vip(self, loadbalancer):
        return self._neutron.allocate_vip(loadbalancer)

    def deallocate_vip(self, vip):
        return self._neutron.deallocate_vip(vip)

    def get_network(self, network_id, context=None):
        return self._neutron.get_network(network_id, context=context)

    def get_subnet(self, subnet_id, context=None):
        return self._neutron.get_subnet(subnet_id, context=context)

    def get_port(self, port_id, context=None):
        return self._neutron.get_port(port_id, context=context)

    def get_security_group_by_id(self, sg_id, context=None):
        return self._neutron.get_security_group_by_id(sg_id, context=context)
