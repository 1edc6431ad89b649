"""Certificate expiry as status and verify read it: the serving certificate from a real TLS
handshake (a server on loopback), the client certificate from the kubeconfig, each judged."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import ssl
import threading

import kube_standin
import pytest
import yaml

from stackspray import certs

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def make_cert(cn: str, days_left: float) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM), self-signed, ending `days_left` days after NOW."""
    return kube_standin.self_signed(cn, NOW - dt.timedelta(days=400), NOW + dt.timedelta(days=days_left))


@pytest.fixture
def tls_server(tmp_path):
    """serve(days_left) -> https://127.0.0.1:PORT presenting a certificate that ends then."""
    stops = []

    def serve(days_left: float) -> str:
        pem, key = make_cert("kube-apiserver", days_left)
        (tmp_path / "tls.crt").write_bytes(pem)
        (tmp_path / "tls.key").write_bytes(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
        sock = socket.create_server(("127.0.0.1", 0))
        stop = threading.Event()

        def accept():
            sock.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                try:
                    with ctx.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass
                finally:
                    conn.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        stops.append((stop, thread, sock))
        return f"https://127.0.0.1:{sock.getsockname()[1]}"

    yield serve
    for stop, thread, sock in stops:
        stop.set()
        thread.join()
        sock.close()


def kubeconfig(tmp_path, server: str, user: dict):
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path = tmp_path / "admin.conf"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    "days,level,words",
    [
        (364.5, "ok", "valid until 2027-12-06T00:00:00Z (364 days)"),
        (29.5, "warning", "expires in 30 day(s)"),
        (1, "warning", "expires in 1 day(s)"),
        (-2, "expired", "expired on 2026-12-04"),
    ],
)
def test_the_serving_certificate_is_read_from_the_handshake_and_judged(
    tls_server, tmp_path, days, level, words
):
    server = tls_server(days)
    pem, _ = make_cert("kubernetes-admin", 200)
    conf = kubeconfig(tmp_path, server, {"client-certificate-data": base64.b64encode(pem).decode()})
    serving, client = certs.check(conf, "lab", now=NOW)
    assert (serving.what, serving.level) == ("API server serving certificate", level), serving
    assert words in serving.detail and serving.subject == "CN=kube-apiserver"
    if level != "ok":
        assert "docs/certificates.md" in serving.detail and "lab" in serving.detail
    assert (client.what, client.level, client.subject) == (
        "kubeconfig client certificate",
        "ok",
        "CN=kubernetes-admin",
    )
    assert client.days_left == pytest.approx(200, abs=0.1)


def test_a_token_kubeconfig_has_no_client_certificate_and_a_dead_server_is_unknown(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    conf = kubeconfig(tmp_path, f"https://127.0.0.1:{port}", {"token": "t"})
    serving, client = certs.check(conf, "lab", now=NOW)
    assert serving.level == "unknown" and "cannot know" in serving.detail, serving
    assert client.level == "none" and "token" in client.detail


def test_a_client_certificate_file_beside_the_kubeconfig_and_an_expired_one(tls_server, tmp_path):
    pem, _ = make_cert("kubernetes-admin", -1)
    (tmp_path / "client.crt").write_bytes(pem)
    conf = kubeconfig(tmp_path, tls_server(100), {"client-certificate": "client.crt"})
    _, client = certs.check(conf, "lab", now=NOW)
    assert client.level == "expired" and "invoke certs.renew --cluster lab" in client.detail


def test_no_kubeconfig_nothing_to_check(tmp_path):
    (only,) = certs.check(None, "lab", now=NOW)
    assert only.level == "none" and "--no-kubernetes" in only.detail
