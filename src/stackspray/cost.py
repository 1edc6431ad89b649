"""Service Units: what a cluster costs per hour now, and per month at that rate.

A flavor's SU/hour is its vCPUs x its family's rate (SU per vCPU-hour) x a state factor. The
rates come from one table with its source (Jetstream2's instance-flavors page), overridden by a
user-level file (`~/.config/stackspray/su-rates.yaml`) and then by the spec's `su_rates:`; every
rate carries where it came from, and status, scale and the autoscaler name it. Charged by
instance state: ACTIVE 100 %, SUSPENDED 75 %, STOPPED/SHUTOFF 50 %, SHELVED 0 %
(docs.jetstream-cloud.org/general/access/).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import StackSprayError

HOURS_PER_MONTH = 730
PAGE = "docs.jetstream-cloud.org/general/instance-flavors (read 2026-12-06)"
STATE_FACTOR = {
    "ACTIVE": 1.0,
    "SUSPENDED": 0.75,
    "SHUTOFF": 0.5,
    "STOPPED": 0.5,
    "SHELVED": 0.0,
    "SHELVED_OFFLOADED": 0.0,
}
SHELVED = ("SHELVED_OFFLOADED", "SHELVED")  # Nova's shelved statuses: 0 SU
FAMILY = re.compile(r"[a-z][a-z0-9_-]{0,31}")
USER_FILE = "su-rates.yaml"


@dataclass(frozen=True)
class Rate:
    """SU per vCPU-hour of a flavor family, and where that figure comes from."""

    su_per_vcpu_hour: float
    source: str


BUILT_IN: dict[str, Rate] = {
    "m3": Rate(1.0, f"Jetstream2 CPU, {PAGE}"),
    "r3": Rate(2.0, f"Jetstream2 Large Memory, {PAGE}"),
    # The page's versions disagree: older ones (and the vmsizes page) said 4 SU per vCPU-hour for
    # GPU instances, the current one says 2. Follow your allocation's statement with `su_rates`.
    "g3": Rate(2.0, f"Jetstream2 GPU, {PAGE}; older versions of the page said 4"),
}
UNKNOWN = Rate(1.0, "no rate known for this flavor family: 1 SU per vCPU-hour assumed (set su_rates)")


class RatesError(StackSprayError):
    """A rates file or table that cannot be used; the message names the file and the key."""


def family(flavor: str | None) -> str:
    """`g3` of `g3.small`; the whole name when it has no dot."""
    return (flavor or "").split(".", 1)[0]


@dataclass(frozen=True)
class Rates:
    """The SU rate of every flavor family this run knows, each with its source."""

    table: dict[str, Rate] = dataclasses.field(default_factory=lambda: dict(BUILT_IN))

    def rate(self, flavor: str | None) -> Rate:
        return self.table.get(family(flavor), UNKNOWN)

    def over(self, overrides: dict[str, Rate]) -> Rates:
        """These rates with `overrides` taking the place of their families' rates."""
        return Rates({**self.table, **overrides})

    def overridden(self) -> dict[str, Rate]:
        """The rates that differ from the built-in table (what a user or a spec set)."""
        return {f: r for f, r in self.table.items() if BUILT_IN.get(f) != r}

    def used(self, flavors: list[str | None]) -> dict[str, dict]:
        """{family: {su_per_vcpu_hour, source}} for the families of these flavors."""
        return {
            family(f): dataclasses.asdict(self.rate(f)) for f in sorted({f for f in flavors if f}, key=str)
        }


def parse_table(data: object, where: str, source: str | None) -> dict[str, Rate]:
    """{family: rate} from a document: `{g3: 2}`, or `{g3: {su_per_vcpu_hour: 2, source: …}}` when
    `source` is None (a table written by stackspray). RatesError names `where` and the key."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RatesError(f"{where}: must be a mapping of flavor family to SU per vCPU-hour, e.g. {{g3: 2}}")
    out = {}
    for key, value in data.items():
        if not isinstance(key, str) or not FAMILY.fullmatch(key):
            raise RatesError(
                f"{where}.{key}: not a flavor family (the part of a flavor's name before the dot, e.g. g3)"
            )
        given, src = value, source
        if source is None and isinstance(value, dict):
            given, src = value.get("su_per_vcpu_hour"), str(value.get("source") or where)
        if isinstance(given, bool) or not isinstance(given, int | float) or given < 0 or given > 1000:
            raise RatesError(
                f"{where}.{key}: SU per vCPU-hour must be a number from 0 to 1000, got {given!r}"
            )
        out[key] = Rate(float(given), src or where)
    return out


def user_file() -> Path:
    """`$XDG_CONFIG_HOME/stackspray/su-rates.yaml` (default `~/.config/…`)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stackspray" / USER_FILE


def load_user_rates(path: Path | None = None) -> dict[str, Rate]:
    """The user's rates file, if there is one; RatesError naming it when it cannot be used."""
    path = path or user_file()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RatesError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RatesError(f"{path}: not YAML ({exc})") from None
    return parse_table(data, str(path), source=f"your rates file {path}")


def rates_for(recorded: dict | None = None) -> Rates:
    """The rates a command uses: the built-in table, then the user's file, then what the cluster's
    state recorded (its spec's `su_rates`, or the table an agent was shipped)."""
    rates = Rates().over(load_user_rates())
    return rates.over(parse_table(recorded or {}, "state su_rates", source=None))


def shipped(recorded: dict | None = None) -> dict[str, dict]:
    """What of `rates_for(recorded)` differs from the built-in table, as a document: what the
    autoscaler agent on the cluster (no rates file there) is given with its settings."""
    return {f: dataclasses.asdict(r) for f, r in rates_for(recorded).overridden().items()}


def su_per_hour(flavor: str | None, vcpus: int, status: str, rates: Rates | None = None) -> float:
    """SU/hour of one instance: vCPUs x family rate x state factor (unknown family: 1)."""
    rate = (rates or Rates()).rate(flavor).su_per_vcpu_hour
    # Instances being built or rebooted are charged as running; ERROR instances as running too
    # (Jetstream2 charges until they are deleted).
    factor = STATE_FACTOR.get(status.upper(), 1.0)
    return vcpus * rate * factor


def su_if_active(flavor: str | None, vcpus: int, rates: Rates | None = None) -> float:
    return su_per_hour(flavor, vcpus, "ACTIVE", rates)
