"""The agent's windows (autoscale_windows.py): a window fires at its local time in its own time
zone, on its days, only after it was made; the latest one that fired holds its group's limits
until the operator changes them; the loop's book notes such a change; and the planner's settings
follow."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from stackspray import autoscale_windows as aw
from stackspray.autoscale import settings_of
from stackspray.autoscale_agent import settings_data
from stackspray.cluster_state import Autoscale, AutoscaleGroup, AutoscaleWindow, autoscale_from_dict

NY = ZoneInfo("America/New_York")


def at(y, mo, d, h, mi, tz=NY) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


MADE = at(2026, 12, 7, 8, 0)  # a Monday, 08:00 in New York


def window(wid: str, when: str, days: str = "", lo=None, hi=None, tz="America/New_York") -> AutoscaleWindow:
    return AutoscaleWindow(wid, "workers", when, days, lo, hi, tz, MADE)


def auto(*windows: AutoscaleWindow) -> Autoscale:
    return Autoscale(groups={"workers": AutoscaleGroup(0, 4)}, windows=list(windows))


@pytest.mark.parametrize(
    "now,want",
    [
        (at(2026, 12, 7, 9, 44), None),  # not yet
        (at(2026, 12, 7, 9, 45), at(2026, 12, 7, 9, 45)),  # at its minute, New York time
        (at(2026, 12, 8, 9, 0), at(2026, 12, 7, 9, 45)),  # the next morning, before it fires again
        (at(2026, 12, 7, 14, 46, ZoneInfo("UTC")), at(2026, 12, 7, 9, 45)),  # the node's UTC clock
    ],
)
def test_a_daily_window_fires_at_its_local_time(now, want):
    assert aw.last_fire(window("w", "09:45"), now) == want


def test_a_time_before_the_window_was_made_does_not_count():
    early = window("w", "07:00")  # made at 08:00: today's 07:00 is before it
    assert aw.last_fire(early, at(2026, 12, 7, 12, 0)) is None
    assert aw.last_fire(early, at(2026, 12, 8, 7, 0)) == at(2026, 12, 8, 7, 0)


def test_days_pick_the_weekday():
    fri = window("w", "10:00", days="fri")
    assert aw.last_fire(fri, at(2026, 12, 10, 12, 0)) is None  # Thursday
    assert aw.last_fire(fri, at(2026, 12, 13, 12, 0)) == at(2026, 12, 11, 10, 0)  # Sunday: last Friday's


def test_the_latest_window_holds_until_the_operator_changes_the_limits():
    a = auto(window("up", "09:45", lo=3), window("down", "12:15", lo=0, hi=1))
    assert aw.effective(a, {}, at(2026, 12, 7, 9, 0)) == {}
    lo, hi, why = aw.effective(a, {}, at(2026, 12, 7, 10, 0))["workers"]
    assert (lo, hi) == (3, 4) and why.startswith("window up since 2026-12-07T14:45:00Z")
    assert aw.effective(a, {}, at(2026, 12, 7, 13, 0))["workers"][:2] == (0, 1)
    # The operator set new limits at 13:30: the 12:15 window no longer holds them…
    assert aw.effective(a, {"workers": at(2026, 12, 7, 13, 30)}, at(2026, 12, 7, 14, 0)) == {}
    # …until the next window fires.
    assert aw.effective(a, {"workers": at(2026, 12, 7, 13, 30)}, at(2026, 12, 8, 9, 50))["workers"][:2] == (
        3,
        4,
    )


def test_the_book_notes_a_change_of_limits_and_the_settings_follow_the_window():
    a = auto(window("up", "09:45", lo=3))
    book: dict = {}
    assert settings_of(a, book, at(2026, 12, 7, 9, 0)).groups["workers"].min == 0
    assert settings_of(a, book, at(2026, 12, 7, 9, 50)).groups["workers"].min == 3
    a.groups["workers"].min = 1  # autoscale.limits after the window fired
    assert settings_of(a, book, at(2026, 12, 7, 10, 0)).groups["workers"].min == 1
    assert book["windows_base_changed"] == {"workers": at(2026, 12, 7, 10, 0)}
    assert settings_of(a, None).groups["workers"].min == 1, "no book: the operator's limits"


def test_the_zone_of_this_machine(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    assert aw.local_zone() == "Europe/Paris"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert aw.local_zone() != "Not/AZone"


def test_windows_travel_to_the_agent_in_its_settings():
    """What the operator's machine writes into the settings ConfigMap is what the agent reads."""
    a = auto(window("up", "09:45", days="mon-fri", lo=3))
    data = settings_data("lab", a)
    back = autoscale_from_dict(json.loads(data["settings.json"]))
    assert back.windows == a.windows and back.groups == a.groups
