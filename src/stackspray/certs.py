"""Certificate expiry: what of a cluster's TLS stops working, and when.

kubeadm issues the API server's serving certificate and the admin kubeconfig's client
certificate for one year (cmd/kubeadm/app/constants/constants.go: CertificateValidityPeriod), and
Kubespray does not renew them unless `auto_renew_certificates` is set. A cluster left alone dies on
its first birthday; `status` and `verify` show the dates long before. Read from where they are
used: the serving certificate from a TLS handshake with the API server, the client certificate
from the operator's kubeconfig. A certificate that cannot be read is reported as unknown, with
why — never as fine.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import socket
import ssl
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from cryptography import x509

WARN_DAYS = 30
TIMEOUT = 5.0
SERVING = "API server serving certificate"
CLIENT = "kubeconfig client certificate"


@dataclass
class Expiry:
    """One certificate's end of validity, judged."""

    what: str  # SERVING or CLIENT
    level: str  # ok | warning | expired | unknown | none (nothing there expires)
    not_after: str | None = None  # ISO 8601, UTC
    days_left: float | None = None
    subject: str | None = None
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def judge(what: str, cert: x509.Certificate, now: dt.datetime, todo: str) -> Expiry:
    """ok, warning (under WARN_DAYS days left) or expired, with what to do in `detail`."""
    end = cert.not_valid_after_utc
    left = (end - now).total_seconds() / 86400
    subject = cert.subject.rfc4514_string()
    when = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    if left <= 0:
        level, detail = "expired", f"expired on {when}: {todo}"
    elif left < WARN_DAYS:
        level, detail = "warning", f"expires in {left:.0f} day(s), on {when}: {todo}"
    else:
        level, detail = "ok", f"valid until {when} ({left:.0f} days)"
    return Expiry(what, level, when, round(left, 1), subject, detail)


def kubeconfig_entries(path: Path) -> tuple[dict, dict]:
    """(cluster entry, user entry) of the kubeconfig's current context."""
    doc = yaml.safe_load(path.read_text()) or {}
    ctx_name = doc.get("current-context")
    ctx = next((c["context"] for c in doc.get("contexts") or [] if c.get("name") == ctx_name), None)
    if ctx is None and doc.get("contexts"):
        ctx = doc["contexts"][0]["context"]
    ctx = ctx or {}
    cluster = next(
        (c["cluster"] for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {}
    )
    user = next((u["user"] for u in doc.get("users") or [] if u.get("name") == ctx.get("user")), {})
    return cluster or {}, user or {}


def serving_certificate(server: str, timeout: float = TIMEOUT) -> x509.Certificate:
    """The certificate the API server at `server` (https://host:port) presents. Not verified
    here: this reads its dates, the client that uses it verifies it."""
    url = urllib.parse.urlsplit(server)
    host, port = url.hostname or "", url.port or 443
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{host}:{port} presented no certificate")
    return x509.load_der_x509_certificate(der)


def client_certificate(user: dict, base: Path) -> x509.Certificate | None:
    """The kubeconfig user's client certificate; None when it authenticates otherwise (a token)."""
    if user.get("client-certificate-data"):
        return x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    if user.get("client-certificate"):
        return x509.load_pem_x509_certificate((base / user["client-certificate"]).read_bytes())
    return None


def check(kubeconfig: Path | str | None, cluster: str, now: dt.datetime | None = None) -> list[Expiry]:
    """The serving and the client certificate of the cluster's kubeconfig, each judged."""
    now = now or dt.datetime.now(dt.UTC)
    renew = f"run `invoke certs.renew --cluster {cluster}` (docs/certificates.md)"
    if not kubeconfig or not Path(kubeconfig).exists():
        why = (
            "the cluster has no kubeconfig (built with --no-kubernetes, or not yet): no certificate to check"
        )
        return [Expiry(SERVING, "none", detail=why)]
    path = Path(kubeconfig)
    try:
        entry, user = kubeconfig_entries(path)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        return [Expiry("kubeconfig", "unknown", detail=f"{path} cannot be read: {exc}")]
    out = []
    server = entry.get("server") or ""
    try:
        out.append(judge(SERVING, serving_certificate(server), now, renew))
    except (OSError, ValueError, ssl.SSLError) as exc:
        out.append(
            Expiry(
                SERVING,
                "unknown",
                detail=f"cannot know: {server} answered no TLS handshake ({exc})",
            )
        )
    try:
        cert = client_certificate(user, path.parent)
    except (OSError, ValueError) as exc:
        out.append(Expiry(CLIENT, "unknown", detail=f"cannot be read from {path}: {exc}"))
    else:
        if cert is None:
            out.append(
                Expiry(
                    CLIENT,
                    "none",
                    detail=f"{path} authenticates with a token: no client certificate to expire",
                )
            )
        else:
            todo = f"`invoke certs.renew --cluster {cluster}` issues it again (docs/certificates.md)"
            out.append(judge(CLIENT, cert, now, todo))
    return out


# `kubeadm certs check-expiration` (cmd/kubeadm/app/cmd/certs.go, newCmdCertsExpiration): a table
# of certificates, then one of certificate authorities; RESIDUAL TIME is apimachinery's
# duration.ShortHumanDuration ("<invalid>" once expired, else s, m, h, d or y).
_ROW = re.compile(r"^(\S+)\s+([A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2} UTC)\s+(<invalid>|\d+[smhdy])\s")
_UNIT_DAYS = {"s": 1 / 86400, "m": 1 / 1440, "h": 1 / 24, "d": 1.0, "y": 365.0}


@dataclass
class NodeCertificate:
    """One row of `kubeadm certs check-expiration` on a control-plane node, judged."""

    name: str  # apiserver, admin.conf, etcd-server, ca, …
    expires: str  # as kubeadm prints it
    days_left: float  # negative once expired
    level: str  # ok | warning | expired


def parse_check_expiration(text: str) -> list[NodeCertificate]:
    """Every certificate and authority kubeadm lists, with its residual time as days, judged as
    the other expiries are (under WARN_DAYS: warning)."""
    out = []
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if not m:
            continue
        name, expires, residual = m.groups()
        days = -1.0 if residual == "<invalid>" else int(residual[:-1]) * _UNIT_DAYS[residual[-1]]
        level = "expired" if days <= 0 else "warning" if days < WARN_DAYS else "ok"
        out.append(NodeCertificate(name, expires, round(days, 2), level))
    return out
