"""python-openstackclient (a client we did not write) works against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import unique


def openstack_cli(sandbox, *args: str) -> list[dict]:
    exe = Path(sys.executable).with_name("openstack")
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(sandbox.clouds_yaml), OS_CLOUD="sandbox")
    out = subprocess.run(
        [str(exe), *args, "-f", "json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cli_lists_servers_networks_and_shares(sandbox, conn, make_network, make_server):
    net = make_network()
    server = make_server(net, name=unique("cli-vm"))
    share = conn.shared_file_system.create_share(
        name=unique("cli-share"), size=1, share_protocol="CEPHFS", share_type="cephfsnativetype"
    )
    try:
        assert server.name in [s["Name"] for s in openstack_cli(sandbox, "server", "list")]
        networks = [n["Name"] for n in openstack_cli(sandbox, "network", "list")]
        assert net.network.name in networks and "public" in networks
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            shares = {s["Name"]: s for s in openstack_cli(sandbox, "share", "list")}
            if shares.get(share.name, {}).get("Status") == "available":
                break
            time.sleep(1)
        assert shares[share.name]["Share Proto"] == "CEPHFS"
    finally:
        conn.shared_file_system.delete_share(share)
        conn.shared_file_system.wait_for_delete(share, interval=1, wait=90)


def test_cli_lists_volumes_and_jetstream2s_volume_quota(sandbox, conn):
    # openstacksdk's own functional tests skip block storage when the catalog lacks it.
    volume = conn.block_storage.create_volume(name=unique("cli-vol"), size=1)
    try:
        conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=120)
        listed = {v["Name"]: v for v in openstack_cli(sandbox, "volume", "list")}
        assert listed[volume.name]["Status"] == "available" and listed[volume.name]["Size"] == 1
        absolute = {r["Name"]: r["Value"] for r in openstack_cli(sandbox, "limits", "show", "--absolute")}
        assert absolute["max_total_volume_gigabytes"] == 1000  # Jetstream2's 1 TB default
        assert absolute["max_total_volumes"] == 10 and absolute["total_gigabytes_used"] >= 1
    finally:
        conn.block_storage.delete_volume(volume, ignore_missing=True)
        conn.block_storage.wait_for_delete(volume, wait=60)
