"""The operator's kubeconfig issued again before its client certificate ends.

Kubespray's kubeconfig_localhost step gives the operator a kubeconfig whose client certificate
kubeadm signs for a year, at the cluster.yml run that wrote it; the control plane's renewal timer
(auto_renew_certificates) renews the node's certificates, never this copy. So a cluster nobody
rebuilt for a year loses its operator on the day that certificate ends. Whenever a command loads
a cluster's kubeconfig (`Kube(...)`, through `kube.ON_LOAD`, set by the command-line program) and
its client certificate has under REFRESH_DAYS left, playbooks/kubeconfig.yml issues a new one on
the first control plane, written 0600 as create-cluster writes it; the credential schedule loads
it too, so a scheduled cluster keeps a valid kubeconfig with nobody running commands. A
kubeconfig without a client certificate (a token), or outside a cluster folder, is left alone.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import time
from collections.abc import Callable
from pathlib import Path

from . import certs, inventory, secret_files
from .errors import StackSprayError
from .kubespray import named_kubeconfig, run_ours
from .state import ClusterDir

log = logging.getLogger(__name__)

REFRESH_DAYS = 30.0
RETRY_SECONDS = 3600.0  # a process (the autoscaler's loop here runs for months) tries again after
_tried: dict[str, float] = {}  # kubeconfig -> when this process last issued it again (or failed to)


def client_days_left(kubeconfig: Path, now: dt.datetime | None = None) -> float | None:
    """Days until the kubeconfig's client certificate ends; None without one (a token)."""
    _, user = certs.kubeconfig_entries(kubeconfig)
    cert = certs.client_certificate(user, kubeconfig.parent)
    if cert is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    return (cert.not_valid_after_utc - now).total_seconds() / 86400


def due(kubeconfig: Path, now: dt.datetime | None = None) -> float | None:
    """The days left when the client certificate must be issued again, else None."""
    try:
        left = client_days_left(kubeconfig, now)
    except (OSError, ValueError, TypeError, KeyError):
        return None  # unreadable here: Kube's own loading says what is wrong with it
    return left if left is not None and left < REFRESH_DAYS else None


def write_issued(cdir: ClusterDir) -> None:
    """The kubeconfig Kubespray's kubeconfig_localhost step just wrote (artifacts/admin.conf),
    named after the cluster, as the cluster's kubeconfig (0600)."""
    text = named_kubeconfig((cdir.path / secret_files.ADMIN_CONF).read_text(), cdir.name)
    inventory.write(cdir.path, [inventory.InventoryFile(secret_files.KUBECONFIG, text, 0o600)])


def refresh(cdir: ClusterDir, say: Callable[[str], None], run=None) -> float:
    """Issue the cluster's kubeconfig again (playbooks/kubeconfig.yml) and write it; the new
    certificate's days left. `run(book, cdir, say)`: the playbook runner (kubespray.run_ours)."""
    state = cdir.load()
    if not state or not state.kubeconfig:
        raise StackSprayError(f"cluster {cdir.name!r} has no kubeconfig to issue again")
    (run or run_ours)("kubeconfig.yml", cdir, say)
    write_issued(cdir)
    left = client_days_left(Path(state.kubeconfig))
    return left if left is not None else 0.0


def on_load(kubeconfig: Path, say: Callable[[str], None] | None = None, run=None) -> None:
    """Kube's hook: a cluster's kubeconfig (the `kubeconfig` of a cluster folder) whose client
    certificate is due is issued again first, one process at a time; a failure is said and the
    old kubeconfig used while it still works."""
    path = Path(kubeconfig)
    if path.name != secret_files.KUBECONFIG or not (path.parent / "state.json").exists():
        return
    if due(path) is None or time.monotonic() - _tried.get(str(path), -RETRY_SECONDS) < RETRY_SECONDS:
        return
    _tried[str(path)] = time.monotonic()
    say = say or (lambda m: log.warning("%s", m))
    cdir = ClusterDir(path.parent.name, path.parent.parent)
    if cdir.load().hibernation is not None:
        return  # its control plane is shelved: `wake` loads the kubeconfig once it answers
    with open(path.parent / ".kubeconfig.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be issuing it right now
        left = due(path)
        if left is None:
            return
        say(
            f"kubeconfig {path}: its client certificate ends in {max(left, 0):.0f} day(s): "
            "issuing it again on the control plane (Kubespray's kubeconfig_localhost step)"
        )
        try:
            now_left = refresh(cdir, say, run)
        except Exception as exc:  # noqa: BLE001 (the command goes on with what it has)
            say(
                f"kubeconfig {path}: could not issue it again ({exc}); it "
                + ("has expired" if left <= 0 else f"still works for {left:.0f} day(s)")
                + f": run `invoke certs.renew --cluster {cdir.name}` (docs/certificates.md)"
            )
            return
        say(f"kubeconfig {path}: issued again, its client certificate valid {now_left:.0f} day(s)")
        if now_left < REFRESH_DAYS:
            say(
                f"kubeconfig {path}: the control plane issued a certificate of only {now_left:.0f} "
                f"day(s): check the cluster CA's expiry (`invoke verify --cluster {cdir.name}`)"
            )
