"""stackspray's exceptions: a small tree, each message written for the person running the command."""

from __future__ import annotations


class StackSprayError(Exception):
    """Base of every error stackspray reports to its user (exit code 1 unless said otherwise)."""

    exit_code = 1


class SpecError(StackSprayError):
    """The cluster spec is invalid; `problems` lists each one as "field: what is wrong — fix"."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: the cluster spec has {len(problems)} problem(s):\n{lines}")


class QuotaError(StackSprayError):
    """The spec needs more than the project's quota leaves."""

    def __init__(self, table: str) -> None:
        super().__init__(f"the cluster does not fit in the project's quota:\n{table}")


class LockedError(StackSprayError):
    """Another stackspray command holds this cluster's lock."""


class CloudError(StackSprayError):
    """An OpenStack operation failed after retries; the message names the resource."""


class ClusterNotFound(StackSprayError):
    """No state and no owned resources exist for the named cluster."""
