"""Fault injection: each kind is observed by a real client, and the cloud is unaffected after."""

from __future__ import annotations

import time

import openstack
import pytest
import requests
from conftest import fixed_ip, ssh, ssh_refused
from keystoneauth1 import exceptions as ks_exc
from stackspray_sandbox import faults


@pytest.fixture(autouse=True)
def _clean_faults(sandbox):
    faults.clear(sandbox.paths)
    yield
    faults.clear(sandbox.paths)


@pytest.mark.parametrize("status", [500, 503, 409])
def test_status_fault_hits_only_the_matching_calls(conn, status):
    faults.inject("nova", method="GET", path=r"/flavors", status=status, count=1)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        list(conn.compute.flavors())
    assert err.value.status_code == status
    assert list(conn.compute.flavors()), "count=1: the next call goes through"
    assert [f["status"] for f in faults.fired()] == [status]


def test_429_carries_retry_after(conn):
    faults.inject("neutron", method="GET", path=r"/v2.0/networks", status=429, retry_after=7)
    resp = conn.network.get("/networks", raise_exc=False)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"


def test_connection_reset(conn):
    faults.inject("nova", method="GET", path=r"/servers", kind="reset")
    with pytest.raises((ks_exc.ConnectFailure, requests.exceptions.ConnectionError)):
        list(conn.compute.servers())
    assert isinstance(list(conn.compute.servers()), list)


def test_keystone_fault_on_credential_create(conn):
    faults.inject("keystone", method="POST", path=r"/application_credentials", status=500)
    with pytest.raises(openstack.exceptions.HttpException):
        conn.identity.create_application_credential(user=conn.current_user_id, name="never-made")
    names = [c.name for c in conn.identity.application_credentials(user=conn.current_user_id)]
    assert "never-made" not in names


def test_server_goes_to_error_on_boot(conn, sandbox, make_network, make_server):
    net = make_network()
    faults.boot_errors(1, name_contains="doomed", paths=sandbox.paths)
    server = make_server(net, name="doomed-1", status="ERROR")
    assert server.status == "ERROR"
    assert "injected boot failure" in (server.fault or {}).get("message", "")
    assert faults.boot_errors_remaining(sandbox.paths) == 0
    ok = make_server(net, name="doomed-2")
    assert ok.status == "ACTIVE"


def test_kill_node_abruptly_then_hard_reboot_brings_it_back(
    conn, sandbox, make_network, make_server, ssh_key
):
    net = make_network()
    server = make_server(net, name="crashy")
    ip = fixed_ip(server)
    ssh(ip, ssh_key, "echo before > ~/crash-marker")
    assert faults.kill_node(server.id, paths=sandbox.paths)
    assert ssh_refused(ip, ssh_key)
    time.sleep(1.5)  # the agent does not bring a crashed node back on its own
    assert ssh_refused(ip, ssh_key)
    assert conn.compute.get_server(server.id).status == "ACTIVE", "Nova does not notice a crash"
    conn.compute.reboot_server(server, "HARD")
    conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], wait=60)
    assert ssh(ip, ssh_key, "cat ~/crash-marker", timeout=40).strip() == "before"
