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
    """An OpenStack operation failed (after retries where it is transient); the message names
    the resource. `status` is the HTTP status when the cloud answered with one."""

    status: int | None = None

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(CloudError):
    """The cloud refused the request as malformed or not allowed in this state (HTTP 400)."""

    status = 400


class Forbidden(CloudError):
    """The credential may not do this (HTTP 401/403): a policy or an access rule refused it."""

    status = 403


class NotFound(CloudError):
    """The resource does not exist (HTTP 404)."""

    status = 404


class Conflict(CloudError):
    """The resource is in the way (HTTP 409), or more than one resource matches one of our names
    and marks: never pick one of them silently."""

    status = 409


class Transient(CloudError):
    """A call whose answer did not arrive (a connection lost, a 5xx, a 429): the cloud may or may
    not have carried it out. A read is retried; a create is looked for before it is repeated."""


def cloud_error_for(status: int | None, message: str) -> CloudError:
    """The typed CloudError for an HTTP status."""
    cls = {400: BadRequest, 401: Forbidden, 403: Forbidden, 404: NotFound, 409: Conflict}.get(
        status or 0, CloudError
    )
    return cls(message, status)


class ClusterNotFound(StackSprayError):
    """No state and no owned resources exist for the named cluster."""
