"""Manila in the sandbox: CephFS share, cephx access rule with access_key, export location."""

from __future__ import annotations

import time

from conftest import unique


def test_cephfs_share_with_cephx_rule(conn):
    sfs = conn.shared_file_system
    share = sfs.create_share(
        name=unique("test-share"), size=1, share_protocol="CEPHFS", share_type="cephfsnativetype"
    )
    try:
        share = sfs.wait_for_status(share, status="available", failures=["error"], interval=1, wait=90)
        assert share.share_protocol == "CEPHFS"
        rule = sfs.create_access_rule(
            share.id, access_to=unique("client"), access_type="cephx", access_level="rw"
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rule = sfs.get_access_rule(rule.id)
            if rule.state in ("active", "error"):
                break
            time.sleep(0.5)
        assert rule.state == "active"
        assert rule.access_key and len(rule.access_key) == 40, "a cephx key"
        paths = [e.path for e in sfs.export_locations(share.id)]
        assert len(paths) == 1
        monitors, _, volume = paths[0].rpartition(":/")
        assert monitors.count(":6789") == 3
        assert volume.startswith("volumes/_nogroup/")
    finally:
        sfs.delete_share(share)
        sfs.wait_for_delete(share, interval=1, wait=90)


def test_share_type_exists(conn):
    resp = conn.shared_file_system.get("/types", microversion="2.46")
    assert "cephfsnativetype" in [t["name"] for t in resp.json()["share_types"]]
