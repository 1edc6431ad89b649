"""The cluster credential: the only OpenStack credential that ever reaches the cluster.

stackspray authenticates with the operator's credential (a clouds.yaml entry) and creates, for
each cluster, a restricted application credential (it cannot create other credentials) named
`<cluster>-k8s-<UTC time>` with an expiry (90 days by default). Its id, name and expiry are
recorded in the cluster's state; its secret only in the inventory's 0600 credential file.
"""

from __future__ import annotations

import datetime as dt
import logging

import yaml

from . import names
from .cloudops import ensure, read
from .cluster_state import Credential as StateCredential
from .errors import CloudError, NotFound
from .inventory import SECRETS_FILE, Credential, credential_file, write
from .state import ClusterDir

log = logging.getLogger(__name__)
DEFAULT_EXPIRY_DAYS = 90


def credential_name(cluster: str, now: dt.datetime | None = None) -> str:
    return names.credential(cluster, now)


def stored(cdir: ClusterDir) -> Credential | None:
    """The credential in the cluster's 0600 inventory file, if any."""
    try:
        data = yaml.safe_load((cdir.path / SECRETS_FILE).read_text()) or {}
    except FileNotFoundError:
        return None
    cid = data.get("external_openstack_application_credential_id")
    if not cid:
        return None
    return Credential(
        cid,
        data.get("external_openstack_application_credential_name", ""),
        data.get("external_openstack_application_credential_secret", ""),
    )


def ensure_cluster_credential(
    conn, cluster: str, cdir: ClusterDir, say, days: int = DEFAULT_EXPIRY_DAYS
) -> Credential:
    """Reuse the recorded credential while Keystone still has it; otherwise create one."""
    user = conn.current_user_id
    state = cdir.load()
    recorded = state.credential
    recorded_id = recorded.id if recorded else None
    have = stored(cdir)
    if have and recorded_id == have.id:
        found = find_credential(conn, user, have.id)
        if found is not None:
            return have
        say(f"the recorded cluster credential {have.name} is gone from Keystone: creating a new one")
    name = credential_name(cluster)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)

    def find():
        return next((c for c in conn.identity.application_credentials(user=user) if c.name == name), None)

    cred, created = ensure(
        find,
        lambda: conn.identity.create_application_credential(
            user=user,
            name=name,
            expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S"),
            unrestricted=False,
            description=names.credential_description(cluster),
        ),
        f"application credential {name}",
    )
    if not created or not getattr(cred, "secret", None):
        # Keystone shows a secret only once, at creation: an adopted one is useless to us.
        raise CloudError(
            f"application credential {name} exists but its secret is unknown; delete it and re-run"
        )
    credential = Credential(cred.id, name, cred.secret)
    write(cdir.path, [credential_file(cluster, credential)])  # at once: Keystone never shows it again
    state = cdir.load()
    state.credential = StateCredential(cred.id, name, expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    cdir.save(state)
    say(f"created cluster credential {name} (restricted, expires {expires:%Y-%m-%d})")
    for orphan in read(lambda: list(conn.identity.application_credentials(user=user)), "list credentials"):
        # The previously recorded one may still be in the running cluster: only unrecorded ones go.
        if names.is_cluster_credential(orphan, cluster) and orphan.id not in (cred.id, recorded_id):
            read(lambda o=orphan: conn.identity.delete_application_credential(user, o.id), "delete orphan")
            say(f"deleted unrecorded cluster credential {orphan.name}")
    return credential


def check_operator_credential(conn, cloud: str) -> None:
    """The operator's credential must be able to create the cluster's own credential: on
    Jetstream2 the command line authenticates with application credentials only, and only an
    *unrestricted* one may create application credentials. Refused before anything is created
    (it would otherwise fail after every VM is booted and billing)."""
    auth = conn.config.get_auth_args()
    cred_id, cred_name = auth.get("application_credential_id"), auth.get("application_credential_name")
    if not (cred_id or cred_name):
        return  # a password or token: Keystone's policy lets a user create their own
    user = conn.current_user_id
    if cred_id:
        own = find_credential(conn, user, cred_id)
    else:
        listed = read(lambda: list(conn.identity.application_credentials(user=user)), "list credentials")
        own = next((c for c in listed if c.name == cred_name), None)
    if own is None or getattr(own, "unrestricted", False):
        return
    raise CloudError(
        f"cloud {cloud!r} authenticates with the restricted application credential {own.name!r}, which "
        "cannot create the cluster's own credential. In Horizon (Identity → Application Credentials) "
        "create one with 'Unrestricted (dangerous)' ticked, keep it on this machine only, and put it in "
        "clouds.yaml: stackspray needs it to give every cluster a restricted, expiring credential of its "
        "own — the only one that ever reaches the cluster's nodes (nothing was created)"
    )


def find_credential(conn, user: str, cred_id: str):
    """The application credential with this id, or None when Keystone has none (retried reads)."""
    try:
        return read(lambda: conn.identity.get_application_credential(user, cred_id), "look up a credential")
    except NotFound:
        return None
