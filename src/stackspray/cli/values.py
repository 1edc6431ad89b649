"""Flag values checked as the user typed them, each error naming its flag."""

from __future__ import annotations

from ..errors import StackSprayError
from ..playbook import check_forks
from ..spec import check_cluster_name


def whole(value, flag: str) -> int:
    """A whole-number flag, or a clear error naming it."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StackSprayError(f"--{flag}: expected a whole number, got {value!r}") from None


def number(value, flag: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StackSprayError(f"--{flag}: expected a number, got {value!r}") from None


def forks_flag(forks) -> int | None:
    """--forks: 0 (the default) is as wide as the inventory."""
    return check_forks(whole(forks, "forks") or None)


def cluster_name(name: str) -> str:
    """--cluster, validated like a spec's `name` (it becomes a folder, unit and crontab name)."""
    return check_cluster_name(name, "--cluster")
