"""No secret outside its 0600 file after a full create-cluster + credentials.refresh at
ANSIBLE_VERBOSITY=4, run as a user runs them (invoke as a subprocess from another folder, OS_CLOUD
exported). The Kubespray stand-in prints the base64 cloud config as Kubespray's own tasks do
(set_fact and slurp without no_log), so the scrubbing is what keeps it out.

Secrets: both cluster credentials' secrets, the share's cephx key, the kubeconfig's client key,
the operator credential's secret and the SSH private key — each raw and in base64 at any offset
(a base64 blob of a file holding it). Looked for in the commands' output, in every file under
inventories/ (run logs and ansible-runner artifacts included) other than the 0600 secret files,
and in every file under /tmp written during the test."""

from __future__ import annotations

import base64
import os
import time
import uuid
from pathlib import Path

import yaml
from helpers import invoke
from stackspray_sandbox.specs import write_small_cluster_spec

from stackspray.credentials import stored
from stackspray.state import ClusterDir


def forms(secret: str) -> set[str]:
    """The secret, and the part of its base64 that is the same wherever it sits in a blob."""
    raw = secret.encode()
    out = {secret}
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode()
        start, end = -(-8 * k // 6), (8 * (k + len(raw))) // 6
        if end - start >= 12:
            out.add(enc[start:end])
    return out


def holding(path: Path, needles: set[str]) -> bool:
    try:
        text = path.read_text(errors="ignore")
    except (FileNotFoundError, PermissionError, IsADirectoryError, OSError):
        return False
    return any(n in text for n in needles)


def test_a_verbose_create_and_refresh_leave_no_secret_outside_its_0600_file(
    sandbox, ssh_key, tmp_path_factory
):
    started = time.time() - 1
    work = tmp_path_factory.mktemp("e2e-secrets")
    name = f"sx{uuid.uuid4().hex[:5]}"
    spec = write_small_cluster_spec(
        work, name, ssh_key.with_suffix(".pub"), "10.65.0.0/24", 1, share={"size_gb": 1}
    )
    inv = work / "inventories"
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    env = {"STACKSPRAY_INVENTORIES": str(inv), "ANSIBLE_VERBOSITY": "4"}

    def run(*args: str) -> str:
        out = invoke(sandbox, elsewhere, *args, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout + out.stderr

    cdir = ClusterDir(name, inv)
    try:
        shown = run("create-cluster", "--spec", str(spec))
        first = stored(cdir)
        shown += run("credentials.refresh", "--cluster", name, "--force")
        second = stored(cdir)
        assert first.id != second.id
        state = cdir.load()
        kubeconfig = yaml.safe_load(Path(state.kubeconfig).read_text())
        operator = yaml.safe_load(sandbox.clouds_yaml.read_text())["clouds"]["sandbox"]["auth"]
        secrets = {
            "old cluster credential": first.secret,
            "new cluster credential": second.secret,
            "share key": Path(state.share.access_key_file).read_text().strip(),
            "kubeconfig client key": kubeconfig["users"][0]["user"].get("client-key-data", "")
            or kubeconfig["users"][0]["user"].get("token", ""),
            "operator credential": operator["application_credential_secret"],
            "ssh private key": ssh_key.read_text().strip().splitlines()[1],
        }
        assert all(len(v) >= 16 for v in secrets.values()), {k: len(v) for k, v in secrets.items()}
        needles = {f for v in secrets.values() for f in forms(v)}

        assert not any(n in shown for n in needles), "a secret in the commands' output"
        # The files that are there to hold secrets: the two 0600 inventory files (credential,
        # share key), the kubeconfig and Kubespray's copy of it (artifacts/admin.conf), the API
        # stand-in's token and the cluster CA it fetched (the sandbox's stand-in for the control
        # plane's PKI; the CA is public, the folder is kept 0600 whole), and secrets/.
        secret_files = {
            cdir.path / "group_vars" / "all" / "openstack-credential.yml",
            cdir.path / "group_vars" / "all" / "manila-share-secret.yml",
            Path(state.kubeconfig),
            cdir.path / "artifacts" / "admin.conf",
            *[p for p in (cdir.path / "artifacts" / ".kube-api-standin").glob("*") if p.is_file()],
            *[p for p in cdir.secrets.rglob("*") if p.is_file()],
            # The official client's copies of the kubeconfig's client key for its TLS context, in
            # the 0700 folder beside the kubeconfig (kube.py), while a process holds a client.
            *[p for p in (cdir.path / ".kube-tmp").glob("*") if p.is_file()],
        }
        for p in secret_files:
            assert p.stat().st_mode & 0o077 == 0, f"{p} holds a secret and is readable by others"
        files = [p for p in inv.rglob("*") if p.is_file() and not p.is_symlink()]
        assert any("job_events" in p.parts or p.name == "stdout" for p in files) or any(
            "logs" in p.parts for p in files
        ), "the run left its logs and artifacts where they were looked for"
        leaked = [str(p) for p in files if p not in secret_files and holding(p, needles)]
        assert leaked == [], f"secrets in {leaked}"

        basetemp = Path(tmp_path_factory.getbasetemp())
        if basetemp.name.startswith("popen-gw"):
            basetemp = basetemp.parent  # every xdist worker's files of this session (their SSH keys)
        in_tmp = []
        for dirpath, _dirs, names in os.walk("/tmp"):
            d = Path(dirpath)
            if d == basetemp or basetemp in d.parents:
                continue  # the test session's own files (SSH keys), not the product's
            for n in names:
                p = d / n
                try:
                    fresh = p.is_file() and p.stat().st_mtime >= started
                except OSError:
                    continue  # another process's temporary file, gone since the listing
                if fresh and holding(p, needles):
                    in_tmp.append(str(p))
        assert in_tmp == [], f"secrets left in /tmp: {in_tmp}"
    finally:
        invoke(sandbox, elsewhere, "destroy-cluster", "--cluster", name, "--yes", env=env)
