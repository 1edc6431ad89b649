"""Certificate expiry and the renewal timer, as a user runs status and verify (`OS_CLOUD`
exported, from another folder) against a cluster the Kubespray stand-in built: the API server's
certificate read from its TLS handshake (a year, as kubeadm issues it), the timer Kubespray's
auto_renew_certificates installs on the control plane, a certificate aged to 20 days warned
about by both commands, and `certs.renew` making it a year again with a kubeconfig that works.
The kubeconfig's client certificate (kubeadm kubeconfig user's) aged to 20 days as well is issued
again by the next command that loads the kubeconfig."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import yaml
from helpers import kube_tools, user_runner
from stackspray_sandbox.specs import write_small_cluster_spec


def test_status_and_verify_show_expiry_warn_when_near_and_see_the_renewal_timer(sandbox, ssh_key, tmp_path):
    name = f"ce{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(tmp_path, name, ssh_key.with_suffix(".pub"), "10.57.0.0/24", 1)
    env = {"STACKSPRAY_INVENTORIES": str(tmp_path / "inventories")}
    run = user_runner(sandbox, tmp_path, env=env)
    try:
        run("create-cluster", "--spec", str(spec))

        def certificates() -> dict:
            doc = json.loads(run("status", "--cluster", name, "--json").stdout)
            return {c["what"]: c for c in doc["certificates"]}

        fresh = certificates()
        serving = fresh["API server serving certificate"]
        assert serving["level"] == "ok" and 363 < serving["days_left"] <= 365, serving
        assert serving["subject"] == "CN=kube-apiserver"
        client = fresh["kubeconfig client certificate"]  # kubeadm kubeconfig user's, a year
        assert client["level"] == "ok" and 363 < client["days_left"] <= 365, client
        # kubeadm kubeconfig user --client-name=kubernetes-admin-{{ cluster_name }}: the cluster's name,
        # which stackspray gives Kubespray's cluster_name (docs/cloud-resources.md).
        assert client["subject"] == f"O=kubeadm:cluster-admins,CN=kubernetes-admin-{name}", client
        checked = json.loads(run("verify", "--cluster", name, "--json").stdout)
        assert checked["ok"] and not checked["warnings"], checked
        cp = f"{name}-control-plane-1"
        timer = [c for c in checked["results"][cp] if c.startswith("certificate renewal timer")]
        assert [checked["results"][cp][c] for c in timer] == ["PASS"], checked["results"][cp]
        assert checked["results"][cp]["control plane certificates are valid"] == "PASS", checked["results"][
            cp
        ]
        assert checked["results"]["certificates"] == {
            "API server serving certificate valid for 30 days or more": "PASS",
            "kubeconfig client certificate valid for 30 days or more": "PASS",
        }

        # Aged: the stand-in issues it for 20 days (its fault variable); cluster.yml runs again.
        data = yaml.safe_load(spec.read_text())
        data["kubernetes"] = {**(data.get("kubernetes") or {}), "standin_cert_days": 20}
        spec.write_text(yaml.safe_dump(data))
        rebuilt = run("create-cluster", "--spec", str(spec))
        # cluster.yml handed out a kubeconfig whose client certificate ends in 20 days too: the
        # first command that loads it (this one, right after) has it issued again, a year long.
        kubeconfig = tmp_path / "inventories" / name / "kubeconfig"
        said = rebuilt.stderr + run("status", "--cluster", name).stderr
        assert "its client certificate ends in 20 day(s): issuing it again" in said, said
        assert "issued again, its client certificate valid 365 day(s)" in said, said
        client = certificates()["kubeconfig client certificate"]
        assert client["level"] == "ok" and 363 < client["days_left"] <= 365, client
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        aged = certificates()["API server serving certificate"]
        assert aged["level"] == "warning" and 18 < aged["days_left"] <= 20, aged
        text = run("status", "--cluster", name).stdout
        assert "API server serving certificate: WARNING: expires in 20 day(s)" in text, text
        assert "docs/certificates.md" in text
        warned = run("verify", "--cluster", name)  # a warning is not a failure: exit 0
        assert "WARNING certificates: API server serving certificate valid for 30 days" in warned.stdout
        # On the node, kubeadm's own list (certs check-expiration) says the same of apiserver.
        # (kubeadm floors the residual time: a 20-day certificate issued minutes ago has 19d left.)
        assert re.search(
            rf"WARNING {cp}: control plane certificates are valid: "
            r"under 30 days left: apiserver \((19|20) days\)",
            warned.stdout,
        ), warned.stdout
        assert "2 warning(s)" in warned.stdout, warned.stdout

        # Renewed now, as the warning says: a year again, read back from the handshake, and the
        # kubeconfig issued again still works (kubectl, the real client).
        renewed = json.loads(run("certs.renew", "--cluster", name, "--json").stdout)
        (after,) = [e for e in renewed["after"] if e["what"] == "API server serving certificate"]
        assert after["level"] == "ok" and 363 < after["days_left"] <= 365, renewed
        assert certificates()["API server serving certificate"]["level"] == "ok"
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        nodes = subprocess.run(
            [str(kube_tools()["kubectl"]), "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert nodes.returncode == 0 and f"node/{name}-control-plane-1" in nodes.stdout, nodes.stderr
    finally:
        run("destroy-cluster", "--cluster", name, "--yes")
