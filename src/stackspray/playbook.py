"""Running playbooks through ansible-runner: progress from its events, a summary of what failed.

ansible-runner does not raise when a playbook fails, so `run()` checks `status`, `rc` and the
final `stats` and raises `PlaybookFailed` naming each failed host, its task and the message.
Artifacts of every run stay in `inventories/<name>/runner/artifacts/<run id>/`; facts are cached
per cluster (`inventories/<name>/fact_cache`) so that `facts.yml` followed by a limited
`scale.yml` sees every host. Nothing secret is passed as extra-vars (they end up in `ps` and in
the artifacts' command file): secrets reach Ansible only through the 0600 inventory file.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

from .errors import StackSprayError

log = logging.getLogger(__name__)
SECRET_ENV = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE", re.IGNORECASE)


@dataclass(frozen=True)
class HostFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False

    def __str__(self) -> str:
        what = "unreachable" if self.unreachable else "failed"
        return f"{self.host}: {what} at task '{self.task}': {self.message}"


class PlaybookFailed(StackSprayError):
    """A playbook ended with failed or unreachable hosts (or did not run)."""

    def __init__(self, playbook: str, failures: list[HostFailure], rc: int, artifacts: Path) -> None:
        self.failures = failures
        self.rc = rc
        lines = (
            "\n".join(f"  - {f}" for f in failures)
            or f"  - ansible exited {rc} (no host failed; see the log)"
        )
        super().__init__(f"{playbook} failed:\n{lines}\nfull output: {artifacts / 'stdout'}")


@dataclass
class PlaybookResult:
    playbook: str
    status: str
    rc: int
    stats: dict
    failures: list[HostFailure]
    artifacts: Path
    seconds: float
    tasks: int = 0
    changed: dict[str, int] = field(default_factory=dict)


class _Events:
    """Turns ansible-runner events into progress lines and a list of failures."""

    def __init__(self, say) -> None:
        self.say = say
        self.failures: list[HostFailure] = []
        self.tasks = 0
        self.changed: dict[str, int] = {}
        self.t0 = time.monotonic()

    def __call__(self, event: dict) -> bool:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.say(f"play: {data.get('play') or data.get('name', '')}")
        elif kind == "playbook_on_task_start":
            self.tasks += 1
            self.say(f"  task: {data.get('task', '')}")
        elif kind == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            host = data.get("host", "?")
            self.changed[host] = self.changed.get(host, 0) + 1
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                return True
            res = data.get("res") or {}
            msg = res.get("msg") or res.get("stderr") or res.get("reason") or "no message"
            failure = HostFailure(
                data.get("host", "?"),
                data.get("task", "?"),
                str(msg).strip()[:500],
                kind == "runner_on_unreachable",
            )
            self.failures.append(failure)
            self.say(f"  ! {failure}")
        return True


def run(
    playbook: str,
    *,
    project_dir: Path,
    inventory: Path,
    cluster_dir: Path,
    say,
    limit: str | None = None,
    extravars: dict | None = None,
    tags: str | None = None,
    envvars: dict | None = None,
) -> PlaybookResult:
    """Run `playbook` (relative to project_dir); raise PlaybookFailed unless every host succeeded."""
    if extravars:
        for key in extravars:
            if any(word in key.lower() for word in ("secret", "password", "token")):
                raise ValueError(
                    f"refusing to pass {key!r} as an extra-var: secrets go in the 0600 inventory file"
                )
    private = cluster_dir / "runner"
    private.mkdir(parents=True, exist_ok=True)
    (cluster_dir / "fact_cache").mkdir(exist_ok=True)
    events = _Events(say)
    t0 = time.monotonic()
    say(f"running {playbook} on {limit or 'all hosts'}")
    env = {
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        **(envvars or {}),
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # ansible-runner writes its whole environment into artifacts/<id>/command: secrets an
    # operator keeps in the environment (an openrc's OS_PASSWORD, ...) must not be there.
    hidden = {k: os.environ.pop(k) for k in list(os.environ) if SECRET_ENV.search(k)}
    try:
        r = _run(private, project_dir, playbook, inventory, limit, tags, extravars, env, cluster_dir, events)
    finally:
        os.environ.update(hidden)
    stats = r.stats or {}
    result = PlaybookResult(
        playbook=playbook,
        status=r.status,
        rc=r.rc,
        stats=stats,
        failures=events.failures,
        artifacts=Path(r.config.artifact_dir),
        seconds=time.monotonic() - t0,
        tasks=events.tasks,
        changed=events.changed,
    )
    bad_hosts = set(stats.get("failures", {})) | set(stats.get("dark", {}))
    if r.status != "successful" or r.rc != 0 or bad_hosts:
        raise PlaybookFailed(playbook, events.failures, r.rc, result.artifacts)
    say(
        f"{playbook}: ok on {len(stats.get('ok', {}))} host(s), "
        f"{events.tasks} task(s) in {result.seconds:.0f}s"
    )
    return result


def _run(private, project_dir, playbook, inventory, limit, tags, extravars, env, cluster_dir, events):
    return ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(project_dir),
        playbook=playbook,
        inventory=str(inventory),
        limit=limit,
        tags=tags,
        extravars=extravars or {},
        envvars=env,
        fact_cache=str((cluster_dir / "fact_cache").resolve()),
        fact_cache_type="jsonfile",
        event_handler=events,
        quiet=True,
        suppress_env_files=True,
    )
