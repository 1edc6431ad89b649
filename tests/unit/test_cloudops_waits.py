"""How the waits poll (cloudops.poll_delay, wait_until) and how independent calls overlap
(cloudops.concurrently), on a fake clock: the cadence is what decides how late a wait notices a
change, which the floors benchmark (benchmarks/floors.py) measures on the sandbox."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from stackspray import cloudops, scale
from stackspray.errors import Conflict


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(cloudops, "time", fake)
    return fake


@pytest.mark.parametrize(
    ("waited", "cap", "expected"),
    [
        (0.0, 5.0, 0.2),
        (1.0, 5.0, 0.2),
        (3.0, 5.0, 0.3),
        (30.0, 5.0, 3.0),
        (300.0, 5.0, 5.0),
        (30.0, 2.0, 2.0),
    ],
)
def test_poll_delay_is_a_tenth_of_the_wait_between_first_and_cap(waited, cap, expected):
    assert cloudops.poll_delay(waited, cap) == pytest.approx(expected)


@pytest.mark.parametrize("done_after", [0.5, 3.0, 20.0, 60.0, 240.0])
def test_wait_until_notices_a_change_at_most_a_tenth_late(clock, done_after):
    start = clock.now
    looks = []

    def check():
        looks.append(clock.now)
        return "done" if clock.now - start >= done_after else None

    assert cloudops.wait_until(check, "thing", timeout=900) == "done"
    noticed = clock.now - start
    assert done_after <= noticed <= done_after + max(cloudops.POLL_FIRST, 0.1 * done_after) + 1e-9
    # ... without looking all the time: every 0.2 s for 2 s (10 looks), then 10 % more each time
    # (ln(50 / 2) / ln(1.1), about 34 looks, until the 5 s cap), then one every 5 s.
    most = 10 + 35 + max(0.0, done_after - 50.0) / 5.0 + 2
    assert len(looks) <= most


def test_wait_until_gives_up_at_its_timeout_naming_what(clock):
    with pytest.raises(cloudops.WaitFailed, match="the widget: not done after 30s"):
        cloudops.wait_until(lambda: None, "the widget", timeout=30)
    assert clock.now - 1000.0 <= 30


def test_concurrently_runs_the_calls_at_once_and_returns_them_by_key():
    both = threading.Barrier(2, timeout=5)  # a serial run would wait here forever

    def meet(value):
        def call():
            both.wait()
            return value

        return call

    assert cloudops.concurrently({"a": meet(1), "b": meet(2)}) == {"a": 1, "b": 2}


def test_concurrently_raises_the_first_failure_after_every_call_finished():
    finished = []

    def fails():
        raise cloudops.CloudError("list ports: HTTP 500")

    def slow():
        threading.Event().wait(0.2)
        finished.append("slow")
        return 1

    with pytest.raises(cloudops.CloudError, match="list ports"):
        cloudops.concurrently({"ports": fails, "servers": slow})
    assert finished == ["slow"]


def test_an_unshelve_nova_gave_up_on_fails_at_once_not_after_the_server_timeout(monkeypatch):
    """Nova's conductor answers NoValidHost on an unshelve by putting the server back at rest,
    SHELVED_OFFLOADED with no task (no ERROR): the wait says so instead of waiting 15 minutes."""

    class Watch:
        def __init__(self, states):
            self.states = list(states)

        def get(self, server_id, max_age=0.15):
            status, task = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            return SimpleNamespace(status=status, task_state=task, fault=None)

    monkeypatch.setattr(scale, "GAVE_UP_AFTER", 0.3)
    abandoned = Watch([("SHELVED_OFFLOADED", "unshelving"), ("SHELVED_OFFLOADED", None)])
    with pytest.raises(scale.StackSprayError, match="Nova did not unshelve it"):
        scale.wait_status(abandoned, "id", ("ACTIVE",), "server w1")
    done = Watch([("SHELVED_OFFLOADED", "unshelving"), ("ACTIVE", "spawning"), ("ACTIVE", None)])
    scale.wait_status(done, "id", ("ACTIVE",), "server w1")
    shelving = Watch([("ACTIVE", "shelving"), ("SHELVED_OFFLOADED", None)])
    scale.wait_status(shelving, "id", ("SHELVED_OFFLOADED",), "server w1")


def _conflict() -> Exception:
    from openstack import exceptions as os_exc

    response = SimpleNamespace(status_code=409, headers={}, text="Port p is still in use.", json=lambda: {})
    return os_exc.ConflictException(message="Port p is still in use.", response=response)


def test_a_conflicting_create_takes_what_an_earlier_request_made_meanwhile(clock):
    """A killed run's create finishes after the re-run looked: the create is refused (409) and
    the look-up after it finds the server by its marks — used, not an error, not made twice."""
    made = SimpleNamespace(name="c-workers-1")
    looks = iter([made])

    def create():
        raise _conflict()

    found, created = cloudops.ensure(lambda: next(looks), create, "server c-workers-1", known_absent=True)
    assert found is made and created is False


def test_a_conflict_nothing_explains_is_the_error_it_was(clock):
    def create():
        raise _conflict()

    with pytest.raises(Conflict, match="still in use"):
        cloudops.ensure(lambda: None, create, "server c-workers-1", known_absent=True)
