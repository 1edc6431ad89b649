"""The operator's kubeconfig issued again when a command loads it within 30 days of its client
certificate's end (kubeconfig_refresh.py): real certificates, the playbook replaced by what
Kubespray's kubeconfig_localhost step leaves behind (artifacts/admin.conf)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stackspray import kube, kubeconfig_refresh
from stackspray.kube import Kube, KubeError

NOW = dt.datetime.now(dt.UTC)


def admin_conf(days: float, token: str | None = None) -> str:
    """A kubeconfig as `kubeadm kubeconfig user` writes it, its client certificate ending in `days`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-admin-cluster.local")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    user: dict = (
        {"token": token}
        if token
        else {
            "client-certificate-data": base64.b64encode(
                cert.public_bytes(serialization.Encoding.PEM)
            ).decode(),
            "client-key-data": base64.b64encode(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            ).decode(),
        }
    )
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "cluster.local", "cluster": {"server": "https://127.0.0.1:1"}}],
            "contexts": [{"name": "a@cluster.local", "context": {"cluster": "cluster.local", "user": "a"}}],
            "current-context": "a@cluster.local",
            "users": [{"name": "a", "user": user}],
        }
    )


def cluster_folder(tmp_path, days: float):
    folder = tmp_path / "inventories" / "lab"
    (folder / "artifacts").mkdir(parents=True)
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(admin_conf(days))
    kubeconfig.chmod(0o600)
    (folder / "state.json").write_text(json.dumps({"cluster": "lab", "kubeconfig": str(kubeconfig)}))
    return folder, kubeconfig


def issuing(days: float, calls: list):
    def run(book, cdir, say):
        calls.append(book)
        (cdir.path / "artifacts" / "admin.conf").write_text(admin_conf(days))

    return run


def test_only_a_client_certificate_near_its_end_is_due(tmp_path):
    _, kubeconfig = cluster_folder(tmp_path, 20)
    left = kubeconfig_refresh.due(kubeconfig)
    assert left is not None and 19.9 < left <= 20
    kubeconfig.write_text(admin_conf(200))
    assert kubeconfig_refresh.due(kubeconfig) is None
    kubeconfig.write_text(admin_conf(0, token="t"))  # the agent's or a token kubeconfig
    assert kubeconfig_refresh.due(kubeconfig) is None


def test_a_due_kubeconfig_is_issued_again_once_and_written_0600(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeconfig_refresh, "_tried", {})
    folder, kubeconfig = cluster_folder(tmp_path, 12)
    calls: list = []
    said: list = []
    kubeconfig_refresh.on_load(kubeconfig, said.append, run=issuing(365, calls))
    assert calls == ["kubeconfig.yml"], said
    assert 364 < kubeconfig_refresh.client_days_left(kubeconfig) <= 365
    assert kubeconfig.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(kubeconfig.read_text())["current-context"] == "lab"  # named as create-cluster does
    assert "ends in 12 day(s)" in said[0] and "valid 365 day(s)" in said[-1], said
    kubeconfig_refresh.on_load(kubeconfig, said.append, run=issuing(365, calls))
    assert calls == ["kubeconfig.yml"], "not due any more"


def test_a_failed_issue_is_said_the_old_kubeconfig_kept_and_not_retried_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeconfig_refresh, "_tried", {})
    _, kubeconfig = cluster_folder(tmp_path, 5)
    before = kubeconfig.read_text()
    said: list = []
    calls: list = []

    def broken(book, cdir, say):
        calls.append(book)
        raise RuntimeError("ssh: connect to host 10.0.0.5 port 22: No route to host")

    kubeconfig_refresh.on_load(kubeconfig, said.append, run=broken)
    kubeconfig_refresh.on_load(kubeconfig, said.append, run=broken)
    assert calls == ["kubeconfig.yml"] and kubeconfig.read_text() == before
    assert "No route to host" in said[-1] and "still works for 5 day(s)" in said[-1]
    assert "invoke certs.renew --cluster lab" in said[-1]


def test_a_short_certificate_issued_again_is_warned_about(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeconfig_refresh, "_tried", {})
    _, kubeconfig = cluster_folder(tmp_path, 3)
    said: list = []
    kubeconfig_refresh.on_load(kubeconfig, said.append, run=issuing(10, []))
    assert "a certificate of only 10 day(s)" in said[-1] and "cluster CA" in said[-1], said


def test_a_kubeconfig_outside_a_cluster_folder_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeconfig_refresh, "_tried", {})
    other = tmp_path / "kubeconfig"
    other.write_text(admin_conf(2))
    calls: list = []
    kubeconfig_refresh.on_load(other, [].append, run=issuing(365, calls))
    assert calls == []


def test_kube_calls_the_hook_before_it_loads_the_kubeconfig(tmp_path, monkeypatch):
    seen = []

    def hook(path):
        seen.append(path)
        path.write_text("not: [a kubeconfig")  # what the hook wrote is what Kube loads

    monkeypatch.setattr(kube, "ON_LOAD", hook)
    path = tmp_path / "kubeconfig"
    path.write_text(admin_conf(100))
    try:
        Kube(path)
    except KubeError as exc:
        assert "cannot be used" in str(exc)
    else:
        raise AssertionError("Kube loaded the kubeconfig from before the hook")
    assert seen == [path]


def test_a_hibernated_cluster_s_kubeconfig_waits_for_the_wake(tmp_path, monkeypatch):
    monkeypatch.setattr(kubeconfig_refresh, "_tried", {})
    folder, kubeconfig = cluster_folder(tmp_path, 4)
    state = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps({**state, "hibernation": {"phase": "asleep"}}))
    calls: list = []
    kubeconfig_refresh.on_load(kubeconfig, [].append, run=issuing(365, calls))
    assert calls == []
