"""Fault-injection HTTP proxy in front of the sandbox's real OpenStack APIs.

The catalog's public endpoints point here; each public port forwards to its service's internal
port unchanged (the Host header too, so links in answers keep pointing at the proxy). A test
adds rules through the control API (``http://127.0.0.1:7999``, see ``faults.py``) that make the
next N matching calls fail: an HTTP status (5xx, 409, 429 with Retry-After, ...), a connection
reset, a delay, or a lost response (the request is carried out, then the connection is reset
instead of answering). A rule with a `project` fires only for calls made with a token of that
project (a sandbox lane's: lanes.py), which the proxy learns from Keystone by validating the
token as the sandbox's admin, once per token (not with the token itself: an application
credential's access rules may not allow that call). The proxy also counts calls per service,
which the benchmarks read.

Run as ``python -m stackspray_sandbox.faultproxy`` (``sandbox.up`` does).
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .paths import SandboxPaths
from .services import APIS, FAULT_CONTROL_PORT, HOST, PUBLIC_HOST

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}
_token_projects: dict[str, str | None] = {}
_token_lock = threading.Lock()
_admin: dict[str, str] = {}


def _keystone(method: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection(HOST, APIS["keystone"].internal_port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, dict(resp.getheaders()), json.loads(raw) if raw else {}
    finally:
        conn.close()


def _admin_token(renew: bool = False) -> str:
    """A token of the sandbox's admin (kept until Keystone refuses it)."""
    if renew or "token" not in _admin:
        password = json.loads(SandboxPaths.default().secrets.read_text())["admin"]
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
        status, headers, _ = _keystone("POST", "/v3/auth/tokens", {}, {"auth": auth})
        if status != 201:
            raise OSError(f"keystone refused the sandbox admin: {status}")
        _admin["token"] = next(v for k, v in headers.items() if k.lower() == "x-subject-token")
    return _admin["token"]


# Without it Keystone reports a token that carries access rules (an application credential's)
# as not found: the validator says it enforces them, as keystonemiddleware's auth_token does
# (keystonemiddleware/auth_token/_identity.py: ACCESS_RULES_SUPPORT, which keystoneclient's
# tokens.validate sends as this header; Keystone accepts any version from 1.0 on).
ACCESS_RULES = {"OpenStack-Identity-Access-Rules": "1.0"}


def token_project(token: str | None) -> str | None:
    """The name of the project a Keystone token is scoped to (None: no token, or not valid)."""
    if not token:
        return None
    with _token_lock:
        if token in _token_projects:
            return _token_projects[token]
    try:
        status, _, body = _keystone(
            "GET",
            "/v3/auth/tokens",
            {"X-Auth-Token": _admin_token(), "X-Subject-Token": token, **ACCESS_RULES},
        )
        if status == 401:
            status, _, body = _keystone(
                "GET",
                "/v3/auth/tokens",
                {"X-Auth-Token": _admin_token(renew=True), "X-Subject-Token": token, **ACCESS_RULES},
            )
        project = body["token"].get("project", {}).get("name") if status == 200 else None
    except (OSError, ValueError, KeyError, StopIteration):
        return None  # not remembered: asked again next time
    with _token_lock:
        if len(_token_projects) > 10000:
            _token_projects.clear()
        _token_projects[token] = project
    return project


class FaultTable:
    """The injection rules and the call counters, shared by every proxy thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self._ids = itertools.count(1)
        self.calls: Counter[str] = Counter()
        self.fired: list[dict] = []

    def add(self, rule: dict) -> dict:
        kind = rule.get("kind", "status")
        if kind not in ("status", "reset", "delay", "lose_response"):
            raise ValueError(f"unknown fault kind {kind!r}: use status, reset, delay or lose_response")
        re.compile(rule.get("path", ".*"))
        with self._lock:
            full = {
                "id": next(self._ids),
                "service": rule.get("service", "*"),
                "method": rule.get("method", "*").upper(),
                "path": rule.get("path", ".*"),
                "remaining": int(rule.get("count", 1)),
                "kind": kind,
                "status": int(rule.get("status", 500)),
                "retry_after": rule.get("retry_after"),
                "delay": float(rule.get("delay", 0)),
                "body": rule.get("body"),
                "project": rule.get("project"),
                "fired": 0,
            }
            self._rules.append(full)
            return dict(full)

    def clear(self, project: str | None = None) -> None:
        """Remove every rule and fired record, or only those of one project."""
        with self._lock:
            if project is None:
                self._rules.clear()
                self.fired.clear()
            else:
                self._rules[:] = [r for r in self._rules if r["project"] != project]
                self.fired[:] = [f for f in self.fired if f["project"] != project]

    def scoped(self) -> bool:
        """Whether a live rule is limited to a project (then calls need their token's project)."""
        with self._lock:
            return any(r["project"] and r["remaining"] > 0 for r in self._rules)

    def rules(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._rules]

    def take(self, service: str, method: str, path: str, project: str | None = None) -> dict | None:
        """Count the call; return the first live rule it matches (and use one of its count).
        `project`: the project of the call's token (rules limited to another one skip it)."""
        with self._lock:
            self.calls[service] += 1
            self.calls[f"{service} {method}"] += 1
            for rule in self._rules:
                if rule["remaining"] <= 0:
                    continue
                if rule["service"] not in ("*", service):
                    continue
                if rule["method"] not in ("*", method):
                    continue
                if not re.search(rule["path"], path):
                    continue
                if rule["project"] and rule["project"] != project:
                    continue
                rule["remaining"] -= 1
                rule["fired"] += 1
                self.fired.append(
                    {
                        "rule": rule["id"],
                        "service": service,
                        "method": method,
                        "path": path,
                        "kind": rule["kind"],
                        "status": rule["status"],
                        "project": rule["project"],
                        "at": time.time(),
                    }
                )
                return dict(rule)
        return None

    def stats(self) -> dict:
        with self._lock:
            return {"calls": dict(self.calls), "fired": list(self.fired)}

    def reset_stats(self) -> None:
        with self._lock:
            self.calls.clear()


TABLE = FaultTable()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # trailer lines until the blank one
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def make_proxy_handler(service: str, upstream_port: int):
    class ProxyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet: the services log their own requests
            pass

        def _reset(self) -> None:
            # SO_LINGER 0 makes close() send RST: the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _proxy(self) -> None:
            body = _read_body(self)
            project = token_project(self.headers.get("X-Auth-Token")) if TABLE.scoped() else None
            rule = TABLE.take(service, self.command, self.path, project)
            if rule and rule["kind"] == "reset":
                self._reset()
                return
            if rule and rule["kind"] == "status":
                payload = rule["body"] or json.dumps(
                    {
                        "error": {
                            "code": rule["status"],
                            "message": f"injected fault (stackspray sandbox rule {rule['id']})",
                        }
                    }
                )
                data = payload.encode()
                self.send_response(rule["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if rule["retry_after"] is not None:
                    self.send_header("Retry-After", str(rule["retry_after"]))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            if rule and rule["kind"] == "delay":
                time.sleep(rule["delay"])
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(HOST, upstream_port, timeout=600)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except OSError as exc:
                msg = json.dumps({"error": f"sandbox proxy: upstream {service} unreachable: {exc}"})
                self.send_response(502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg.encode())
                return
            finally:
                conn.close()
            if rule and rule["kind"] == "lose_response":
                # The service did the work; the client never hears of it.
                self._reset()
                return
            self.send_response_only(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _proxy

    return ProxyHandler


class ControlHandler(BaseHTTPRequestHandler):
    """GET/POST/DELETE /faults, GET/DELETE /stats."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, code: int, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/faults":
            self._send(200, {"rules": TABLE.rules()})
        elif self.path == "/stats":
            self._send(200, TABLE.stats())
        else:
            self._send(404, {"error": "use /faults or /stats"})

    def do_POST(self):
        if self.path != "/faults":
            self._send(404, {"error": "POST /faults"})
            return
        try:
            rule = json.loads(_read_body(self) or b"{}")
            self._send(201, TABLE.add(rule))
        except (ValueError, re.error) as exc:
            self._send(400, {"error": str(exc)})

    def do_DELETE(self):
        path, _, query = self.path.partition("?")
        if path == "/faults":
            project = urllib.parse.parse_qs(query).get("project", [None])[0]
            TABLE.clear(project)
            self._send(200, {"cleared": True})
        elif self.path == "/stats":
            TABLE.reset_stats()
            self._send(200, {"reset": True})
        else:
            self._send(404, {"error": "use /faults or /stats"})


def serve_forever() -> None:
    servers = [ThreadingHTTPServer((HOST, FAULT_CONTROL_PORT), ControlHandler)]
    for api in APIS.values():
        servers.append(
            ThreadingHTTPServer(
                (PUBLIC_HOST, api.public_port), make_proxy_handler(api.name, api.internal_port)
            )
        )
    for srv in servers:
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    serve_forever()
