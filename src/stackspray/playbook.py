"""Running playbooks through ansible-runner: progress from its events, a summary of what failed.

ansible-runner does not raise when a playbook fails, so `run()` checks `status`, `rc` and the
final `stats` and raises `PlaybookFailed` naming each failed host, its task and the message.
Artifacts of every run stay in `inventories/<name>/runner/artifacts/<run id>/`; facts are cached
per cluster (`inventories/<name>/fact_cache`) so that `facts.yml` followed by a limited
`scale.yml` sees every host. Nothing secret is passed as extra-vars (they end up in `ps` and in
the artifacts' command file): secrets reach Ansible only through the 0600 inventory file.

What a run leaves on disk holds no secret, whatever Kubespray prints (stackspray.redact):
- ansible-runner writes neither its stdout file nor its per-event JSON files; the event handler
  writes `artifacts/<id>/stdout` itself, each event's text scrubbed first;
- Ansible sees an allow-list of the environment (`ENV_ALLOWED`), not stackspray's: nothing a
  shell exports (an openrc's password, an API key) reaches the artifacts' `command` file. Each
  run gets its own environment (ansible-runner's RunnerConfig is prepared, its `env` trimmed,
  then a Runner runs it, as ansible_runner/interface.py's init_runner does): the process's
  `os.environ` is never changed, so threads that call the cloud meanwhile keep HTTPS_PROXY,
  REQUESTS_CA_BUNDLE and the rest, and two runs at once cannot see each other's settings;
- Ansible's and Python's temporary files go to the cluster's `runner/tmp` (0700), not /tmp,
  where a killed run would leave them readable;
- only the newest `KEEP_ARTIFACTS` runs' artifacts are kept.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from ansible_runner import Runner, RunnerConfig
from ansible_runner.utils import dump_artifacts, signal_handler

from .errors import StackSprayError
from .redact import Redactor, secrets_of

log = logging.getLogger(__name__)
SECRET_ENV = re.compile(r"PASS|SECRET|TOKEN|CREDENTIAL|PRIVATE|KEY", re.IGNORECASE)
# The environment a playbook run may see: what Ansible, ssh and Python need to work as the user,
# and ANSIBLE_* settings (verbosity, config) unless they name a secret.
ENV_ALLOWED = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "SHELL", "SSH_AUTH_SOCK"}
ENV_ALLOWED_PREFIXES = ("LC_", "ANSIBLE_")
KEEP_ARTIFACTS = 10
# Ansible runs a task on `forks` hosts at a time (default 5; Kubespray's ansible.cfg sets none):
# stackspray runs as wide as the inventory, at least 5 and at most MAX_FORKS, so a 20-node
# cluster does not take every task in four batches.
MIN_FORKS = 5
STATS_KEYS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")
MAX_FORKS = 50


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
    task_seconds: dict[str, float] = field(default_factory=dict)  # wall seconds per task


class _Events:
    """Turns ansible-runner events into progress lines, a list of failures and a scrubbed stdout
    file; returns False so that ansible-runner writes no event file of its own."""

    def __init__(self, say, redactor: Redactor, stdout: Path | None = None) -> None:
        self.say = say
        self.redactor = redactor
        self.stdout_path = stdout
        self.out = None
        self.stats: dict = {}
        self.failures: list[HostFailure] = []
        self.tasks = 0
        self.changed: dict[str, int] = {}
        self.t0 = time.monotonic()
        # Wall seconds per task (from its start to the next task's): the run's phase trace.
        self.task_seconds: dict[str, float] = {}
        self._task: tuple[str, float] | None = None

    def write(self, text: str) -> None:
        if self.out is None:
            if self.stdout_path is None:
                return
            self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.stdout_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self.out = os.fdopen(fd, "a")
        self.out.write(self.redactor.scrub(text) + "\n")
        self.out.flush()

    def _end_task(self) -> None:
        if self._task is not None:
            name, started = self._task
            self.task_seconds[name] = self.task_seconds.get(name, 0.0) + time.monotonic() - started
            self._task = None

    def slowest(self, n: int = 2) -> list[tuple[str, float]]:
        return sorted(self.task_seconds.items(), key=lambda kv: -kv[1])[:n]

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def __call__(self, event: dict) -> bool:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if event.get("stdout"):
            self.write(event["stdout"])
        if kind in ("playbook_on_task_start", "playbook_on_play_start", "playbook_on_stats"):
            self._end_task()
        if kind == "playbook_on_stats":
            # ansible-runner's own `stats` reads the event files, which are not written (see above).
            self.stats = {k: data.get(k) or {} for k in STATS_KEYS}
        if kind == "playbook_on_play_start":
            self.say(f"play: {data.get('play') or data.get('name', '')}")
        elif kind == "playbook_on_task_start":
            self.tasks += 1
            self._task = (data.get("task", "") or "?", time.monotonic())
            self.say(f"  task: {data.get('task', '')}")
        elif kind == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            host = data.get("host", "?")
            self.changed[host] = self.changed.get(host, 0) + 1
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                return True
            res = data.get("res") or {}
            msg = res.get("msg") or res.get("stderr") or res.get("reason") or "no message"
            if res.get("assertion"):  # ansible.builtin.assert names the condition that was false
                msg = f"{msg} (assertion: {res['assertion']})"
            failure = HostFailure(
                data.get("host", "?"),
                data.get("task", "?"),
                self.redactor.scrub(str(msg).strip())[:500],
                kind == "runner_on_unreachable",
            )
            self.failures.append(failure)
            self.say(f"  ! {failure}")
        return False  # ansible-runner's own event files would hold unscrubbed results


def _targets(limit: str | None) -> str:
    """A --limit as a person reads it: "all hosts", "all hosts but a, b", or the hosts."""
    if not limit:
        return "all hosts"
    if limit.startswith("all:!"):
        return "all hosts but " + ", ".join(p.lstrip("!") for p in limit.split(":")[1:])
    return limit


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
    forks: int | None = None,
) -> PlaybookResult:
    """Run `playbook` (relative to project_dir); raise PlaybookFailed unless every host succeeded.
    `forks`: at most this many hosts at a time (`--forks`; None: as wide as the inventory)."""
    if extravars:
        for key in extravars:
            if any(word in key.lower() for word in ("secret", "password", "token")):
                raise StackSprayError(
                    f"refusing to pass {key!r} as an extra-var: secrets go in the 0600 inventory file"
                )
    private = cluster_dir / "runner"
    private.mkdir(parents=True, exist_ok=True)
    # ansible-runner writes no stdout file of its own (the event handler writes a scrubbed one).
    # It must be in env/settings: without that file ansible-runner drops a `settings` argument
    # (ansible_runner/config/_base.py, _prepare_env).
    (private / "env").mkdir(exist_ok=True)
    (private / "env" / "settings").write_text("suppress_output_file: true\n")
    tmp = private / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    tmp.chmod(0o700)
    (cluster_dir / "fact_cache").mkdir(exist_ok=True)
    ident = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{Path(playbook).stem}-{uuid.uuid4().hex[:6]}"
    events = _Events(say, Redactor(secrets_of(cluster_dir)), private / "artifacts" / ident / "stdout")
    t0 = time.monotonic()
    say(f"running {playbook} on {_targets(limit)}")
    env = {
        "ANSIBLE_FORCE_COLOR": "false",
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_LOCAL_TEMP": str(tmp),
        "TMPDIR": str(tmp),
        **(envvars or {}),
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        r = _run(
            private,
            project_dir,
            playbook,
            inventory,
            limit,
            tags,
            extravars,
            env,
            cluster_dir,
            events,
            ident,
            forks_for(inventory, limit, forks),
        )
    finally:
        events.close()
        _prune(private / "artifacts", KEEP_ARTIFACTS)
    stats = events.stats or r.stats or {}
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
        task_seconds=dict(events.task_seconds),
    )
    bad_hosts = set(stats.get("failures", {})) | set(stats.get("dark", {}))
    if r.status != "successful" or r.rc != 0 or bad_hosts:
        raise PlaybookFailed(playbook, events.failures, r.rc, result.artifacts)
    slow = "; ".join(f"{name} {sec:.1f}s" for name, sec in events.slowest())
    say(
        f"{playbook}: ok on {len(stats.get('ok', {}))} host(s), "
        f"{events.tasks} task(s) in {result.seconds:.1f}s" + (f" (slowest: {slow})" if slow else "")
    )
    return result


def check_forks(forks: int | None) -> int | None:
    """`--forks N`: at most N hosts at a time (None: as wide as the inventory, up to MAX_FORKS)."""
    if forks is not None and (isinstance(forks, bool) or not isinstance(forks, int) or forks < 1):
        raise StackSprayError(f"--forks: {forks!r} is not a number of hosts (1 or more)")
    return forks


def forks_for(inventory: Path, limit: str | None = None, cap: int | None = None) -> int:
    """How many hosts Ansible works on at once: every host of the inventory (or of `limit`),
    between MIN_FORKS and MAX_FORKS, or at most `cap` (`--forks`)."""
    check_forks(cap)
    if limit:
        hosts = len([h for h in limit.split(",") if h])
    else:
        try:
            data = yaml.safe_load(inventory.read_text()) or {}
        except (OSError, yaml.YAMLError):
            data = {}
        hosts = len(((data.get("all") or {}).get("hosts")) or {})
    if cap is not None:
        return max(1, min(cap, hosts))
    return max(MIN_FORKS, min(MAX_FORKS, hosts))


def _env_allowed(name: str) -> bool:
    if SECRET_ENV.search(name):
        return False
    return name in ENV_ALLOWED or name.startswith(ENV_ALLOWED_PREFIXES)


def _prune(artifacts: Path, keep: int) -> None:
    """Remove all but the newest `keep` runs' artifacts."""
    if not artifacts.is_dir():
        return
    runs = sorted((d for d in artifacts.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def run_environment(prepared: dict[str, str], ours: dict[str, str]) -> dict[str, str]:
    """The environment a run's Ansible gets, from the one ansible-runner prepared (the process's
    own environment, `ours`, and what ansible-runner sets for itself): the allow-list of the
    process's variables, everything of `ours`, and ansible-runner's own settings."""
    return {
        k: v
        for k, v in prepared.items()
        if k in ours or _env_allowed(k) or (os.environ.get(k) != v and not SECRET_ENV.search(k))
    }


def _run(
    private, project_dir, playbook, inventory, limit, tags, extravars, env, cluster_dir, events, ident, forks
):
    """ansible_runner.run, with the run's environment trimmed between RunnerConfig.prepare and
    the Runner (ansible_runner/interface.py init_runner makes the same two steps)."""
    kwargs = dict(
        private_data_dir=str(private),
        ident=ident,
        forks=forks,
        project_dir=str(project_dir),
        playbook=playbook,
        inventory=str(inventory),
        limit=limit,
        tags=tags,
        extravars=extravars or {},
        envvars=env,
        fact_cache=str((cluster_dir / "fact_cache").resolve()),
        fact_cache_type="jsonfile",
        quiet=True,
        suppress_env_files=True,
    )
    dump_artifacts(kwargs)
    config = RunnerConfig(**kwargs)
    config.prepare()
    config.env = run_environment(config.env, env)
    runner = Runner(config, event_handler=events, cancel_callback=signal_handler())
    runner.run()
    return runner
