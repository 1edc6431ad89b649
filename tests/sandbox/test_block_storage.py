"""Cinder in the sandbox: upstream Cinder on a one-node Ceph (RBD), as Jetstream2's volumes."""

from __future__ import annotations

import json
import subprocess
import time

import openstack
import pytest
from conftest import unique
from stackspray_sandbox import ceph


def _rbd_images(sandbox) -> set[str]:
    out = subprocess.run(
        ["rbd", "-c", str(ceph.conf_path(sandbox.paths)), "ls", "--format", "json", ceph.POOL],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return set(json.loads(out.stdout or "[]"))


@pytest.fixture
def make_volume(conn):
    """Factory: a volume, deleted (detached first by its server's deletion) after the test."""
    made = []

    def make(**attrs):
        volume = conn.block_storage.create_volume(name=unique("test-vol"), **attrs)
        made.append(volume)
        return conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=120)

    yield make
    for v in made:
        try:
            v = conn.block_storage.wait_for_status(
                conn.block_storage.get_volume(v), "available", failures=["error"], wait=60
            )
        except openstack.exceptions.NotFoundException:
            continue
        conn.block_storage.delete_volume(v, ignore_missing=True)
    for v in made:
        conn.block_storage.wait_for_delete(v, wait=60)


def test_a_volume_is_an_rbd_image_attached_to_a_server_and_back(
    conn, sandbox, make_network, make_server, make_volume
):
    volume = make_volume(size=2)
    assert f"volume-{volume.id}" in _rbd_images(sandbox), "the volume is an RBD image in Ceph's pool"
    server = make_server(make_network())
    conn.compute.create_volume_attachment(server, volume_id=volume.id)
    volume = conn.block_storage.wait_for_status(volume, "in-use", failures=["error"], wait=120)
    assert [a["server_id"] for a in volume.attachments] == [server.id]
    # A volume in use cannot be deleted: Cinder's answer, not a kinder one.
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.block_storage.delete_volume(volume)
    conn.compute.delete_volume_attachment(server, volume.id)
    volume = conn.block_storage.wait_for_status(volume, "available", failures=["error"], wait=120)
    assert volume.attachments == []
    conn.block_storage.delete_volume(volume)
    conn.block_storage.wait_for_delete(volume, wait=60)
    assert f"volume-{volume.id}" not in _rbd_images(sandbox)


def test_quota_refuses_more_than_the_allocation(conn, make_volume):
    with pytest.raises(openstack.exceptions.HttpException) as err:
        make_volume(size=1001)
    assert err.value.status_code == 413 and "quota" in str(err.value).lower()


def test_boot_from_volume_deletes_its_root_volume_with_the_server(conn, sandbox, make_network, keypair):
    net = make_network()
    image = conn.image.find_image("Featured-Ubuntu24")
    server = conn.compute.create_server(
        name=unique("test-bfv"),
        flavor_id=conn.compute.find_flavor("m3.tiny").id,
        networks=[{"uuid": net.network.id}],
        key_name=keypair.name,
        block_device_mapping_v2=[
            {
                "boot_index": 0,
                "uuid": image.id,
                "source_type": "image",
                "destination_type": "volume",
                "volume_size": 20,
                "delete_on_termination": True,
            }
        ],
    )
    try:
        server = conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], wait=180)
        (root,) = conn.compute.volume_attachments(server)
        volume = conn.block_storage.get_volume(root.volume_id)
        assert volume.is_bootable and volume.size == 20 and volume.status == "in-use"
        assert volume.volume_image_metadata["image_id"] == image.id, "copied from the image"
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=120)
    deadline = time.monotonic() + 60
    while conn.block_storage.find_volume(root.volume_id, ignore_missing=True) is not None:
        assert time.monotonic() < deadline, "the root volume outlived its server"
        time.sleep(1)
    assert f"volume-{root.volume_id}" not in _rbd_images(sandbox)
