"""A server ACTIVE in Nova whose OS never answers (a fault the sandbox injects, as real VMs stuck
at boot do): create-cluster names that node, only that one, after one SSH timeout for all nodes,
and says what to do; after a hard reboot the re-run finishes. The sandbox itself raised the
kernel limits its node hosts need and reports each node host's boot."""

from __future__ import annotations

import json
import subprocess

from helpers import invoke, make_spec  # noqa: F401 (make_spec is a fixture)
from stackspray_sandbox import faults, kernel


def test_a_node_whose_os_never_answers_is_named_and_a_hard_reboot_lets_the_rerun_finish(
    make_spec, sandbox, conn, tmp_path
):
    path, inv = make_spec(workers=2)
    name = path.stem
    silent = f"{name}-workers-2"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"STACKSPRAY_INVENTORIES": str(inv), "STACKSPRAY_NODE_SSH_TIMEOUT": "45"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return invoke(sandbox, elsewhere, *args, env=env)

    faults.silent_os(1, name_contains=silent, paths=sandbox.paths)
    failed = run("create-cluster", "--spec", str(path))
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out
    assert f"1 node(s) are ACTIVE in the cloud but did not answer SSH within 45 s: {silent}." in out, out
    assert "openstack server reboot --hard NODE" in out
    assert f"{name}-workers-1." not in out and f"{name}-workers-1:" not in out
    server = conn.compute.find_server(silent, ignore_missing=False)
    assert conn.compute.get_server(server.id).status == "ACTIVE"  # Nova sees nothing wrong

    # sandbox.status: the silent node host, and every other node's boot (SSH-ready after one boot).
    st = json.loads(invoke(sandbox, elsewhere, "sandbox.status", "--json").stdout)
    nodes = {n["hostname"]: n for n in st["nodes"]}
    assert nodes[silent]["boot"]["silent"] is True and not nodes[silent]["running"]
    assert nodes[f"{name}-workers-1"]["boot"]["boots"] >= 1
    assert nodes[f"{name}-workers-1"]["boot"]["ready_seconds"] is not None
    # The limits node hosts need at scale, raised by sandbox.up.
    for limit, k in st["kernel"].items():
        assert k["now"] >= kernel.LIMITS[limit], (limit, k)

    conn.compute.reboot_server(server, "HARD")
    conn.compute.wait_for_server(conn.compute.get_server(server.id), status="ACTIVE", wait=120)
    again = run("create-cluster", "--spec", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "running cluster.yml" in again.stdout
