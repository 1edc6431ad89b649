"""Fault injection for reliability tests against the sandbox.

- :func:`inject` makes the next N matching client calls of one OpenStack API fail at the HTTP
  layer (a status such as 500/409/429 with Retry-After, a connection reset, a delay, or a lost
  response: carried out by the service, then the connection is reset), through
  the proxy the catalog's public endpoints point at; the services themselves are untouched.
- :func:`boot_errors` makes the next N server boots go to ERROR (Nova records the fault).
- :func:`kill_node` stops a node host abruptly, as a crashed VM.
- :func:`silent_os` makes the next N servers (whose name contains a string) ACTIVE in Nova with
  an OS that never answers — no node host boots for them, as a VM stuck in its boot loader or a
  kernel panic — until Nova's record changes (a hard reboot, a stop and start).
- :func:`call_counts` reads how many calls each API received (for benchmarks).

In a lane (lanes.py: test workers side by side) every fault is the lane's own: an HTTP rule
fires only for calls made with a token of the lane's project, boot faults live in files of the
lane, and `fired`/`clear` see and remove only the lane's. Without a lane they are global.
"""

from __future__ import annotations

import fcntl
import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Literal

from . import lanes, nodehost
from .paths import SandboxPaths
from .services import FAULT_CONTROL_PORT, HOST

CONTROL = f"http://{HOST}:{FAULT_CONTROL_PORT}"
Service = Literal["keystone", "glance", "placement", "neutron", "nova", "manila", "*"]


def _scope() -> str | None:
    """The project this process's faults are limited to (its lane's), or None: global."""
    return lanes.project() if lanes.current() is not None else None


def _fault_file(paths: SandboxPaths, kind: str) -> Path:
    scope = _scope()
    return paths.faults / (f"{kind}.json" if scope is None else f"{kind}-{scope}.json")


def _call(method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(CONTROL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback only)
        return json.loads(resp.read())


def inject(
    service: Service,
    *,
    method: str = "*",
    path: str = ".*",
    count: int = 1,
    status: int = 500,
    retry_after: int | None = None,
    kind: Literal["status", "reset", "delay", "lose_response"] = "status",
    delay: float = 0.0,
) -> dict:
    """Make the next `count` calls to `service` matching `method` and the `path` regex fail."""
    return _call(
        "POST",
        "/faults",
        {
            "service": service,
            "method": method,
            "path": path,
            "count": count,
            "status": status,
            "retry_after": retry_after,
            "kind": kind,
            "delay": delay,
            "project": _scope(),
        },
    )


def rules() -> list[dict]:
    """The rules, each with how often it `fired` and how many uses `remaining`."""
    return _mine(_call("GET", "/faults")["rules"])


def fired() -> list[dict]:
    """Every injected failure so far (service, method, path, kind, status)."""
    return _mine(_call("GET", "/stats")["fired"])


def _mine(entries: list[dict]) -> list[dict]:
    """The entries of this process's lane (all of them without a lane)."""
    scope = _scope()
    return [e for e in entries if scope is None or e.get("project") == scope]


def clear(paths: SandboxPaths | None = None) -> None:
    """Remove every HTTP rule and boot fault (in a lane: the lane's)."""
    scope = _scope()
    _call("DELETE", "/faults" if scope is None else "/faults?" + urllib.parse.urlencode({"project": scope}))
    paths = paths or SandboxPaths.default()
    for kind in ("boot_error", "silent_os"):
        if scope is None:
            for found in paths.faults.glob(f"{kind}*.json"):
                found.unlink(missing_ok=True)
        else:
            _fault_file(paths, kind).unlink(missing_ok=True)


def call_counts() -> dict[str, int]:
    """Calls per API (``"nova"``) and per API and method (``"nova POST"``) since the last reset."""
    return _call("GET", "/stats")["calls"]


def reset_call_counts() -> None:
    _call("DELETE", "/stats")


def boot_errors(count: int, name_contains: str = "", paths: SandboxPaths | None = None) -> None:
    """Make the next `count` server boots (whose name contains `name_contains`) go to ERROR."""
    _write_rule("boot_error", count, name_contains, paths)


def silent_os(count: int, name_contains: str = "", paths: SandboxPaths | None = None) -> None:
    """Make the next `count` servers whose name contains `name_contains` never answer once ACTIVE."""
    _write_rule("silent_os", count, name_contains, paths)


def _write_rule(kind: str, count: int, name_contains: str, paths: SandboxPaths | None) -> None:
    """A boot fault's rule file (this lane's), replaced under its lock."""
    paths = paths or SandboxPaths.default()
    paths.faults.mkdir(parents=True, exist_ok=True)
    with open(_fault_file(paths, kind), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        json.dump({"remaining": count, "name_contains": name_contains}, fh)


def take_silent_os(paths: SandboxPaths, server_name: str) -> bool:
    """The node agent's side: True (and one use consumed) when this server's OS is to stay silent
    (by any lane's rule: the names they match are their own clusters')."""
    return any(_take_from(path, server_name) for path in sorted(paths.faults.glob("silent_os*.json")))


def _take_from(path: Path, server_name: str) -> bool:
    try:
        fh = open(path, "r+")  # noqa: SIM115 (closed below; the file may go meanwhile)
    except FileNotFoundError:
        return False
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            rule = json.loads(fh.read() or "{}")
        except ValueError:
            return False
        if rule.get("remaining", 0) <= 0 or rule.get("name_contains", "") not in server_name:
            return False
        rule["remaining"] -= 1
        fh.seek(0)
        fh.truncate()
        json.dump(rule, fh)
        return True


def boot_errors_remaining(paths: SandboxPaths | None = None) -> int:
    paths = paths or SandboxPaths.default()
    try:
        return json.loads(_fault_file(paths, "boot_error").read_text()).get("remaining", 0)
    except (FileNotFoundError, ValueError):
        return 0


def kill_node(server_id: str, paths: SandboxPaths | None = None) -> bool:
    """Stop the server's node host abruptly; it stays down until Nova's record changes."""
    return nodehost.kill_node(paths or SandboxPaths.default(), server_id)
