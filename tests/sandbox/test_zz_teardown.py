"""Runs last: `sandbox.down` leaves no process, namespace, bridge or mount behind.

When the sandbox was already running before this test session (a developer's), it is started
again afterwards, which also proves a warm restart.
"""

from __future__ import annotations

from stackspray.sandbox import cloud


def test_down_leaves_nothing_behind(sandbox, conn):
    assert cloud.status(sandbox.paths)["running"]
    stopped = cloud.down(sandbox.paths)
    assert "keystone-api" in stopped and "node-agent" in stopped and "mariadb" in stopped
    assert cloud.leftovers(sandbox.paths) == {}
    assert not cloud.status(sandbox.paths)["running"]
    if sandbox.was_running:
        report = cloud.up(sandbox.paths)
        assert cloud.status(sandbox.paths)["running"]
        assert report.steps
