"""ML2 mechanism driver for the sandbox: no agents run there, so this binds every port.

Neutron only marks a port bound (and Nova only boots a server on it) when some mechanism
driver binds it; on a real cloud an OVS/OVN agent does. Here every port gets vif_type ``ovs``
and status ACTIVE at once.
"""

from neutron_lib.plugins.ml2 import api


class BindEveryPortMechanismDriver(api.MechanismDriver):
    """Bind every port on its first segment (sandbox only)."""

    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                "ovs",
                {"port_filter": True, "ovs_hybrid_plug": False},
                status="ACTIVE",
            )
            return
