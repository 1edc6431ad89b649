"""The rotation table (stackspray.rotation.STEPS) walked forward, back and in recovery, against a
fake of the places a credential lives (Keystone, the inventory file, the Secrets, the node files,
the running workloads). The cluster directory, its state and its secret files are real.

Each case checks the invariant the command promises: afterwards exactly one credential is alive
in Keystone, and every place holds it."""

from __future__ import annotations

import datetime as dt

import pytest

from stackspray import names
from stackspray.cluster_state import ClusterState
from stackspray.cluster_state import Credential as StateCredential
from stackspray.credentials import stored
from stackspray.inventory import Credential, credential_file, write
from stackspray.progress import quiet
from stackspray.rotation import (
    PENDING_FILE,
    STEPS,
    RotationFailed,
    RotationNeedsAttention,
    recover,
    rotate,
)
from stackspray.state import ClusterDir

CLUSTER = "lab"
PLACES = ("inventory", "secrets", "nodes", "agent", "running")


class Killed(BaseException):
    """A SIGKILL: nothing after it runs (not an Exception, so no rollback catches it)."""


class FakeKeystone:
    def __init__(self) -> None:
        self.creds: dict[str, dict] = {}
        self.n = 0

    def add(self, name: str, expired: bool = False) -> Credential:
        self.n += 1
        cid = f"id{self.n}"
        when = dt.datetime.now(dt.UTC) + dt.timedelta(days=-1 if expired else 90)
        self.creds[cid] = {"name": name, "expires_at": when.isoformat(), "secret": f"s{self.n}"}
        return Credential(cid, name, f"s{self.n}")


class FakePlaces:
    """What rotation's Places does, in memory; `fail`/`kill` make one method fail or 'kill' the run."""

    def __init__(self, cdir: ClusterDir, keystone: FakeKeystone) -> None:
        self.cdir, self.ks = cdir, keystone
        self.say = quiet()
        self.where: dict[str, str | None] = dict.fromkeys(PLACES)
        self.fail: str | None = None
        self.kill: str | None = None
        self.calls: list[tuple[str, str]] = []

    def _hit(self, method: str, cred: Credential) -> None:
        self.calls.append((method, cred.id))
        if self.kill == method:
            raise Killed(method)
        if self.fail == method:
            self.fail = None
            raise RuntimeError(f"{method} broke")

    def exists(self, cid: str) -> bool:
        return cid in self.ks.creds

    def alive(self, cid: str) -> bool:
        c = self.ks.creds.get(cid)
        return c is not None and dt.datetime.fromisoformat(c["expires_at"]) > dt.datetime.now(dt.UTC)

    def create(self, cluster: str, name: str, expires) -> Credential:
        self._hit("create", Credential("-", name, "-"))
        return self.ks.add(name)

    def delete(self, cid: str, name: str) -> None:
        self.ks.creds.pop(cid, None)

    def cluster_credentials(self, cluster: str) -> list:
        class C:
            def __init__(self, cid, d):
                self.id, self.name = cid, d["name"]
                self.description = names.credential_description(cluster)

        return [C(cid, d) for cid, d in self.ks.creds.items()]

    def verify(self, cred: Credential) -> None:
        self._hit("verify", cred)
        if not self.alive(cred.id):
            raise RuntimeError("does not authenticate")

    def write_inventory(self, cred: Credential) -> None:
        self._hit("write_inventory", cred)
        write(self.cdir.path, [credential_file(CLUSTER, cred)])
        self.where["inventory"] = cred.id

    def push_secrets(self, cred: Credential) -> None:
        self._hit("push_secrets", cred)
        self.where["secrets"] = cred.id

    def push_node_files(self, cred: Credential) -> None:
        self._hit("push_node_files", cred)
        self.where["nodes"] = self.where["inventory"]  # the play copies the inventory's file

    def agent_reads(self, cred: Credential) -> None:
        self._hit("agent_reads", cred)
        self.where["agent"] = self.where["nodes"]  # the agent reads the node file

    def restart(self, cred: Credential) -> None:
        self._hit("restart", cred)
        self.where["running"] = self.where["secrets"]

    def check(self, cred: Credential) -> None:
        self._hit("check", cred)
        if self.where["secrets"] != cred.id:
            raise RuntimeError("Secrets disagree")


@pytest.fixture
def world(tmp_path):
    cdir = ClusterDir(CLUSTER, tmp_path)
    ks = FakeKeystone()
    old = ks.add(names.credential(CLUSTER, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    cdir.save(
        ClusterState(
            cluster=CLUSTER,
            cloud="c",
            kubeconfig="k",
            credential=StateCredential(old.id, old.name, ks.creds[old.id]["expires_at"]),
        )
    )
    places = FakePlaces(cdir, ks)
    write(cdir.path, [credential_file(CLUSTER, old)])
    places.where = dict.fromkeys(PLACES, old.id)
    return cdir, ks, places, old


def assert_one_valid_everywhere(cdir: ClusterDir, ks: FakeKeystone, places: FakePlaces) -> str:
    alive = [cid for cid in ks.creds if places.alive(cid)]
    assert len(alive) == 1, f"exactly one live credential, got {alive}"
    assert set(places.where.values()) == {alive[0]}, places.where
    assert stored(cdir).id == alive[0], "the inventory's file holds it"
    assert cdir.load().rotation is None, "no rotation left pending"
    return alive[0]


METHODS = [s.method for s in STEPS]


@pytest.mark.parametrize("method", METHODS)
def test_a_failure_at_each_step_rolls_back_to_the_old_credential(world, method):
    cdir, ks, places, old = world
    places.fail = method
    with pytest.raises(RotationFailed, match="rolled back"):
        rotate(places, cdir, CLUSTER, old, True, 90, lambda e: None)
    assert assert_one_valid_everywhere(cdir, ks, places) == old.id
    assert not (cdir.secrets / PENDING_FILE).exists()


def test_the_rollback_puts_back_only_where_the_new_one_reached_and_restarts_last(world):
    cdir, ks, places, old = world
    places.fail = "push_node_files"
    with pytest.raises(RotationFailed):
        rotate(places, cdir, CLUSTER, old, True, 90, lambda e: None)
    back = [m for m, cid in places.calls if cid == old.id]
    assert back == ["write_inventory", "push_secrets", "push_node_files"], "nothing past the failed step"
    places.calls.clear()
    places.fail = "check"
    with pytest.raises(RotationFailed):
        rotate(places, cdir, CLUSTER, old, True, 90, lambda e: None)
    back = [m for m, cid in places.calls if cid == old.id]
    assert back == ["write_inventory", "push_secrets", "push_node_files", "agent_reads", "restart"], back


def test_a_forward_run_tells_every_step_and_leaves_only_the_new_one(world):
    cdir, ks, places, old = world
    events: list[str] = []
    rec, new = rotate(places, cdir, CLUSTER, old, True, 90, events.append)
    assert events == [
        "created",
        "verified",
        "inventory",
        "secrets",
        "nodes",
        "agent",
        "restart",
        "old deleted",
    ]
    assert set(places.where.values()) == {new.id} and list(ks.creds) == [new.id]


@pytest.mark.parametrize("method", ["create", *METHODS])
def test_killed_at_each_step_then_recovered_leaves_one_valid_credential(world, method):
    cdir, ks, places, old = world
    places.kill = method
    with pytest.raises(Killed):
        rotate(places, cdir, CLUSTER, old, True, 90, lambda e: None)
    places.kill = None
    outcome = recover(places, cdir)
    assert outcome and "rolled back" in outcome
    assert assert_one_valid_everywhere(cdir, ks, places) == old.id


def test_killed_while_deleting_the_old_one_is_finished_forward(world):
    cdir, ks, places, old = world
    places.delete = lambda cid, name: (_ for _ in ()).throw(Killed("delete"))  # killed right there
    with pytest.raises(Killed):
        rotate(places, cdir, CLUSTER, old, True, 90, lambda e: None)
    del places.delete  # back to the method
    outcome = recover(places, cdir)
    assert "finished" in outcome
    new_id = assert_one_valid_everywhere(cdir, ks, places)
    assert new_id != old.id and cdir.load().credential.id == new_id


def test_an_expired_old_credential_is_never_put_back(world):
    cdir, ks, places, old = world
    ks.creds[old.id]["expires_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    places.fail = "restart"
    with pytest.raises(RotationNeedsAttention, match="not put back"):
        rotate(places, cdir, CLUSTER, old, False, 90, lambda e: None)
    assert all(v != old.id for k, v in places.where.items() if k != "running"), places.where
    # The next run goes forward with the new one.
    assert "finished" in recover(places, cdir)
    new_id = assert_one_valid_everywhere(cdir, ks, places)
    assert new_id != old.id


def test_a_stale_pending_file_is_never_taken_for_the_rotation_in_progress(world):
    cdir, ks, places, old = world
    # An earlier killed run left a pending file for a credential that no longer exists.
    stale = Credential("stale-id", names.credential(CLUSTER), "stale-secret")
    cdir.write_secret(PENDING_FILE, f"id: {stale.id}\nname: {stale.name}\nsecret: {stale.secret}\n")
    places.kill = "push_secrets"
    with pytest.raises(Killed):
        rotate(places, cdir, CLUSTER, old, True, 90, lambda e: None)
    places.kill = None
    # Now the pending rotation's new credential is the one on disk; make the file stale again.
    cdir.write_secret(PENDING_FILE, f"id: {stale.id}\nname: {stale.name}\nsecret: {stale.secret}\n")
    recover(places, cdir)
    assert assert_one_valid_everywhere(cdir, ks, places) == old.id, "the current credential survives"
