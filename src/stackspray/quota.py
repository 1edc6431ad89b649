"""Quota preflight: refuse before creating anything when the cluster would not fit."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import QuotaError


@dataclass(frozen=True)
class QuotaRow:
    resource: str
    need: int
    used: int
    limit: int  # -1: unlimited

    @property
    def fits(self) -> bool:
        return self.limit < 0 or self.used + self.need <= self.limit


def table(rows: list[QuotaRow]) -> str:
    head = f"  {'resource':<16}{'need':>8}{'used':>8}{'limit':>8}  "
    lines = [head, "  " + "-" * (len(head) - 2)]
    for r in rows:
        limit = "∞" if r.limit < 0 else str(r.limit)
        mark = "ok" if r.fits else "EXCEEDED"
        lines.append(f"  {r.resource:<16}{r.need:>8}{r.used:>8}{limit:>8}  {mark}")
    return "\n".join(lines)


def check(rows: list[QuotaRow]) -> None:
    """Raise QuotaError with the need/used/limit table when any row does not fit."""
    if any(not r.fits for r in rows):
        raise QuotaError(table(rows) + "\nAsk for more quota, or lower counts or flavors in the spec.")
