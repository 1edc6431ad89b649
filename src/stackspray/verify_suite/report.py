"""A pytest plugin of the verify suite: each check's outcome, written as JSON lines to the file
$STACKSPRAY_VERIFY_REPORT (`invoke verify` runs the suite in a process of its own and reads it)."""

from __future__ import annotations

import json
import os


class Report:
    def __init__(self, path: str) -> None:
        self.path = path
        self.meta: dict[str, tuple[str, dict]] = {}

    def pytest_collection_modifyitems(self, items) -> None:
        for it in items:
            params = dict(it.callspec.params) if hasattr(it, "callspec") else {}
            self.meta[it.nodeid] = (it.originalname, params)

    def pytest_runtest_logreport(self, report) -> None:
        if not (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
            return
        func, params = self.meta.get(report.nodeid, ("", {}))
        params = dict(params)
        host = params.pop("_testinfra_host", None)
        crash = getattr(report.longrepr, "reprcrash", None)
        line = {
            "func": func,
            "node": host.backend.get_hostname() if host is not None else "",
            "params": [str(v) for v in params.values()],
            "outcome": report.outcome,
            "stand_in": dict(report.user_properties).get("stand_in"),
            "warning": dict(report.user_properties).get("warning"),
            "message": (crash.message if crash else str(report.longrepr or "")).splitlines()[0][:300]
            if report.outcome != "passed"
            else "",
        }
        with open(self.path, "a") as fh:
            fh.write(json.dumps(line) + "\n")


def pytest_configure(config) -> None:
    path = os.environ.get("STACKSPRAY_VERIFY_REPORT")
    if path:
        config.pluginmanager.register(Report(path), "stackspray-verify-report")
