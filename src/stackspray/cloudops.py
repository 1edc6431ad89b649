"""Calling the cloud safely: retries with backoff, idempotent creates, waits with backoff.

- `read(fn, what)`: a read is safe to repeat, so 5xx, 429 (honouring Retry-After) and broken
  connections are retried with exponential backoff.
- `ensure(find, create, what)`: the create pattern of cluster-api-provider-openstack's
  getOrCreateServer — find (by name and ownership tag) first; create only when nothing is found;
  after a failed or interrupted create, *find again* before creating again, because the create
  may have succeeded on the server side. A create is never blindly repeated.
- `wait_until(check, what)`: poll with backoff until `check()` returns a value or a failure;
  `wait_gone(find, what)` until a look-up finds nothing. The backoff is proportional
  (`poll_delay`): the next look comes a tenth of the time waited so far later (at least 0.2 s,
  at most the cap), so a wait notices a change at most about 10 % after it happened — a
  geometric backoff (×1.5 per look) can notice it up to 50 % late.

Failures are raised as typed errors (errors.NotFound, Conflict, BadRequest, Forbidden, or
CloudError) carrying the HTTP status, so callers never match message strings.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as os_exc

from .errors import CloudError, Transient, cloud_error_for

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUS = {429, 500, 502, 503, 504}
ATTEMPTS = 6
BASE_DELAY = 0.5
MAX_DELAY = 15.0
# How many cloud calls a command makes at once, and how long a server may take to change state.
PARALLEL = 8
SERVER_TIMEOUT = 900.0
# Poll cadence (poll_delay): the first looks this often, then a tenth of the time waited so far.
POLL_FIRST = 0.2
POLL_FRACTION = 0.1


def poll_delay(waited: float, cap: float = 5.0, first: float = POLL_FIRST) -> float:
    """Seconds until the next look of a wait that has waited `waited` seconds: a tenth of that
    (noticing a change at most ~10 % late), at least `first`, at most `cap`. A 2-second wait
    looks about 10 times, a 5-minute one about 90 times (against a listing shared by every node
    being waited on, see scale.ServerWatch)."""
    return min(cap, max(first, POLL_FRACTION * waited))


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    return int(code) if code else None


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, Transient | ks_exc.ConnectionError | ks_exc.RetriableConnectionFailure):
        return True
    if isinstance(exc, os_exc.HttpException | ks_exc.HttpError):
        return _status(exc) in RETRY_STATUS
    return False


def retry_after(exc: BaseException) -> float | None:
    resp = getattr(exc, "response", None)
    value = getattr(resp, "headers", {}).get("Retry-After") if resp is not None else None
    try:
        return min(float(value), 120.0) if value else None
    except ValueError:
        return None


def backoff(attempt: int) -> float:
    return min(MAX_DELAY, BASE_DELAY * 2**attempt) * (0.75 + random.random() / 2)


def typed(exc: BaseException, what: str) -> CloudError:
    """The typed error for a failed cloud call (an SDK or keystoneauth exception), naming `what`."""
    if isinstance(exc, CloudError):
        return exc
    return cloud_error_for(_status(exc), f"{what}: {_describe(exc)}")


def retry_or_raise(exc: BaseException, attempt: int, what: str, doing: str) -> None:
    """After a failed call: raise its typed error unless it is transient, else wait (Retry-After
    or backoff) so the caller can try again."""
    if not retryable(exc):
        raise typed(exc, what) from exc
    delay = retry_after(exc) or backoff(attempt)
    log.warning("%s: %s (%s); %s in %.1fs", what, doing, _describe(exc), "trying again", delay)
    time.sleep(delay)


def read(fn: Callable[[], T], what: str, attempts: int = ATTEMPTS) -> T:
    """Run a read call, retrying transient failures; raise CloudError naming `what`."""
    last: BaseException | None = None
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 (classified in retry_or_raise)
            last = exc
            retry_or_raise(exc, attempt, what, "call failed")
    raise cloud_error_for(
        _status(last), f"{what}: still failing after {attempts} attempts: {_describe(last)}"
    )


def concurrently(calls: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Make independent calls at once (up to PARALLEL in flight); their results by key. Every
    call finishes before the first failure (in the dict's order) is raised."""
    if not calls:
        return {}
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(calls))) as pool:
        futures = {key: pool.submit(fn) for key, fn in calls.items()}
    return {key: f.result() for key, f in futures.items()}


def flavors_by_name(api) -> dict:
    """Every flavor the project may use (private ones included), by name (`api`: a CloudAPI)."""
    return {f.name: f for f in read(lambda: api.list("flavor"), "list flavors")}


def ensure(
    find: Callable[[], T | None],
    create: Callable[[], T],
    what: str,
    attempts: int = ATTEMPTS,
    known_absent: bool = False,
) -> tuple[T, bool]:
    """Return (resource, created). Find first; create only if absent; re-find after a failed create.

    `known_absent`: the caller has just observed that it does not exist (a plan's create, made
    under the cluster's lock), so the first look-up is skipped — on a 20-server create those
    look-ups are as many API calls as the creates. The look-up after a failed create stays.

    A create refused with 409 looks once more before the refusal counts: an interrupted run's
    own request may have been carried out after this run looked (Nova: "Port … is still in
    use" — by the server that request made). What the look-up finds by our marks is ours."""
    last: BaseException | None = None
    for attempt in range(attempts):
        if not (known_absent and attempt == 0):
            found = read(find, f"{what} (look-up)")
            if found is not None:
                return found, False
        try:
            return create(), True
        except Exception as exc:  # noqa: BLE001 (classified in retry_or_raise)
            last = exc
            if _status(exc) == 409:
                found = read(find, f"{what} (look-up after a conflict)")
                if found is not None:
                    log.info("%s: made meanwhile by an earlier request (%s); using it", what, _describe(exc))
                    return found, False
            retry_or_raise(exc, attempt, what, "create failed, will look for it again")
    raise cloud_error_for(
        _status(last), f"{what}: create still failing after {attempts} attempts: {_describe(last)}"
    )


def act(fn: Callable[[], T], what: str, attempts: int = ATTEMPTS) -> T:
    """An idempotent change (delete, associate, add rule): safe to repeat, retried like a read.

    A 404 on a delete means it is already gone and is not an error (callers pass ignore_missing).
    """
    return read(fn, what, attempts)


def wait_gone(find: Callable[[], object | None], what: str, timeout: float = 600.0) -> None:
    """Poll a look-up (retried like a read) until it finds nothing: a delete has completed."""
    wait_until(lambda: True if read(find, f"{what} (look-up)") is None else None, what, timeout=timeout)


class WaitFailed(CloudError):
    pass


def wait_until(
    check: Callable[[], T | None],
    what: str,
    timeout: float = 600.0,
    first: float = POLL_FIRST,
    cap: float = 5.0,
) -> T:
    """Poll `check` with proportional backoff (`poll_delay`) until it returns non-None; it may raise."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        result = check()
        if result is not None:
            return result
        delay = poll_delay(time.monotonic() - started, cap, first)
        if time.monotonic() + delay > deadline:
            raise WaitFailed(f"{what}: not done after {timeout:.0f}s")
        time.sleep(delay)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    code = _status(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if code and str(code) not in text:
        text = f"HTTP {code}: {text}"
    return text[:300]
