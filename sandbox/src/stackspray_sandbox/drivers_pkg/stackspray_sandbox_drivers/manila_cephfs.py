"""Manila share driver for the sandbox: manila's own dummy driver, speaking CephFS.

Manila ships ``manila.tests.share.drivers.dummy.DummyDriver`` (used by its own CI) which
needs no storage but only knows NFS and CIFS. Jetstream2 offers CephFS shares
(``cephfsnativetype``), so this subclass also accepts CEPHFS, returns a CephFS-style export
path (monitors and a volume path) and answers cephx access rules with an ``access_key`` the
way manila's CephFS driver does.
"""

import base64
import hashlib

from manila.tests.share.drivers import dummy

MONITORS = "10.254.0.11:6789,10.254.0.12:6789,10.254.0.13:6789"


class CephFSDummyDriver(dummy.DummyDriver):
    def _create_share(self, context, share, share_server=None):
        if share["share_proto"].upper() != "CEPHFS":
            return super()._create_share(context, share, share_server=share_server)
        path = f"{MONITORS}:/volumes/_nogroup/{share['id']}"
        self.private_storage.update(
            share["id"],
            {"fake_provider_share_name": share["id"], "fake_provider_location": path},
        )
        return [{"path": path, "is_admin_only": False, "metadata": {"preferred": True}}]

    def update_access(
        self, context, share, access_rules, add_rules, delete_rules, update_rules, share_server=None
    ):
        if share["share_proto"].upper() != "CEPHFS":
            return super().update_access(
                context, share, access_rules, add_rules, delete_rules, update_rules, share_server
            )
        updates = {}
        for rule in add_rules + access_rules:
            if rule["access_type"].lower() != "cephx":
                updates[rule["access_id"]] = {"state": "error"}
                continue
            seed = f"{share['id']}/{rule['access_to']}/{rule['access_id']}".encode()
            # A cephx key is 40 base64 characters; derive one per rule.
            key = base64.b64encode(hashlib.sha256(seed).digest()[:30]).decode()
            updates[rule["access_id"]] = {"access_key": key}
        return updates

    def _update_share_stats(self, data=None):
        super()._update_share_stats(data)
        self._stats["storage_protocol"] = "NFS_CIFS_CEPHFS"
