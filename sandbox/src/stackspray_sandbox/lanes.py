"""Lanes: more than one allocation in the one sandbox cloud, so test workers run side by side.

Lane 0 is the sandbox as `sandbox.up` makes it: the project `sandbox`, its member, its
clouds.yaml in the sandbox home. Lane N (N >= 1) is one more project made the same way — as a
second Jetstream2 allocation: its own member, application credentials, quotas, router quota 1
held by its own `auto_allocated_router`, DNS zone, clouds.yaml (`<home>/lanes/N/clouds.yaml`,
the same entry names) and ledger of the clusters its tests wrote specs for.

A process picks its lane with STACKSPRAY_SANDBOX_LANE (the test session sets it per pytest-xdist
worker). Everything that reads the lane — the clouds.yaml path, the ledger, fault injection,
the CIDRs of test specs — takes it from there, so a test is written once for every lane.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

LANE_ENV = "STACKSPRAY_SANDBOX_LANE"
BASE_PROJECT = "sandbox"
BASE_MEMBER = "sandbox-member"


def current() -> int | None:
    """This process's lane, or None when none was chosen (a serial run: lane 0, faults global)."""
    value = os.environ.get(LANE_ENV, "")
    if not value:
        return None
    lane = int(value)
    if not 0 <= lane < 100:
        raise ValueError(f"{LANE_ENV}={value}: a lane is a number from 0 to 99")
    return lane


def number() -> int:
    """This process's lane (0 when none was chosen)."""
    return current() or 0


def project(lane: int | None = None) -> str:
    """The lane's project name: `sandbox`, `sandbox-1`, …"""
    lane = number() if lane is None else lane
    return BASE_PROJECT if lane == 0 else f"{BASE_PROJECT}-{lane}"


def member(lane: int | None = None) -> str:
    """The lane's member user (the person of that allocation)."""
    lane = number() if lane is None else lane
    return BASE_MEMBER if lane == 0 else f"{BASE_MEMBER}-{lane}"


def zone(lane: int | None = None) -> str:
    """The lane's project zone, named as Jetstream2 names one: <project>.projects.jetstream-cloud.org."""
    return f"{project(lane)}.projects.jetstream-cloud.org."


def home(sandbox_home: Path, lane: int | None = None) -> Path:
    """Where the lane keeps its clouds.yaml, credentials and ledger."""
    lane = number() if lane is None else lane
    return sandbox_home if lane == 0 else sandbox_home / "lanes" / str(lane)


def cidr(base: str, lane: int | None = None) -> str:
    """`base` (a 10.X.0.0/N network, N >= 24) moved into the lane's own range, 10.X.<lane>.0/N: the
    node hosts' bridges share this machine's routing table, so two lanes must never use one
    network at the same time."""
    lane = number() if lane is None else lane
    net = ipaddress.ip_network(base)
    octets = str(net.network_address).split(".")
    if octets[0] != "10" or octets[2] != "0" or net.prefixlen < 24:
        raise ValueError(f"{base}: a lane moves only 10.X.0.0/24 (or smaller) networks")
    octets[2] = str(lane)
    return f"{'.'.join(octets)}/{net.prefixlen}"
