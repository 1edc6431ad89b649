"""The Kubernetes API stand-in (sandbox standins/kube_api) served on loopback inside a unit test,
with its RBAC, token controller and controllers running: product code that talks to Kubernetes
through the official client is tested against it in well under a second, before the sandbox
judges it on a node."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
import ssl
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from stackspray_sandbox.standins.kube_api.handler import Handler
from stackspray_sandbox.standins.kube_api.store import Store


@dataclass
class StandIn:
    kubeconfig: Path
    server: str
    ca_pem: str
    store: Store
    http: ThreadingHTTPServer

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        """A kubeconfig for the same server with another bearer token (0600)."""
        doc = yaml.safe_load(self.kubeconfig.read_text())
        doc["users"][0]["user"] = {"token": token}
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path


def self_signed(
    cn: str, not_before: dt.datetime, not_after: dt.datetime, ip: str | None = None
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): a self-signed EC certificate for `cn`, with `ip` as its one SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False
        )
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _certificate(tmp: Path) -> tuple[Path, Path, str]:
    now = dt.datetime.now(dt.UTC)
    pem, key = self_signed(
        "kube-apiserver", now - dt.timedelta(minutes=5), now + dt.timedelta(days=1), "127.0.0.1"
    )
    (tmp / "tls.crt").write_bytes(pem)
    (tmp / "tls.key").write_bytes(key)
    return tmp / "tls.crt", tmp / "tls.key", pem.decode()


def start(tmp: Path, nodes: list[dict] | None = None, config: dict | None = None) -> StandIn:
    """Serve a fresh stand-in (`config`: more of its settings, as standin.json holds them);
    stop it with `stop()`."""
    tmp.mkdir(parents=True, exist_ok=True)
    cert, key, pem = _certificate(tmp)
    token = secrets.token_urlsafe(24)
    store = Store(
        {
            "state_file": str(tmp / "objects.json"),
            "nodes": nodes or [],
            "token": token,
            "cert": str(cert),
            "tick": 0.1,  # the controllers' pass ten times a second: tests wait less for them
            **(config or {}),
        }
    )
    handler = type("StandInHandler", (Handler,), {"store": store})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    http.socket = ctx.wrap_socket(http.socket, server_side=True)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    threading.Thread(target=store.run_scheduler, daemon=True).start()
    server = f"https://127.0.0.1:{http.server_address[1]}"
    kubeconfig = tmp / "admin.conf"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "standin",
                        "cluster": {
                            "server": server,
                            "certificate-authority-data": base64.b64encode(pem.encode()).decode(),
                        },
                    }
                ],
                "users": [{"name": "kubernetes-admin", "user": {"token": token}}],
                "contexts": [
                    {"name": "standin", "context": {"cluster": "standin", "user": "kubernetes-admin"}}
                ],
                "current-context": "standin",
            }
        )
    )
    kubeconfig.chmod(0o600)
    return StandIn(kubeconfig, server, pem, store, http)


def stop(standin: StandIn) -> None:
    standin.http.shutdown()
    standin.http.server_close()
