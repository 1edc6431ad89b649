"""One actor changes a cluster's nodes at a time, across machines: a Kubernetes Lease.

Whoever shelves, unshelves, drains or otherwise changes the cluster's nodes — `invoke scale`,
the autoscaler (on the operator's machine or its agent on the cluster) — holds the Lease
`kube-system/stackspray-nodes` (coordination.k8s.io/v1) while it does, in addition to the
cluster's local lock (which only serializes commands of one machine). The protocol is
Kubernetes' own leader election (client-go tools/leaderelection/leaderelection.go
`tryAcquireOrRenew`, resourcelock/leaselock.go):

- the holder writes `holderIdentity`, `acquireTime`, `renewTime` and `leaseDurationSeconds`,
  and renews every RENEW_EVERY seconds while it works;
- another actor may take the Lease only when it is free (no holder: released) or expired: not
  renewed for `leaseDurationSeconds` as this actor observed it (client-go's observedTime — a
  wrong clock elsewhere cannot make it look expired), or by its own `renewTime` plus a margin
  for clock skew (so a holder that crashed an hour ago does not make a new command wait);
- every write names the resourceVersion it read, so of two actors taking a free Lease at once
  the API server lets one through and answers the other 409 Conflict;
- release sets no holder and a duration of 1 s, as client-go's ReleaseOnCancel does.

A waiting actor says who holds the Lease and since when, and polls with backoff.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import StackSprayError
from .kube import Kube, KubeError

log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
NAME = "stackspray-nodes"
DURATION = 30  # seconds without renewal after which the Lease is free to take
RENEW_EVERY = 10.0
CLOCK_SKEW = 10.0  # seconds of clock difference between machines tolerated on renewTime


class LeaseBusy(StackSprayError):
    """Another actor held the cluster's node Lease for longer than this one would wait."""


@dataclass(frozen=True)
class Holder:
    identity: str
    acquired: str | None
    renewed: str | None
    duration: int


def identity(role: str) -> str:
    """Who an actor is, as its Lease says: `<role>@<host>:<pid>`."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(t: dt.datetime) -> str:
    """metav1.MicroTime as the API server writes it."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp) -> dt.datetime | None:
    if stamp is None:
        return None
    if isinstance(stamp, dt.datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    try:
        return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


class NodeLease:
    """The cluster's node Lease as one actor sees it (through `Kube.read_lease`/`write_lease`)."""

    def __init__(self, kube: Kube, who: str, duration: int = DURATION) -> None:
        self.kube = kube
        self.who = who
        self.duration = duration
        self._observed: tuple | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0  # monotonic time it was first seen so

    def _body(self, current: dict | None, transitions: int) -> dict:
        now = _micro(_now())
        spec = (current or {}).get("spec") or {}
        acquired = spec.get("acquireTime") if spec.get("holderIdentity") == self.who else None
        meta = {"name": NAME, "namespace": NAMESPACE}
        if current is not None:
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.who,
                "leaseDurationSeconds": self.duration,
                "acquireTime": acquired or now,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    def _expired(self, spec: dict) -> bool:
        record = (spec.get("holderIdentity"), spec.get("renewTime"))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        duration = spec.get("leaseDurationSeconds") or self.duration
        if time.monotonic() - self._observed_at > duration:
            return True  # not renewed for its whole duration, as this actor saw it
        renewed = _parse(spec.get("renewTime"))
        return renewed is not None and (_now() - renewed).total_seconds() > duration + CLOCK_SKEW

    def try_acquire(self) -> Holder | None:
        """Take (or renew) the Lease. None when this actor holds it now; else who does."""
        for _ in range(3):
            current = self.kube.read_lease(NAMESPACE, NAME)
            if current is None:
                if self.kube.write_lease(self._body(None, 0)):
                    return None
                continue  # another actor created it first: read it
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            if holder and holder != self.who and not self._expired(spec):
                return _holder(spec)
            transitions = (spec.get("leaseTransitions") or 0) + (0 if holder == self.who else 1)
            if self.kube.write_lease(self._body(current, transitions)):
                return None
            # Changed since read: someone else renewed or took it; look again.
        current = self.kube.read_lease(NAMESPACE, NAME) or {}
        spec = current.get("spec") or {}
        return None if spec.get("holderIdentity") == self.who else _holder(spec)

    def release(self) -> None:
        """Give the Lease up (only if this actor still holds it)."""
        try:
            current = self.kube.read_lease(NAMESPACE, NAME)
            spec = (current or {}).get("spec") or {}
            if spec.get("holderIdentity") != self.who:
                return
            body = self._body(current, spec.get("leaseTransitions") or 0)
            body["spec"].update(holderIdentity=None, leaseDurationSeconds=1)
            self.kube.write_lease(body)
        except KubeError as exc:
            # It expires by itself within its duration.
            log.warning("could not release the node lease: %s", exc)


def _holder(spec: dict) -> Holder:
    return Holder(
        spec.get("holderIdentity") or "",
        _str(spec.get("acquireTime")),
        _str(spec.get("renewTime")),
        spec.get("leaseDurationSeconds") or 0,
    )


def _str(stamp) -> str | None:
    t = _parse(stamp)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


@contextlib.contextmanager
def holding(
    kube: Kube,
    role: str,
    say: Callable[[str], None],
    wait: float = 600.0,
    duration: int = DURATION,
) -> Iterator[NodeLease]:
    """Hold the cluster's node Lease for the block: wait (with backoff, saying who holds it) up
    to `wait` seconds, renew it in the background, release it after."""
    lease = NodeLease(kube, identity(role), duration)
    deadline, delay, told = time.monotonic() + wait, 0.5, None
    while True:
        holder = lease.try_acquire()
        if holder is None:
            break
        if holder.identity != told:
            say(
                f"waiting for the cluster's node lease ({NAMESPACE}/{NAME}): held by "
                f"{holder.identity} since {holder.acquired}, renewed {holder.renewed}"
            )
            told = holder.identity
        if time.monotonic() + delay > deadline:
            raise LeaseBusy(
                f"the cluster's nodes are being changed by {holder.identity} (Lease {NAMESPACE}/{NAME}, "
                f"held since {holder.acquired}, renewed {holder.renewed}); waited {wait:.0f} s. "
                "Run the command again when it is done (`kubectl -n kube-system get lease "
                f"{NAME}` shows the holder)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(min(RENEW_EVERY, duration / 3)):
            try:
                if lease.try_acquire() is not None:
                    log.warning("the node lease was taken by another actor while this one held it")
            except Exception as exc:  # noqa: BLE001 (renewal is retried; the lease lasts `duration`)
                log.warning("could not renew the node lease: %s", exc)

    renewer = threading.Thread(target=renew, name="lease-renewal", daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join(timeout=5)
        lease.release()
