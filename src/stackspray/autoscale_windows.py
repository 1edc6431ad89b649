"""The autoscaler's windows when its loop runs on the cluster: `autoscale.schedule --at 09:45
--min 3` kept in the agent's settings (never as a timer on the operator's machine, which may be
asleep at 09:45), applied by the agent itself.

A window sets its group's min and/or max at its time, as a timer running `autoscale.limits`
would: its limits hold from that time until the next change — another window firing, or the
operator changing the group's limits (`autoscale.limits`, `autoscale.enable`). Pure functions of
the settings, the time, and when the agent last saw the operator's limits change; the time of
day is the operator's, in the time zone recorded with the window (the node runs in UTC).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .cluster_state import Autoscale, AutoscaleWindow
from .schedule import When, parse_when


def local_zone() -> str:
    """The IANA name of this machine's time zone ($TZ, else where /etc/localtime points — on Linux
    and macOS alike), else "UTC"."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and _zone(tz) is not None:
        return tz
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return "UTC"
    if "zoneinfo/" in target:
        name = target.split("zoneinfo/", 1)[1]
        if _zone(name) is not None:
            return name
    return "UTC"


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def when_of(w: AutoscaleWindow) -> When:
    return parse_when(w.at, w.days or None)


def last_fire(w: AutoscaleWindow, now: float) -> float | None:
    """When the window last fired at or before `now` (epoch seconds), counting only times after it
    was made; None if it has not fired since."""
    zone = _zone(w.tz) or ZoneInfo("UTC")
    when = when_of(w)
    local_now = dt.datetime.fromtimestamp(now, zone)
    day = local_now.replace(hour=when.hour, minute=when.minute, second=0, microsecond=0)
    for back in range(8):
        t = day - dt.timedelta(days=back)
        # Monday is 0 for datetime, Sunday 0 for cron's day numbers (When.days)
        if t <= local_now and (not when.days or (t.weekday() + 1) % 7 in when.days):
            fired = t.timestamp()
            return fired if fired > w.created_at else None
    return None


def effective(auto: Autoscale, base_changed: dict[str, float], now: float) -> dict[str, tuple[int, int, str]]:
    """Each windowed group's (min, max, why) now: the latest window that fired after the
    operator's last change of the group's limits (`base_changed`: when the agent saw it), else
    the group's own limits."""
    out: dict[str, tuple[int, int, str]] = {}
    for group, g in auto.groups.items():
        fired = [(t, w) for w in auto.windows if w.group == group and (t := last_fire(w, now)) is not None]
        fired = [(t, w) for t, w in fired if t > base_changed.get(group, 0.0)]
        if not fired:
            continue
        t, w = max(fired, key=lambda p: p[0])
        lo = w.min if w.min is not None else g.min
        hi = w.max if w.max is not None else g.max
        hi = max(hi, lo)
        stamp = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        out[group] = (lo, hi, f"window {w.id} since {stamp}")
    return out


def track_base(auto: Autoscale, book: dict, now: float) -> dict[str, float]:
    """When the operator's limits of each group last changed, as far as this loop has seen (kept
    in its book): a change after a window fired ends that window's hold."""
    seen = book.setdefault("windows_base", {})
    changed = book.setdefault("windows_base_changed", {})
    for group, g in auto.groups.items():
        limits = [g.min, g.max]
        if seen.get(group) != limits:
            if group in seen:
                changed[group] = now
            seen[group] = limits
    return {g: float(t) for g, t in changed.items()}
