"""The cluster credential with Keystone access rules (spec `credential: {access_rules: true}`), on
the sandbox, whose services enforce them as keystonemiddleware does with `service_type` set.

Run as a user runs it (invoke as a subprocess, OS_CLOUD exported, another working directory), and
judged with python-openstackclient authenticating as the cluster credential: the calls the cloud
controller manager and Cinder CSI make work, anything else is refused — and a rotation keeps the
rules."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from helpers import BIN, invoke, user_runner
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.credentials import stored
from stackspray.state import ClusterDir


def as_credential(conn, cred, *args: str) -> subprocess.CompletedProcess:
    """python-openstackclient authenticating with the cluster credential alone."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env = {
        **keep,
        "OS_AUTH_TYPE": "v3applicationcredential",
        "OS_AUTH_URL": conn.config.get_auth_args()["auth_url"],
        "OS_APPLICATION_CREDENTIAL_ID": cred.id,
        "OS_APPLICATION_CREDENTIAL_SECRET": cred.secret,
        "OS_REGION_NAME": "RegionOne",
        "OS_INTERFACE": "public",
    }
    return subprocess.run(
        [str(BIN / "openstack"), *args, "-f", "json"], env=env, capture_output=True, text=True, timeout=120
    )


def keystone_rules(conn, cred_id: str) -> list[dict]:
    found = conn.identity.get_application_credential(conn.current_user_id, cred_id)
    return [{k: r[k] for k in ("service", "method", "path")} for r in (found.access_rules or [])]


def test_access_rules_let_the_cluster_read_what_it_needs_refuse_the_rest_and_survive_rotation(
    sandbox, conn, ssh_key, tmp_path
):
    name = f"ar{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(
        tmp_path, name, ssh_key.with_suffix(".pub"), "10.64.0.0/24", 0, credential={"access_rules": True}
    )
    inv = tmp_path / "inventories"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"STACKSPRAY_INVENTORIES": str(inv)}

    run = user_runner(sandbox, elsewhere, env)

    try:
        built = run("create-cluster", "--spec", str(spec))
        assert "with access rules" in built.stdout and "image refused (access rules hold)" in built.stdout
        first = stored(ClusterDir(name, inv))
        rules = keystone_rules(conn, first.id)
        services = {r["service"] for r in rules}
        # The sandbox has Cinder and Octavia: the compute, network, block-storage and
        # load-balancer calls.
        assert services == {"compute", "network", "block-storage", "load-balancer"}, rules
        assert {"service": "compute", "method": "GET", "path": "/v2.1/servers/detail"} in rules
        # Cinder checks a request against the rules under the type it is registered as.
        volumes = as_credential(conn, first, "volume", "list")
        assert volumes.returncode == 0, volumes.stderr
        # Octavia checks them under `load-balancer` (the cloud controller's calls).
        balancers = as_credential(conn, first, "loadbalancer", "list")
        assert balancers.returncode == 0, balancers.stderr

        servers = as_credential(conn, first, "server", "list")
        assert servers.returncode == 0, servers.stderr
        assert {s["Name"] for s in json.loads(servers.stdout)} >= {f"{name}-control-plane-1"}
        assert as_credential(conn, first, "network", "list").returncode == 0
        for refused in (
            ("image", "list"),  # Glance is not in the rules
            ("share", "list"),  # nor is Manila
            ("server", "create", "--flavor", "m3.tiny", "--image", "x", "--network", "x", "evil"),
            ("security", "group", "create", "evil"),  # network writes are not either
        ):
            out = as_credential(conn, first, *refused)
            assert out.returncode != 0 and (
                "401" in out.stderr or "Unauthorized" in out.stderr or "authoriz" in out.stderr.lower()
            ), (refused, out.stdout, out.stderr)
        assert not list(conn.network.security_groups(name="evil"))

        rotated = run("credentials.refresh", "--cluster", name, "--force")
        assert "image refused (access rules hold)" in rotated.stdout, rotated.stdout
        second = stored(ClusterDir(name, inv))
        assert second.id != first.id
        assert keystone_rules(conn, second.id) == rules
        state = ClusterDir(name, inv).load()
        assert state.credential_access_rules and state.credential.access_rules
    finally:
        invoke(sandbox, elsewhere, "destroy-cluster", "--cluster", name, "--yes", env=env)
