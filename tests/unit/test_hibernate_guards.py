"""What every other command does with a hibernated cluster: scale, backup, heal, verify and
certs.renew refuse with the reason and the way out; an autoscale round is paused, not failed;
credentials.refresh defers the rotation to the wake and warns when the credential would expire
before the next scheduled wake. And the schedule arithmetic that warning rests on."""

from __future__ import annotations

import datetime as dt

import pytest

from stackspray import rotation
from stackspray import schedule as sched
from stackspray.autoscale import run_round
from stackspray.autoscale_setup import set_limits, status
from stackspray.certs_renew import renew
from stackspray.cluster_state import (
    Autoscale,
    AutoscaleGroup,
    ClusterState,
    Credential,
    Hibernation,
    Upgrade,
)
from stackspray.etcd_backup import backup
from stackspray.heal import heal
from stackspray.hibernate import hibernate
from stackspray.hibernate_plan import HibernateError
from stackspray.progress import quiet
from stackspray.scale import Request, scale_cluster
from stackspray.state import ClusterDir
from stackspray.verify import verify_cluster

MONDAY_0800 = dt.datetime(2026, 12, 7, 8, 0)  # 2026-12-07 is a Monday


def _hibernated(tmp_path, phase: str = "hibernated", expires: str = "2026-12-30T00:00:00Z") -> ClusterDir:
    cdir = ClusterDir("lab", tmp_path)
    cdir.save(
        ClusterState(
            cluster="lab",
            cloud="nowhere",  # nothing here may reach a cloud: every guard acts before that
            kubeconfig=str(tmp_path / "kubeconfig"),
            credential=Credential(id="c1", name="stackspray-lab-1", expires_at=expires),
            autoscale=Autoscale(groups={"workers": AutoscaleGroup(max=2)}),
            hibernation=Hibernation(phase, "2026-12-04T19:00:00Z", ["lab-workers-1"]),
        )
    )
    return cdir


@pytest.mark.parametrize(
    "command, call",
    [
        ("scale", lambda root: scale_cluster("lab", Request(workers=1), root=root, progress=quiet())),
        ("backup", lambda root: backup("lab", root=root, progress=quiet())),
        ("heal", lambda root: heal("lab", root=root, progress=quiet())),
        ("verify", lambda root: verify_cluster("lab", root=root)),
        ("certs.renew", lambda root: renew("lab", root=root, progress=quiet())),
    ],
)
@pytest.mark.parametrize("phase", ["hibernated", "hibernating"])
def test_commands_that_need_the_cluster_running_refuse_with_the_way_out(tmp_path, command, call, phase):
    _hibernated(tmp_path, phase)
    with pytest.raises(HibernateError) as refused:
        call(tmp_path)
    way_out = "invoke wake --cluster lab" if phase == "hibernated" else "invoke hibernate --cluster lab"
    assert phase in str(refused.value) and way_out in str(refused.value)


def test_an_autoscale_round_is_paused_not_failed(tmp_path):
    _hibernated(tmp_path)
    said: list[str] = []
    done = run_round("lab", root=tmp_path, progress=lambda m: said.append(m))
    assert done["decisions"] == [] and "hibernated" in done["paused"]
    assert any("paused" in m for m in said)


def test_refresh_defers_to_the_wake_and_changes_nothing(tmp_path, monkeypatch):
    cdir = _hibernated(tmp_path)
    before = (cdir.path / "state.json").read_text()
    monkeypatch.setattr(sched, "next_run", lambda cluster, prefix, now=None: None)
    done = rotation.refresh("lab", root=tmp_path, progress=quiet())
    assert done.outcome == "deferred" and done.credential["id"] == "c1"
    assert (cdir.path / "state.json").read_text() == before


@pytest.mark.parametrize(
    "expires, wake_at, warned",
    [
        ("2026-12-09T00:00:00Z", MONDAY_0800 + dt.timedelta(days=7), "before the next scheduled wake"),
        ("2027-02-01T00:00:00Z", MONDAY_0800 + dt.timedelta(days=7), None),
        ("2026-12-09T00:00:00Z", None, "no wake is scheduled"),
        ("2027-02-01T00:00:00Z", None, None),
    ],
)
def test_refresh_warns_when_the_credential_ends_before_the_next_wake(
    tmp_path, monkeypatch, expires, wake_at, warned
):
    cdir = _hibernated(tmp_path, expires=expires)
    monkeypatch.setattr(sched, "next_run", lambda cluster, prefix, now=None: wake_at)
    done = rotation.deferred("lab", cdir.load(), 7.0, quiet(), now=MONDAY_0800)
    if warned:
        assert len(done.warnings) == 1 and warned in done.warnings[0]
    else:
        assert done.warnings == []


def test_a_refresh_during_the_wake_is_not_deferred(tmp_path):
    _hibernated(tmp_path, "waking")
    with pytest.raises(Exception) as raised:  # it goes on to the cloud, which does not exist here
        rotation.refresh("lab", root=tmp_path, progress=quiet())
    assert "deferred" not in str(raised.value)


@pytest.mark.parametrize(
    "at, days, now, expected",
    [
        ("07:00", "mon", MONDAY_0800, dt.datetime(2026, 12, 14, 7, 0)),
        ("07:00", "mon", MONDAY_0800 - dt.timedelta(hours=2), dt.datetime(2026, 12, 7, 7, 0)),
        ("19:00", "fri", MONDAY_0800, dt.datetime(2026, 12, 11, 19, 0)),
        ("09:30", None, MONDAY_0800, dt.datetime(2026, 12, 7, 9, 30)),
        ("07:59", None, MONDAY_0800, dt.datetime(2026, 12, 8, 7, 59)),
        ("00:00", "sat,sun", MONDAY_0800, dt.datetime(2026, 12, 12, 0, 0)),
    ],
)
def test_the_next_run_of_a_schedule_read_back_from_either_backend(at, days, now, expected):
    when = sched.parse_when(at, days)
    assert when.next_after(now) == expected
    for listed in (when.on_calendar(), when.cron()):
        assert sched.when_of_listing(listed) == when
    assert sched.when_of_listing("@reboot") is None


def test_autoscale_settings_refuse_and_status_says_paused(tmp_path):
    _hibernated(tmp_path)
    with pytest.raises(HibernateError):
        set_limits("lab", group="workers", min_=1, max_=2, root=tmp_path)
    st = status("lab", root=tmp_path).status
    assert st["warning"].startswith("paused: ") and "hibernated" in st["warning"]


def test_an_unfinished_upgrade_keeps_hibernate_out(tmp_path):
    cdir = ClusterDir("lab", tmp_path)
    cdir.save(ClusterState(cluster="lab", cloud="nowhere", kubeconfig="k", upgrade=Upgrade("1.35.4")))
    with pytest.raises(HibernateError, match="upgrade to Kubernetes 1.35.4 is unfinished"):
        hibernate("lab", root=tmp_path, progress=quiet())
