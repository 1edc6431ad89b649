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
   first control-plane node (playbooks/cloud-credential.yml); the autoscaler's agent, when it runs
   there, reads them each round: its next round must report the new credential;
6. rollout-restart the cloud controller manager and the Cinder CSI controller and node plugin,
   and wait until they are Ready;
7. only then delete the old credential, and record the rotation (never the secret).

Steps 3–6 are one table, `STEPS`: each names the place it puts a credential and whether a
rollback puts the old one back there. The forward run, the rollback and the recovery of a killed
run all walk that table, so they cannot disagree on what a rotation touches.

A failure in 3–6 puts the old credential back everywhere the new one reached (in the table's
order, the restart last), deletes the new one and raises RotationFailed (exit 1). If putting it
back fails too: RotationNeedsAttention (exit 2), and the pending rotation stays recorded; the
next run — of credentials.refresh, create-cluster or add-nodes — settles it first. An old
credential that has expired (or is gone) is never put back: the run then goes forward.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from . import autoscale_agent, inventory, names, playbook
from . import schedule as sched
from .cloudapi import OpenStackAPI
from .cloudops import read
from .cluster_state import Credential as StateCredential
from .cluster_state import CredentialRef, CredentialRotation
from .cluster_state import Rotation as PendingRotation
from .connection import connect
from .credentials import (
    DEFAULT_EXPIRY_DAYS,
    create_credential,
    credential_name,
    find_credential,
    stored,
    verify_credential,
)
from .errors import NotFound, StackSprayError
from .inventory import Credential
from .kube import Kube, KubeWorkloads
from .observe import owned_servers
from .paths import PLAYBOOKS
from .progress import Progress
from .state import ClusterDir
from .timestamps import epoch

log = logging.getLogger(__name__)

SECRETS = ("external-openstack-cloud-config", "cloud-config")
SECRET_KEY = "cloud.conf"
WORKLOADS = (
    ("daemonsets", "openstack-cloud-controller-manager"),
    ("deployments", "csi-cinder-controllerplugin"),
    ("daemonsets", "csi-cinder-nodeplugin"),
)
DEFAULT_THRESHOLD_DAYS = 30
AGENT_WAIT = 60.0  # seconds for the autoscaler agent to report a round with the new credential
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
    outcome: str  # ok | rotated | deferred (hibernated: the rotation happens at wake)
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


def _expired(expires_at) -> bool:
    return days_left(str(expires_at) if expires_at else None) <= 0


class NotReached(Exception):
    """A step failed before it changed anything (e.g. the node play's checks): nothing to undo."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Places:
    """Where a cluster credential lives, and Keystone: what the rotation table acts on. The real
    cluster's; a unit test gives a fake with the same methods."""

    def __init__(self, conn, cdir: ClusterDir, kube: Kube, say: Progress, rollout_timeout: float) -> None:
        self.conn, self.cdir, self.say = conn, cdir, say
        self.user = conn.current_user_id
        self.kube = kube
        self.work = KubeWorkloads(kube)
        self.rollout_timeout = rollout_timeout
        self.hosts = cdir.path / inventory.HOSTS_FILE

    # -- Keystone ----------------------------------------------------------------------------
    def exists(self, cred_id: str) -> bool:
        return find_credential(self.conn, self.user, cred_id) is not None

    def alive(self, cred_id: str) -> bool:
        """In Keystone and not expired: a credential that can still authenticate."""
        found = find_credential(self.conn, self.user, cred_id)
        return found is not None and not _expired(getattr(found, "expires_at", None))

    def create(self, cluster: str, name: str, expires: dt.datetime) -> Credential:
        rules = self.access_rules
        made = read(
            lambda: create_credential(self.conn, self.user, cluster, name, expires, rules),
            f"create application credential {name}",
            attempts=3,
        )
        return Credential(made.id, name, made.secret)

    @property
    def access_rules(self) -> bool:
        """Whether new credentials get access rules (the spec's wish, kept in the state)."""
        return self.cdir.load().credential_access_rules

    def delete(self, cred_id: str, name: str) -> None:
        try:
            read(
                lambda: self.conn.identity.delete_application_credential(self.user, cred_id),
                f"delete application credential {name}",
            )
        except NotFound:
            pass  # gone already
        self.say(f"deleted application credential {name}")

    def cluster_credentials(self, cluster: str) -> list:
        listed = read(
            lambda: list(self.conn.identity.application_credentials(user=self.user)), "list credentials"
        )
        return [c for c in listed if names.is_cluster_credential(c, cluster)]

    # -- the places, in the table's order ------------------------------------------------------
    def verify(self, cred: Credential) -> None:
        checked = verify_credential(self.conn, cred, access_rules=self.access_rules)
        self.say(f"verified {cred.name}: authenticates, reads {', '.join(checked)}")

    def write_inventory(self, cred: Credential) -> None:
        inventory.write(self.cdir.path, [inventory.credential_file(self.cdir.name, cred)])

    def push_secrets(self, cred: Credential) -> None:
        for name in SECRETS:
            conf = self.work.secret_text(name, SECRET_KEY)
            self.work.set_secret_text(name, SECRET_KEY, with_credential(conf, cred))
        self.say(f"Secrets {', '.join('kube-system/' + s for s in SECRETS)} hold {cred.name}")

    def push_node_files(self, cred: Credential) -> None:
        """The node files, from the inventory's credential file (written by the step before)."""
        try:
            playbook.run(
                "cloud-credential.yml",
                project_dir=PLAYBOOKS,
                inventory=self.hosts,
                cluster_dir=self.cdir.path,
                say=self.say,
                envvars=inventory.ssh_env(self.cdir.path),
            )
        except playbook.PlaybookFailed as exc:
            if all(f.task.startswith("Check ") for f in exc.failures):
                raise NotReached(exc) from exc  # the playbook checks every file before writing any
            raise

    def agent_reads(self, cred: Credential) -> None:
        """The autoscaler's agent on the cluster (when there is one) reads the node file each
        round: wait until it reports a round made with `cred`. A silent agent is not waited for
        (it reads the file when it runs again); one that fails with `cred` fails the step."""
        state = self.cdir.load()
        if not (state.autoscale and state.autoscale.service == "cluster"):
            return
        started = time.time()
        deadline = time.monotonic() + AGENT_WAIT
        while True:
            st = autoscale_agent.read_status(self.kube)
            updated = (epoch(st.updated) or 0.0) if st else 0.0
            if st is None or started - updated > 3 * autoscale_agent.INTERVAL:
                self.say(
                    f"the autoscaler agent is silent: it reads {cred.name} from the node when it runs again"
                )
                return
            if st.credential_id == cred.id and updated >= started - 2:
                if st.error:
                    raise StackSprayError(f"the autoscaler agent's round with {cred.name} failed: {st.error}")
                self.say(f"the autoscaler agent on {st.host} works with {cred.name}")
                return
            if time.monotonic() > deadline:
                raise StackSprayError(
                    f"the autoscaler agent did not report a round with {cred.name} within {AGENT_WAIT:.0f} s "
                    f"(it reports {st.credential_id}; last error: {st.error or 'none'})"
                )
            time.sleep(2.0)

    def restart(self, cred: Credential) -> None:
        # What the cloud says is down, not only what Kubernetes has noticed yet (see kube.py).
        servers = owned_servers(OpenStackAPI(self.conn), self.cdir.name)
        down = frozenset(s.name for s in servers if s.status != "ACTIVE")
        away: set[str] = set()
        for kind, name in WORKLOADS:
            away.update(self.work.restart(kind, name, down))
        for kind, name in WORKLOADS:
            self.work.wait_rollout(kind, name, self.rollout_timeout, down)
        self.say("cloud controller manager and Cinder CSI restarted and Ready")
        if away:
            self.say(
                f"{len(away)} NotReady (shelved) node(s) start the new pods with {cred.name} when they come "
                f"back: {', '.join(sorted(away))}"
            )

    def check(self, cred: Credential) -> None:
        ids = {credential_in(self.work.secret_text(n, SECRET_KEY))[0] for n in SECRETS}
        if ids != {cred.id}:
            raise StackSprayError(
                f"after the restart the Secrets hold {sorted(map(str, ids))}, not {cred.id}"
            )


@dataclass(frozen=True)
class Step:
    """One step of a rotation: `Places.<method>(credential)` puts the credential in a place."""

    name: str  # as recorded in the state's pending rotation
    method: str
    label: str  # in messages: "<label> failed: ..."
    undo: bool  # a rollback puts the old credential back here
    event: str | None  # what the observer is told when it is done


STEPS: tuple[Step, ...] = (
    Step("verify", "verify", "verify", undo=False, event="verified"),
    Step("inventory", "write_inventory", "inventory", undo=True, event="inventory"),
    Step("secrets", "push_secrets", "Secrets", undo=True, event="secrets"),
    Step("nodes", "push_node_files", "node files", undo=True, event="nodes"),
    Step("agent", "agent_reads", "autoscaler agent", undo=True, event="agent"),
    Step("restart", "restart", "restart", undo=True, event="restart"),
    Step("check", "check", "check", undo=False, event=None),
)
DELETE_OLD = "delete old"


def _cred_file(cdir: ClusterDir, name: str, expect_id: str | None) -> Credential | None:
    """A kept credential (secrets/<name>), only if it is the one the pending rotation names: a
    file a killed run left from an earlier rotation must never be taken for this one."""
    text = cdir.read_secret(name)
    if not text:
        return None
    try:
        d = yaml.safe_load(text)
        cred = Credential(d["id"], d["name"], d["secret"])
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    return cred if expect_id and cred.id == expect_id else None


def _keep(cdir: ClusterDir, name: str, cred: Credential) -> None:
    cdir.write_secret(name, yaml.safe_dump({"id": cred.id, "name": cred.name, "secret": cred.secret}))


def _forget_files(cdir: ClusterDir) -> None:
    for f in (PENDING_FILE, PREVIOUS_FILE):
        (cdir.secrets / f).unlink(missing_ok=True)


def _journal(cdir: ClusterDir, step: str | None, **fields) -> None:
    """Record how far the pending rotation got (None: no rotation pending any more)."""
    state = cdir.load()
    if step is None:
        state.rotation = None
    else:
        if state.rotation is None:
            state.rotation = fields.pop("rotation")
        for k, v in fields.items():
            setattr(state.rotation, k, v)
        state.rotation.step = step
    cdir.save(state)


def roll_back(places, old: Credential, new: Credential | None, reached: set[str], new_id: str | None = None):
    """Put `old` back in every place of the table that the new one reached (in order: the restart
    comes last), then delete the new credential from Keystone."""
    places.say(f"rolling back to {old.name}")
    for step in STEPS:
        if step.undo and step.name in reached:
            getattr(places, step.method)(old)
    cid = new.id if new else new_id
    if cid and places.exists(cid):
        places.delete(cid, new.name if new else cid)


def _finish(cdir: ClusterDir, old_id: str, new: Credential, expires_at: str | None) -> None:
    state = cdir.load()
    state.credential = StateCredential(
        new.id, new.name, expires_at, access_rules=state.credential_access_rules
    )
    state.credential_rotations.append(
        CredentialRotation(
            at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            old_id=old_id,
            new_id=new.id,
            expires_at=expires_at,
        )
    )
    state.rotation = None
    cdir.save(state)
    _forget_files(cdir)


def rotate(places, cdir: ClusterDir, cluster: str, old: Credential, old_alive: bool, days: int, seen):
    """Walk the table forward with a new credential; on a failure roll back (or, when the old
    credential is dead, keep going forward on the next run). Returns the new credential's record."""
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    name = credential_name(cluster)
    expires_at = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    (cdir.secrets / PENDING_FILE).unlink(missing_ok=True)  # never let a stale one be taken for this run's
    _keep(cdir, PREVIOUS_FILE, old)
    pending = PendingRotation(CredentialRef(old.id, old.name), StateCredential(None, name, expires_at))
    _journal(cdir, "create", rotation=pending)  # before the create: a killed run finds what it made
    try:
        new = places.create(cluster, name, expires)
    except Exception as exc:
        _journal(cdir, None)
        for c in places.cluster_credentials(cluster):
            if c.id != old.id:
                places.delete(c.id, c.name)
        raise RotationFailed(
            f"creating the new credential failed: {exc}; the cluster keeps {old.name}"
        ) from exc
    _keep(cdir, PENDING_FILE, new)
    _journal(cdir, "created", new=StateCredential(new.id, name, expires_at))
    places.say(f"created {name} (restricted, expires {expires:%Y-%m-%d})")
    seen("created")
    reached: set[str] = set()
    for step in STEPS:
        _journal(cdir, step.name)
        reached.add(step.name)
        try:
            getattr(places, step.method)(new)
        except Exception as exc:
            if isinstance(exc, NotReached):
                reached.discard(step.name)
                exc = exc.cause
            _failed(places, cdir, old, old_alive, new, reached, step, exc, seen)
        if step.event:
            seen(step.event)
    _journal(cdir, DELETE_OLD)
    if old_alive or places.exists(old.id):
        places.delete(old.id, old.name)
    seen("old deleted")
    return StateCredential(new.id, name, expires_at), new


def _failed(places, cdir, old, old_alive, new, reached, step: Step, exc: BaseException, seen):
    what = f"{step.label} failed: {exc}"
    places.say(f"FAILED: {what}")
    if not old_alive:
        if step.name == "verify":
            places.delete(new.id, new.name)
            _journal(cdir, None)
            (cdir.secrets / PENDING_FILE).unlink(missing_ok=True)
            raise RotationFailed(
                f"{what}; the cluster's credential {old.name} has expired or is gone, and the new one "
                f"does not work either (deleted): check the operator credential's roles, then re-run"
            ) from exc
        raise RotationNeedsAttention(
            f"{what}; the cluster's old credential {old.name} has expired or is gone, so it is not put "
            f"back: re-run `invoke credentials.refresh --cluster {cdir.name}` to finish with {new.name}"
        ) from exc
    try:
        roll_back(places, old, new, reached)
    except Exception as again:
        raise RotationNeedsAttention(
            f"{what}; rolling back to {old.name} ALSO failed: {again}. The old credential is still "
            "valid in Keystone; re-run `invoke credentials.refresh` to finish the rollback"
        ) from exc
    _journal(cdir, None)
    (cdir.secrets / PENDING_FILE).unlink(missing_ok=True)
    seen("rolled back")
    raise RotationFailed(
        f"{what}; rolled back: the cluster uses {old.name} again, {new.name} was deleted"
    ) from exc


def recover(places, cdir: ClusterDir) -> str | None:
    """Settle a rotation an earlier run left pending (killed, or its rollback failed), walking
    the same table: back to the old credential while it is alive, else forward to the new one."""
    pending = cdir.load().rotation
    if pending is None:
        return None
    old = _cred_file(cdir, PREVIOUS_FILE, pending.old.id)
    if old is None:
        have = stored(cdir)
        old = have if have and have.id == pending.old.id else None
    new = _cred_file(cdir, PENDING_FILE, pending.new.id)
    if pending.step == DELETE_OLD and new is not None:
        places.say(f"an earlier rotation put {new.name} everywhere: finishing it")
        if places.exists(pending.old.id):
            places.delete(pending.old.id, pending.old.name)
        _finish(cdir, pending.old.id, new, pending.new.expires_at)
        return f"finished an interrupted rotation to {new.name}"
    if old is not None and places.alive(old.id):
        places.say(f"an earlier rotation did not finish: going back to {old.name} first")
        roll_back(places, old, new, {s.name for s in STEPS}, new_id=pending.new.id)
        state = cdir.load()
        if state.credential is not None:
            state.credential.id, state.credential.name = old.id, old.name
        state.rotation = None
        cdir.save(state)
        _forget_files(cdir)
        return f"rolled back an unfinished rotation to {old.name}"
    if new is None or not places.alive(new.id):
        raise RotationNeedsAttention(
            "an earlier rotation did not finish, its old credential has expired or is gone from Keystone and "
            "the new one's secret was never kept (or it is gone too): run `invoke create-cluster` with the "
            "cluster's spec to issue a new credential"
        )
    places.say(f"an earlier rotation deleted or outlived the old credential: finishing it with {new.name}")
    for step in STEPS:
        if step.name != "verify":
            getattr(places, step.method)(new)
    if places.exists(pending.old.id):
        places.delete(pending.old.id, pending.old.name)
    _finish(cdir, pending.old.id, new, pending.new.expires_at)
    return f"finished an interrupted rotation to {new.name}"


def recover_pending(conn, cdir: ClusterDir, say: Progress, rollout_timeout: float = 300.0) -> str | None:
    """For create-cluster and add-nodes: settle a pending rotation before they touch the
    credential (they would otherwise issue a third one and delete the one the Secrets hold)."""
    state = cdir.load()
    if state.rotation is None:
        return None
    if not state.kubeconfig:
        raise RotationNeedsAttention(
            f"cluster {cdir.name} has an unfinished credential rotation but no kubeconfig to finish it with"
        )
    return recover(Places(conn, cdir, Kube(state.kubeconfig), say, rollout_timeout), cdir)


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


def deferred(
    cluster: str, state, threshold_days: float, say: Progress, now: dt.datetime | None = None
) -> RefreshResult:
    """credentials.refresh on a hibernated cluster: nothing on it uses the credential while every
    server is shelved, and a rotation needs the nodes and the API, so it is left to `wake` (which
    rotates an expired or nearly expired credential before any worker starts). Warns when the
    credential will expire before the next scheduled wake, or when no wake is scheduled."""
    cred = state.credential
    now = now or dt.datetime.now()  # local, naive: as the schedules' times
    left = days_left(cred.expires_at, now.astimezone(dt.UTC))
    warnings = []
    wake_at = sched.next_run(cluster, "wake-", now)
    if cred.expires_at and wake_at is not None:
        if now + dt.timedelta(days=left) < wake_at:
            warnings.append(
                f"{cred.name} expires {cred.expires_at}, before the next scheduled wake "
                f"({wake_at:%Y-%m-%d %H:%M} local): that wake will rotate it first, with the operator's "
                "credential — keep that one valid"
            )
    elif cred.expires_at and left <= threshold_days:
        warnings.append(
            f"{cred.name} has {left:.0f} days left and no wake is scheduled: the next "
            f"`invoke wake --cluster {cluster}` rotates it first"
        )
    say(
        f"cluster {cluster!r} is {state.hibernation.phase}: the credential is not rotated now "
        "(nothing on the cluster runs); `wake` rotates it when it is due"
    )
    for w in warnings:
        say(f"WARNING: {w}")
    return RefreshResult(cluster, "deferred", asdict(cred), round(left, 1), warnings=warnings)


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
    if not state.credential or not state.kubeconfig:
        raise StackSprayError(
            f"cluster {cluster!r} has no recorded credential or kubeconfig in {cdir.path}: "
            "run `invoke create-cluster` first"
        )
    if state.hibernation is not None and state.hibernation.phase != "waking":
        return deferred(cluster, state, threshold_days, say)
    with cdir.command("credentials.refresh"):
        conn = connect(state.cloud)
        places = Places(conn, cdir, Kube(state.kubeconfig), say, rollout_timeout)
        warnings = [w for w in [_operator_warning(conn, threshold_days)] if w]
        for w in warnings:
            say(f"WARNING: {w}")
        recovered = recover(places, cdir)
        current = cdir.load().credential
        old = stored(cdir)
        if old is None or old.id != current.id:
            raise RotationNeedsAttention(
                f"the credential file {cdir.path / inventory.SECRETS_FILE} does not hold the recorded "
                f"credential {current.name}: run `invoke create-cluster` to rebuild it"
            )
        for c in places.cluster_credentials(cluster):  # left by killed runs
            if c.id != current.id:
                places.delete(c.id, c.name)
        left = days_left(current.expires_at)
        alive = places.alive(current.id)
        record = asdict(current)
        if alive and left > threshold_days and not force:
            say(f"credential {current.name}: {left:.0f} days left, above the threshold of {threshold_days:g}")
            return RefreshResult(
                cluster, "ok", record, round(left, 1), warnings=warnings, recovered=recovered
            )
        if not alive:
            say(f"the recorded credential {current.name} has expired or is gone from Keystone: rotating now")
        new_rec, new = rotate(places, cdir, cluster, old, alive, expiry_days, seen)
        _finish(cdir, old.id, new, new_rec.expires_at)
        say(f"{old.name} is deleted; the cluster now uses {new.name}")
        return RefreshResult(
            cluster,
            "rotated",
            asdict(new_rec),
            round(days_left(new_rec.expires_at), 1),
            previous={"id": old.id, "name": old.name},
            warnings=warnings,
            recovered=recovered,
        )
