"""`sandbox.down` leaves no process, namespace, bridge or mount behind; `up` brings it back.

Runs last of all (tests/conftest.py orders it so), alone. The sandbox is started again afterwards
(a warm restart), so the session's fixtures can still clean up; the `sandbox` fixture stops it at
the very end when this run started it, and checks again that nothing is left.
"""

from __future__ import annotations

import pytest
from conftest import stop_session_ssh
from stackspray_sandbox import cloud

# It stops the whole sandbox: no other worker may be in a sandbox module meanwhile.
pytestmark = pytest.mark.sandbox_exclusive


def test_down_leaves_nothing_behind_and_up_restarts(sandbox, conn, tmp_path_factory):
    assert cloud.status(sandbox.paths)["running"]
    stop_session_ssh(tmp_path_factory.getbasetemp())
    stopped = cloud.down(sandbox.paths)
    assert "keystone-api" in stopped and "node-agent" in stopped and "mariadb" in stopped
    assert cloud.leftovers(sandbox.paths) == {}
    assert not cloud.status(sandbox.paths)["running"]
    report = cloud.up(sandbox.paths)
    assert cloud.status(sandbox.paths)["running"]
    assert "openstack services" in report.steps
