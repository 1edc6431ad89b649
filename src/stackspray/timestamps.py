"""Time stamps as Kubernetes and our state files write them (RFC 3339, UTC "Z")."""

from __future__ import annotations

import calendar
import time


def epoch(stamp: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 UTC stamp ("2026-12-07T11:22:33Z"; fractional
    seconds are ignored), or None for no stamp or one that is not of that form."""
    if not stamp:
        return None
    try:
        return float(calendar.timegm(time.strptime(str(stamp)[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None
