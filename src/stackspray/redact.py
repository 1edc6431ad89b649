"""Keeping secrets out of what Ansible prints: the cluster's known secrets and the shapes Kubespray
prints them in.

Kubespray v2.31.0 has tasks without `no_log` whose results hold secrets: the OpenStack cloud
controller's `set_fact` of the base64 cloud config, the Cinder CSI role's `slurp` of its config
file, kubeadm's output with the admin kubeconfig and the join token. At ANSIBLE_VERBOSITY ≥ 1
those results are printed. `Redactor.scrub` replaces, in any text:
- every secret value the cluster folder's secret files hold, whatever their mode (and its base64
  form);
- any base64 run that decodes to text holding one of them, or a private key;
- PEM private key blocks, kubeadm bootstrap tokens and certificate keys.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

import yaml

from . import secret_files

REDACTED = "<redacted>"
MIN_SECRET = 8
_B64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_PEM_ESCAPED = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:\\n|.)*?-----END [A-Z ]*PRIVATE KEY-----")
_BOOTSTRAP_TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_CERT_KEY = re.compile(r"(--certificate-key[ =])[0-9a-f]{64}")


_SECRET_KEY = re.compile(r"secret|password|token|key_data|(^|[_-])key$|access_key", re.I)


def _secret_values(value, key: str = "") -> list[str]:
    """Values under keys that name a secret (…_secret, …_key, token, client-key-data, …)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _secret_values(v, str(k))]
    if isinstance(value, list):
        return [s for v in value for s in _secret_values(v, key)]
    if isinstance(value, str) and _SECRET_KEY.search(key) and not key.endswith(("_file", "_name", "_id")):
        return [value]
    return []


def secrets_of(cluster_dir: Path) -> set[str]:
    """Every secret value in the cluster folder: the files `secret_files` names and `secrets/`,
    whatever their mode now, and any other private (0600) file of it — the credential's secret,
    the share key, the kubeconfig's client key or token."""
    named = {cluster_dir / rel for rel in secret_files.FILES}
    found: set[str] = set()
    for p in cluster_dir.rglob("*"):
        if "artifacts" in p.parts and p not in named or "logs" in p.parts or not p.is_file():
            continue
        bare = p.parent.name == secret_files.SECRETS_DIR
        try:
            if not (p in named or bare) and p.stat().st_mode & 0o077:
                continue  # no secret of ours lives in a file everyone may read
            text = p.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        if isinstance(data, dict | list):
            found.update(_secret_values(data))
        elif bare and text.strip():
            found.add(text.strip())  # a bare secret, e.g. the share's access key
    return {s for s in found if len(s) >= MIN_SECRET}


class Redactor:
    """Scrubs secrets out of text (see the module doc)."""

    def __init__(self, secrets: set[str] | None = None) -> None:
        self.secrets = {s for s in (secrets or set()) if len(s) >= MIN_SECRET}
        forms = set(self.secrets)
        for s in self.secrets:
            forms.add(base64.b64encode(s.encode()).decode())
        self._literal = sorted(forms, key=len, reverse=True)

    def add(self, *values: str) -> None:
        new = {v for v in values if v and len(v) >= MIN_SECRET}
        if new - self.secrets:
            self.__init__(self.secrets | new)

    def _blob(self, m: re.Match) -> str:
        text = m.group(0)
        try:
            decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=False).decode(
                "utf-8", "ignore"
            )
        except (binascii.Error, ValueError):
            return text
        if "PRIVATE KEY" in decoded or any(s in decoded for s in self.secrets):
            return REDACTED
        return text

    def scrub(self, text: str) -> str:
        if not text:
            return text
        for s in self._literal:
            if s in text:
                text = text.replace(s, REDACTED)
        text = _PEM.sub(REDACTED, text)
        text = _PEM_ESCAPED.sub(REDACTED, text)
        text = _B64.sub(self._blob, text)
        text = _BOOTSTRAP_TOKEN.sub(REDACTED, text)
        return _CERT_KEY.sub(lambda m: m.group(1) + REDACTED, text)
