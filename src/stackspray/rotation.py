"""`credentials.refresh`: rotate the cluster credential with no moment without a valid one.

The old credential stays valid until the very end, so at every step the cluster holds a valid
one — the old, or the new one that was verified before it was handed out:

1. threshold: more than `threshold_days` left (and not forced) → nothing to do;
2. create the new restricted credential; keep its secret at once (0600) and record the rotation
   as pending in the state, so an interrupted run can be finished or undone;
3. verify it: authenticate, one read call per service the cluster uses that the cloud has;
4. write it into the inventory's 0600 credential file (a later Kubespray run keeps it);
5. push it: the Secrets `kube-system/external-openstack-cloud-config` and `kube-system/cloud-config`
   (`cloud.conf`: only the application-credential-* lines change), then the node files on the
   first control-plane node (playbooks/cloud-credential.yml);
6. rollout-restart the cloud controller manager and the Cinder CSI controller and node plugin,
   and wait until they are Ready;
7. only then delete the old credential, and record the rotation (never the secret).

A failure in 3–6 puts the old credential back everywhere it had reached, deletes the new one and
raises RotationFailed (exit 1). If putting it back fails too: RotationNeedsAttention (exit 2),
and the pending rotation stays recorded; the next run finishes the rollback first.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import inventory, names, playbook
from .cloudops import read
from .connection import connect, connect_with_credential
from .credentials import DEFAULT_EXPIRY_DAYS, credential_name, find_credential, stored
from .errors import CloudError, NotFound, StackSprayError
from .inventory import Credential
from .kube import Kube, KubeWorkloads
from .paths import PLAYBOOKS
from .progress import Progress
from .state import ClusterDir

log = logging.getLogger(__name__)

SECRETS = ("external-openstack-cloud-config", "cloud-config")
SECRET_KEY = "cloud.conf"
WORKLOADS = (
    ("daemonsets", "openstack-cloud-controller-manager"),
    ("deployments", "csi-cinder-controllerplugin"),
    ("daemonsets", "csi-cinder-nodeplugin"),
)
DEFAULT_THRESHOLD_DAYS = 30
PENDING_FILE = "credential-pending.yml"
PREVIOUS_FILE = "credential-previous.yml"


class RotationFailed(StackSprayError):
    """The rotation failed and was rolled back: the cluster still uses its old, valid credential."""

    exit_code = 1


class RotationNeedsAttention(StackSprayError):
    """The rotation failed and could not be fully rolled back."""

    exit_code = 2


@dataclass
class RefreshResult:
    cluster: str
    outcome: str  # ok | rotated
    credential: dict
    days_left: float
    previous: dict | None = None
    warnings: list[str] = field(default_factory=list)
    recovered: str | None = None

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def with_credential(conf: str, cred: Credential) -> str:
    """cloud.conf with its application-credential-* lines set to `cred` (the rest untouched)."""
    out = conf
    for key, value in (("id", cred.id), ("name", cred.name), ("secret", cred.secret)):
        pattern = re.compile(rf"(?m)^application-credential-{key}\s*=.*$")
        if not pattern.search(out):
            raise StackSprayError(
                f"cloud.conf has no application-credential-{key} line: not written by Kubespray?"
            )
        out = pattern.sub(lambda _m, k=key, v=value: f'application-credential-{k}="{v}"', out)
    return out


def credential_in(conf: str) -> tuple[str | None, str | None]:
    """(id, secret) of the application credential in a cloud.conf."""

    def val(key: str) -> str | None:
        m = re.search(rf'(?m)^application-credential-{key}\s*=\s*"?([^"\n]*)"?\s*$', conf)
        return m[1] if m else None

    return val("id"), val("secret")


def days_left(expires_at: str | None, now: dt.datetime | None = None) -> float:
    if not expires_at:
        return float("inf")
    when = dt.datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - (now or dt.datetime.now(dt.UTC))).total_seconds() / 86400


def verify_credential(conn, cred: Credential, attempts: int = 4) -> list[str]:
    """Authenticate with `cred` and make one read call per service the cluster uses (the ones this
    cloud has). Returns the services checked; raises CloudError naming the one that failed."""
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
                if service in ("compute", "network") or c.has_service(service):
                    read(call, f"new credential: read {service}")
                    checked.append(service)
            return checked
        except Exception as exc:  # noqa: BLE001 (a fresh credential may take a moment to work)
            last = exc
            time.sleep(1.0 + attempt)
    raise CloudError(f"the new credential {cred.name} does not work: {last}")


class Rotation:
    def __init__(self, conn, cdir: ClusterDir, kube: Kube, say: Progress, rollout_timeout: float) -> None:
        self.conn, self.cdir, self.say = conn, cdir, say
        self.user = conn.current_user_id
        self.work = KubeWorkloads(kube)
        self.rollout_timeout = rollout_timeout
        self.hosts = cdir.path / inventory.HOSTS_FILE

    # -- the places a credential lives -------------------------------------------------------
    def keystone_has(self, cred_id: str) -> bool:
        return find_credential(self.conn, self.user, cred_id) is not None

    def delete(self, cred_id: str, name: str) -> None:
        try:
            read(
                lambda: self.conn.identity.delete_application_credential(self.user, cred_id),
                f"delete application credential {name}",
            )
        except NotFound:
            pass  # gone already
        self.say(f"deleted application credential {name}")

    def write_inventory(self, cred: Credential) -> None:
        inventory.write(self.cdir.path, [inventory.credential_file(self.cdir.name, cred)])

    def push_secrets(self, cred: Credential) -> None:
        for name in SECRETS:
            conf = self.work.secret_text(name, SECRET_KEY)
            self.work.set_secret_text(name, SECRET_KEY, with_credential(conf, cred))
        self.say(f"Secrets {', '.join('kube-system/' + s for s in SECRETS)} hold {cred.name}")

    def push_node_files(self) -> None:
        """The node files from the inventory's credential file (write_inventory first)."""
        playbook.run(
            "cloud-credential.yml",
            project_dir=PLAYBOOKS,
            inventory=self.hosts,
            cluster_dir=self.cdir.path,
            say=self.say,
            envvars=inventory.ssh_env(self.cdir.path),
        )

    def restart(self) -> None:
        for kind, name in WORKLOADS:
            self.work.restart(kind, name)
        for kind, name in WORKLOADS:
            self.work.wait_rollout(kind, name, self.rollout_timeout)
        self.say("cloud controller manager and Cinder CSI restarted and Ready")

    def secret_credential_ids(self) -> set[str | None]:
        return {credential_in(self.work.secret_text(n, SECRET_KEY))[0] for n in SECRETS}

    # -- putting the old one back ------------------------------------------------------------
    def roll_back(self, old: Credential, new: Credential | None, reached: set[str]) -> None:
        """Put `old` back wherever the new one reached (everywhere when unsure), delete `new`."""
        self.say(f"rolling back to {old.name}")
        self.write_inventory(old)
        if "secrets" in reached:
            self.push_secrets(old)
        if "nodes" in reached:
            self.push_node_files()
        if "restart" in reached:
            self.restart()
        if new is not None and self.keystone_has(new.id):
            self.delete(new.id, new.name)


def _cred_file(cdir: ClusterDir, name: str) -> Credential | None:
    text = cdir.read_secret(name)
    if not text:
        return None
    d = yaml.safe_load(text)
    return Credential(d["id"], d["name"], d["secret"])


def _keep(cdir: ClusterDir, name: str, cred: Credential) -> None:
    cdir.write_secret(name, yaml.safe_dump({"id": cred.id, "name": cred.name, "secret": cred.secret}))


def _operator_warning(conn, threshold: float) -> str | None:
    """Warn when the operator's own application credential expires within the threshold."""
    auth = conn.config.get_auth_args()
    cred_id = auth.get("application_credential_id")
    if not cred_id:
        return None
    try:
        own = find_credential(conn, conn.current_user_id, cred_id)
    except Exception as exc:  # noqa: BLE001 (a warning must not fail the command)
        log.warning("cannot read the operator credential's expiry: %s", exc)
        return None
    left = days_left(getattr(own, "expires_at", None)) if own else float("inf")
    if left <= threshold:
        return (
            f"your own (operator) application credential expires in {left:.0f} day(s): create a new one "
            "and update clouds.yaml, or stackspray cannot run (nor refresh this cluster's)"
        )
    return None


def refresh(
    cluster: str,
    *,
    force: bool = False,
    threshold_days: float = DEFAULT_THRESHOLD_DAYS,
    expiry_days: int = DEFAULT_EXPIRY_DAYS,
    rollout_timeout: float = 300.0,
    progress: Progress | None = None,
    root: Path | None = None,
    observer: Callable[[str], None] | None = None,
) -> RefreshResult:
    """Rotate the cluster credential when it is near expiry (or forced). See the module doc."""
    say = progress or Progress()
    seen = observer or (lambda step: None)
    cdir = ClusterDir(cluster, root)
    state = cdir.load()
    if not state.get("credential") or not state.get("kubeconfig"):
        raise StackSprayError(
            f"cluster {cluster!r} has no recorded credential or kubeconfig in {cdir.path}: "
            "run `invoke create-cluster` first"
        )
    with cdir.command("credentials.refresh"):
        conn = connect(state["cloud"])
        rot = Rotation(conn, cdir, Kube(state["kubeconfig"]), say, rollout_timeout)
        warnings = [w for w in [_operator_warning(conn, threshold_days)] if w]
        for w in warnings:
            say(f"WARNING: {w}")
        recovered = _recover(rot, cdir)
        state = cdir.load()
        current = state["credential"]
        old = stored(cdir)
        if old is None or old.id != current["id"]:
            raise RotationNeedsAttention(
                f"the credential file {cdir.path / inventory.SECRETS_FILE} does not hold the recorded "
                f"credential {current['name']}: run `invoke create-cluster` to rebuild it"
            )
        _delete_orphans(rot, cluster, keep={current["id"]})
        left = days_left(current.get("expires_at"))
        alive = rot.keystone_has(current["id"])
        if alive and left > threshold_days and not force:
            say(f"ok: credential {current['name']} expires in {left:.0f} days (threshold {threshold_days:g})")
            return RefreshResult(
                cluster, "ok", current, round(left, 1), warnings=warnings, recovered=recovered
            )
        if not alive:
            say(f"the recorded credential {current['name']} is gone from Keystone: rotating now")
        new_rec, new = _rotate(rot, cdir, cluster, old, alive, expiry_days, seen)
        state = cdir.load()
        state["credential"] = new_rec
        state.setdefault("credential_rotations", []).append(
            {
                "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "old_id": old.id,
                "new_id": new.id,
                "expires_at": new_rec["expires_at"],
            }
        )
        state.pop("rotation", None)
        cdir.save(state)
        for f in (PENDING_FILE, PREVIOUS_FILE):
            (cdir.secrets / f).unlink(missing_ok=True)
        say(f"rotated: {old.name} → {new.name} (expires {new_rec['expires_at']})")
        return RefreshResult(
            cluster,
            "rotated",
            new_rec,
            round(days_left(new_rec["expires_at"]), 1),
            previous={"id": old.id, "name": old.name},
            warnings=warnings,
            recovered=recovered,
        )


def _rotate(rot: Rotation, cdir: ClusterDir, cluster: str, old: Credential, old_alive: bool, days: int, seen):
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    name = credential_name(cluster)
    _keep(cdir, PREVIOUS_FILE, old)
    rec = {"id": None, "name": name, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
    state = cdir.load()
    state["rotation"] = {"old": {"id": old.id, "name": old.name}, "new": rec, "step": "create"}
    cdir.save(state)  # before the create: an interrupted run finds and deletes what it made
    try:
        made = read(
            lambda: rot.conn.identity.create_application_credential(
                user=rot.user,
                name=name,
                expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S"),
                unrestricted=False,
                description=names.credential_description(cluster),
            ),
            f"create application credential {name}",
            attempts=3,
        )
    except Exception as exc:
        state = cdir.load()
        state.pop("rotation", None)
        cdir.save(state)
        _delete_orphans(rot, cluster, keep={old.id})
        raise RotationFailed(
            f"creating the new credential failed: {exc}; the cluster keeps {old.name}"
        ) from exc
    new = Credential(made.id, name, made.secret)
    _keep(cdir, PENDING_FILE, new)
    rec["id"] = new.id
    state = cdir.load()
    state["rotation"]["new"] = rec
    cdir.save(state)
    rot.say(f"created {name} (restricted, expires {expires:%Y-%m-%d})")
    seen("created")
    reached: set[str] = set()
    step = "verify"
    try:
        checked = verify_credential(rot.conn, new)
        rot.say(f"verified {name}: authenticates, reads {', '.join(checked)}")
        seen("verified")
        step = "inventory"
        rot.write_inventory(new)
        seen("inventory")
        step = "Secrets"
        reached.add("secrets")
        rot.push_secrets(new)
        seen("secrets")
        step = "node files"
        reached.add("nodes")
        try:
            rot.push_node_files()
        except playbook.PlaybookFailed as exc:
            if all(f.task.startswith("Check ") for f in exc.failures):
                reached.discard("nodes")  # the playbook checks every file before writing any
            raise
        seen("nodes")
        step = "restart"
        reached.add("restart")
        rot.restart()
        seen("restart")
        step = "check"
        ids = rot.secret_credential_ids()
        if ids != {new.id}:
            raise StackSprayError(f"after the restart the Secrets hold {sorted(map(str, ids))}, not {new.id}")
    except Exception as exc:
        what = f"{step} failed: {exc}"
        rot.say(f"FAILED: {what}")
        try:
            rot.roll_back(old, new, reached | ({"secrets"} if step == "check" else set()))
        except Exception as again:
            raise RotationNeedsAttention(
                f"{what}; rolling back to {old.name} ALSO failed: {again}. The old credential is still "
                "valid in Keystone; re-run `invoke credentials.refresh` to finish the rollback"
            ) from exc
        state = cdir.load()
        state.pop("rotation", None)
        cdir.save(state)
        (cdir.secrets / PENDING_FILE).unlink(missing_ok=True)
        seen("rolled back")
        raise RotationFailed(
            f"{what}; rolled back: the cluster uses {old.name} again, {name} was deleted"
        ) from exc
    state = cdir.load()
    state["rotation"]["step"] = "delete old"
    cdir.save(state)
    if old_alive:
        rot.delete(old.id, old.name)
    seen("old deleted")
    return rec, new


def _recover(rot: Rotation, cdir: ClusterDir) -> str | None:
    """Finish or undo a rotation an earlier run left pending (it was killed or failed to roll back)."""
    state = cdir.load()
    pending = state.get("rotation")
    if not pending:
        return None
    old = _cred_file(cdir, PREVIOUS_FILE) or stored(cdir)
    new = _cred_file(cdir, PENDING_FILE)
    if old and rot.keystone_has(old.id):
        rot.say(f"an earlier rotation did not finish: going back to {old.name} first")
        rot.roll_back(old, new, {"secrets", "nodes", "restart"})
        state = cdir.load()
        state["credential"] = {**state["credential"], "id": old.id, "name": old.name}
        state.pop("rotation", None)
        cdir.save(state)
        (cdir.secrets / PENDING_FILE).unlink(missing_ok=True)
        return f"rolled back an unfinished rotation to {old.name}"
    if new is None:
        raise RotationNeedsAttention(
            "an earlier rotation did not finish, its old credential is gone from Keystone and the new one's "
            "secret was never kept: run `invoke create-cluster` to issue a new credential"
        )
    rot.say(f"an earlier rotation deleted the old credential: finishing it with {new.name}")
    rot.write_inventory(new)
    rot.push_secrets(new)
    rot.push_node_files()
    rot.restart()
    state = cdir.load()
    state["credential"] = pending["new"]
    state.pop("rotation", None)
    cdir.save(state)
    for f in (PENDING_FILE, PREVIOUS_FILE):
        (cdir.secrets / f).unlink(missing_ok=True)
    return f"finished an interrupted rotation to {new.name}"


def _delete_orphans(rot: Rotation, cluster: str, keep: set[str]) -> None:
    """Credentials named for this cluster that are not the recorded one (left by killed runs)."""
    for c in read(lambda: list(rot.conn.identity.application_credentials(user=rot.user)), "list credentials"):
        if names.is_cluster_credential(c, cluster) and c.id not in keep:
            rot.delete(c.id, c.name)
