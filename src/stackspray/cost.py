"""Jetstream2 Service Units: what a cluster costs per hour now, and per month at that rate.

1 SU = 1 vCPU-hour for m3 flavors; large-memory r3 x2; GPU g3 x4. Charged by instance state:
ACTIVE 100 %, SUSPENDED 75 %, STOPPED/SHUTOFF 50 %, SHELVED 0 % (shared/reference/jetstream2.md).
The figures are defaults; other clouds may charge otherwise.
"""

from __future__ import annotations

HOURS_PER_MONTH = 730
FAMILY_MULTIPLIER = {"m3": 1.0, "r3": 2.0, "g3": 4.0}
STATE_FACTOR = {
    "ACTIVE": 1.0,
    "SUSPENDED": 0.75,
    "SHUTOFF": 0.5,
    "STOPPED": 0.5,
    "SHELVED": 0.0,
    "SHELVED_OFFLOADED": 0.0,
}


SHELVED = ("SHELVED_OFFLOADED", "SHELVED")  # Nova's shelved statuses: 0 SU


def su_per_hour(flavor: str | None, vcpus: int, status: str) -> float:
    """SU/hour of one instance: vCPUs x family multiplier x state factor (unknown family: x1)."""
    family = (flavor or "").split(".", 1)[0]
    multiplier = FAMILY_MULTIPLIER.get(family, 1.0)
    # Instances being built or rebooted are charged as running; ERROR instances as running too
    # (Jetstream2 charges until they are deleted).
    factor = STATE_FACTOR.get(status.upper(), 1.0)
    return vcpus * multiplier * factor


def su_if_active(flavor: str | None, vcpus: int) -> float:
    return su_per_hour(flavor, vcpus, "ACTIVE")
