"""The cluster credential: the only OpenStack credential that ever reaches the cluster.

stackspray authenticates with the operator's credential (a clouds.yaml entry) and creates, for
each cluster, a restricted application credential (it cannot create other credentials) named
`<cluster>-k8s-<UTC time>` with an expiry (90 days by default). Its id, name and expiry are
recorded in the cluster's state; its secret only in the inventory's 0600 credential file.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import yaml
from openstack import exceptions as openstack_exceptions

from . import names
from .access_rules import SERVICES, rules_for
from .cloudops import ensure, read
from .cluster_state import Credential as StateCredential
from .connection import connect_with_credential
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
            has_rules = bool(getattr(found, "access_rules", None))
            if has_rules != state.credential_access_rules:
                want = "with" if state.credential_access_rules else "without"
                say(
                    f"WARNING: the cluster credential {have.name} is {kind(has_rules)}; the spec asks "
                    f"for one {want} access rules: run `invoke credentials.refresh --cluster {cluster} "
                    "--force` to rotate to one"
                )
            return have
        say(f"the recorded cluster credential {have.name} is gone from Keystone: creating a new one")
    name = credential_name(cluster)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)

    def find():
        return next((c for c in conn.identity.application_credentials(user=user) if c.name == name), None)

    rules = state.credential_access_rules
    cred, created = ensure(
        find,
        lambda: create_credential(conn, user, cluster, name, expires, rules),
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
    state.credential = StateCredential(
        cred.id, name, expires.strftime("%Y-%m-%dT%H:%M:%SZ"), access_rules=rules
    )
    cdir.save(state)
    say(f"created cluster credential {name} ({kind(rules)}, expires {expires:%Y-%m-%d})")
    for orphan in read(lambda: list(conn.identity.application_credentials(user=user)), "list credentials"):
        # The previously recorded one may still be in the running cluster: only unrecorded ones go.
        if names.is_cluster_credential(orphan, cluster) and orphan.id not in (cred.id, recorded_id):
            read(lambda o=orphan: conn.identity.delete_application_credential(user, o.id), "delete orphan")
            say(f"deleted unrecorded cluster credential {orphan.name}")
    return credential


def kind(access_rules: bool) -> str:
    return "restricted, with access rules" if access_rules else "restricted"


def service_types(conn) -> set[str]:
    """The service types in the operator's catalog."""
    return {entry.get("type") for entry in (conn.service_catalog or []) if entry.get("type")}


def create_credential(conn, user: str, cluster: str, name: str, expires: dt.datetime, access_rules: bool):
    """Create a cluster credential in Keystone: restricted (it cannot make credentials), expiring,
    marked with the cluster's description, and with access rules when asked for."""
    extra = {}
    if access_rules:
        extra["access_rules"] = rules_for(service_types(conn))
    return conn.identity.create_application_credential(
        user=user,
        name=name,
        expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S"),
        unrestricted=False,
        description=names.credential_description(cluster),
        **extra,
    )


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


def verify_credential(conn, cred: Credential, attempts: int = 4, access_rules: bool = False) -> list[str]:
    """Authenticate with `cred` and make one read call per service the cluster uses (the ones this
    cloud has). With access rules, only the services the rules allow are read, and a call outside
    them (listing images) must be refused. Returns what was checked; raises CloudError naming the
    call that failed."""
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            # Only the new credential: never clouds.yaml or OS_* (OS_CLOUD's auth would be mixed in).
            c = connect_with_credential(conn, cred.id, cred.secret)
            checked = []
            reads = {
                "compute": lambda c=c: next(iter(c.compute.servers(limit=1)), None),
                "network": lambda c=c: next(iter(c.network.networks(limit=1)), None),
                "block-storage": lambda c=c: next(iter(c.block_storage.volumes(limit=1)), None),
                "shared-file-system": lambda c=c: next(iter(c.shared_file_system.shares(limit=1)), None),
            }
            for service, call in reads.items():
                if access_rules and service not in SERVICES:
                    continue
                if service in ("compute", "network") or c.has_service(service):
                    read(call, f"new credential: read {service}")
                    checked.append(service)
            if access_rules:
                checked.append(_outside_the_rules_is_refused(c, cred))
            return checked
        except AccessRulesNotEnforced:
            raise
        except Exception as exc:  # noqa: BLE001 (a fresh credential may take a moment to work)
            last = exc
            time.sleep(1.0 + attempt)
    hint = ""
    if access_rules:
        hint = (
            " (it has access rules: a cloud whose services do not check them — keystonemiddleware "
            "without [keystone_authtoken] service_type — refuses such a credential everywhere; remove "
            "credential.access_rules from the spec there)"
        )
    raise CloudError(f"the new credential {cred.name} does not work: {last}{hint}")


class AccessRulesNotEnforced(CloudError):
    """The credential's access rules are not checked: a call outside them succeeded."""


def _outside_the_rules_is_refused(c, cred: Credential) -> str:
    try:
        next(iter(c.image.images(limit=1)), None)
    except openstack_exceptions.HttpException as exc:
        if exc.status_code in (401, 403):
            return "image refused (access rules hold)"
        raise
    raise AccessRulesNotEnforced(
        f"the credential {cred.name} has access rules, yet it could list images, which they do not "
        "allow: this cloud does not enforce access rules, so they protect nothing here"
    )


def prepare_cluster_credential(conn, spec, cdir: ClusterDir, say) -> Credential:
    """The cluster credential as the spec wants it (`credential.access_rules` kept in the state for
    later rotations). A new credential with access rules is verified at once — before any VM when
    create-cluster asks — and, when the cloud refuses it or does not enforce the rules, deleted and
    refused, naming the field."""
    state = cdir.load()
    if state.credential_access_rules != spec.credential.access_rules:
        state.credential_access_rules = spec.credential.access_rules
        cdir.save(state)
    had = state.credential.id if state.credential else None
    cred = ensure_cluster_credential(conn, spec.name, cdir, say)
    if not spec.credential.access_rules or cred.id == had:
        return cred
    try:
        checked = verify_credential(conn, cred, access_rules=True)
    except CloudError as exc:
        read(lambda: conn.identity.delete_application_credential(conn.current_user_id, cred.id), "delete")
        (cdir.path / SECRETS_FILE).unlink(missing_ok=True)
        state = cdir.load()
        state.credential = None
        cdir.save(state)
        raise CloudError(
            f"credential.access_rules: {exc}. The credential was deleted; set credential.access_rules "
            "to false (or remove it) to give the cluster a credential without access rules"
        ) from exc
    say(f"verified {cred.name}: reads {', '.join(checked)}")
    return cred
