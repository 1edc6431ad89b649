"""No secret in what a playbook run leaves: tasks shaped like Kubespray's that print the cloud
config, the admin kubeconfig and the join token, run for real through ansible-runner on this
machine (localhost, ansible_connection=local) at ANSIBLE_VERBOSITY=4, with an operator's
secrets exported in the environment."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackspray import inventory, playbook
from stackspray.errors import StackSprayError
from stackspray.inventory import Credential
from stackspray.progress import Progress
from stackspray.state import ClusterDir

PLAYBOOKS = Path(__file__).parent / "playbooks"
SECRET = "Zm9vYmFyYmF6cXV4LXNlY3JldC1vZi10aGUtY3JlZGVudGlhbC0xMjM0NTY3ODkw"
SHARE_KEY = "AQBshare0key0cephx0value0000000000000000=="
OPERATOR = {"OS_PASSWORD": "operator-password-0001", "FOO_API_KEY": "operator-api-key-0002"}


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    cdir = ClusterDir("leak", tmp_path / "inventories")
    cdir.path.mkdir(parents=True)
    cred = Credential("0123456789abcdef0123456789abcdef", "leak-k8s-20261201T000000Z", SECRET)
    inventory.write(cdir.path, [inventory.credential_file("leak", cred)])
    cdir.write_secret("share-access-key", SHARE_KEY)
    inventory.write(
        cdir.path,
        [
            inventory.InventoryFile(
                "group_vars/all/share-secret.yml", yaml.safe_dump({"share_access_key": SHARE_KEY}), 0o600
            )
        ],
    )
    key = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519"], capture_output=True, text=True, check=True
    )
    admin = {
        "users": [
            {"name": "admin", "user": {"client-key-data": base64.b64encode(key.stdout.encode()).decode()}}
        ]
    }
    work = tmp_path / "work"
    work.mkdir()
    (work / "admin.conf").write_text(yaml.safe_dump(admin))
    local = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "work_dir": str(work),
    }
    hosts = {"all": {"hosts": {"localhost": local}}}
    inventory.write(cdir.path, [inventory.InventoryFile("hosts.yml", yaml.safe_dump(hosts), 0o644)])
    monkeypatch.setenv("ANSIBLE_VERBOSITY", "4")
    for k, v in OPERATOR.items():
        monkeypatch.setenv(k, v)
    return cdir, key.stdout, work


def secrets_left(cdir: ClusterDir, values: list[str]) -> list[str]:
    leaks = []
    for p in cdir.path.rglob("*"):
        if not p.is_file() or (p.stat().st_mode & 0o077 == 0 and "artifacts" not in p.parts):
            continue  # the 0600 secret files themselves
        text = p.read_text(errors="ignore")
        leaks += [f"{p.relative_to(cdir.path)}: {v[:12]}…" for v in values if v in text]
    return leaks


def run(cdir: ClusterDir, **extravars):
    lines: list[str] = []
    return lines, lambda: playbook.run(
        "kubespray-shaped-leaks.yml",
        project_dir=PLAYBOOKS,
        inventory=cdir.path / "hosts.yml",
        cluster_dir=cdir.path,
        say=Progress(emit=lines.append),
        extravars=extravars or None,
    )


def test_a_verbose_run_leaves_no_secret_in_artifacts_logs_or_tmp(cluster):
    cdir, private_key, work = cluster
    tmp_before = set(os.listdir("/tmp"))
    lines, go = run(cdir)
    result = go()
    stdout = (result.artifacts / "stdout").read_text()
    assert "External OpenStack Cloud Controller" in stdout and "<redacted>" in stdout, (
        "the output is kept, scrubbed"
    )
    b64_conf = base64.b64encode((work / "cloud.conf").read_bytes()).decode()
    values = [
        SECRET,
        SHARE_KEY,
        b64_conf,
        private_key.strip().splitlines()[1],
        "0123456789abcdef",
        *OPERATOR.values(),
    ]
    assert secrets_left(cdir, values) == []
    assert not any(v in "\n".join(lines) for v in values)
    assert not list((result.artifacts).glob("job_events/*.json")), "no unscrubbed event files"
    command = (result.artifacts / "command").read_text()
    assert "OS_PASSWORD" not in command and "FOO_API_KEY" not in command, "the environment is an allow-list"
    unique = [SECRET, SHARE_KEY, b64_conf, private_key.strip().splitlines()[1], *OPERATOR.values()]
    for name in set(os.listdir("/tmp")) - tmp_before:
        p = Path("/tmp") / name
        try:
            text = p.read_text(errors="ignore") if p.is_file() else ""
        except FileNotFoundError:
            continue  # another process's temporary file (MariaDB's), gone since the listing
        assert not any(v in text for v in unique), f"/tmp/{name}"
    tmp = cdir.path / "runner" / "tmp"
    assert tmp.stat().st_mode & 0o777 == 0o700, "Ansible's temporary files are private"
    assert os.environ["OS_PASSWORD"] == OPERATOR["OS_PASSWORD"], "the environment is restored"


def test_a_failure_message_holding_a_secret_is_scrubbed(cluster):
    cdir, _, _ = cluster
    lines, go = run(cdir, fail_with_key="true")
    with pytest.raises(playbook.PlaybookFailed) as err:
        go()
    assert "could not mount with key <redacted>" in str(err.value)
    assert SHARE_KEY not in str(err.value) and not any(SHARE_KEY in line for line in lines)
    assert secrets_left(cdir, [SHARE_KEY]) == []


def test_only_the_newest_runs_artifacts_are_kept(tmp_path, monkeypatch):
    cdir = ClusterDir("keep", tmp_path / "inventories")
    monkeypatch.setattr(playbook, "KEEP_ARTIFACTS", 2)
    made = [_ping_run(tmp_path, cdir, 1).artifacts.name for _ in range(4)]
    runs = sorted(p.name for p in (cdir.path / "runner" / "artifacts").iterdir())
    assert runs == sorted(made[-2:]), (runs, made)


def _ping_run(tmp_path: Path, cdir: ClusterDir, hosts: int, envvars: dict | None = None):
    """A one-task playbook over `hosts` local hosts, through playbook.run: a debug task (no
    module to run, each host still one of Ansible's forks)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = {"all": {"hosts": {f"n{i}": dict(local) for i in range(hosts)}}}
    inventory.write(cdir.path, [inventory.InventoryFile("hosts.yml", yaml.safe_dump(inv), 0o644)])
    book = tmp_path / "noop.yml"
    book.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: up}\n")
    return playbook.run(
        "noop.yml",
        project_dir=tmp_path,
        inventory=cdir.path / "hosts.yml",
        cluster_dir=cdir.path,
        say=Progress(emit=lambda _m: None),
        envvars=envvars,
    )


@pytest.mark.parametrize("hosts, forks", [(1, 5), (20, 20), (51, 50)])
def test_ansible_runs_as_wide_as_the_inventory(tmp_path, hosts, forks):
    """Ansible's default is 5 hosts at a time and Kubespray's ansible.cfg sets no `forks`: every
    run is as wide as its inventory (at least 5, at most playbook.MAX_FORKS), as the command
    line ansible-runner used shows (artifacts/<run>/command)."""
    result = _ping_run(tmp_path, ClusterDir("wide", tmp_path / "inventories"), hosts)
    command = json.loads((result.artifacts / "command").read_text())["command"]
    assert command[command.index("--forks") + 1] == str(forks)
    assert len(result.stats.get("ok", {})) == hosts


@pytest.mark.parametrize("kubespray", [True, False])
def test_kubesprays_ssh_settings_are_kept_with_ours_and_visible_in_the_artifacts(tmp_path, kubespray):
    """Kubespray's ansible.cfg sets ssh_args (ControlPersist=30m, ConnectionAttempts=100), which
    an ANSIBLE_SSH_ARGS replaces: Kubespray's runs keep them, with our known_hosts file and a
    keep-alive added; our own playbooks keep one attempt. What ansible-runner ran with is in
    artifacts/<run>/command."""
    cdir = ClusterDir("sshargs", tmp_path / "inventories")
    result = _ping_run(tmp_path, cdir, 1, inventory.ssh_env(cdir.path, kubespray=kubespray))
    recorded = json.loads((result.artifacts / "command").read_text())
    args = recorded["env"]["ANSIBLE_SSH_ARGS"].split()
    assert "ControlPersist=30m" in args and "ServerAliveInterval=15" in args
    assert f"UserKnownHostsFile={cdir.path / 'known_hosts'}" in args
    assert ("ConnectionAttempts=100" in args) is kubespray
    # Kubespray's ansible.cfg pipelines modules; our own playbooks do too.
    assert recorded["env"]["ANSIBLE_PIPELINING"] == "True"


def test_forks_flag_caps_the_width_and_bad_values_name_the_flag(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {f"n{i}": {} for i in range(20)}}}))
    assert playbook.forks_for(inv, cap=3) == 3 and playbook.forks_for(inv, "n1,n2", cap=3) == 2
    assert playbook.forks_for(inv) == 20
    for bad in (0, -2, "4", True):
        with pytest.raises(StackSprayError, match="--forks"):
            playbook.check_forks(bad)


def test_each_run_says_where_its_time_went(tmp_path):
    """The summary names the slowest tasks (a phase trace of the run), from ansible-runner's
    task events: the task that waits is at the top, with at least the time it waited."""
    cdir = ClusterDir("trace", tmp_path / "inventories")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write(
        cdir.path,
        [inventory.InventoryFile("hosts.yml", yaml.safe_dump({"all": {"hosts": {"n1": local}}}), 0o644)],
    )
    (tmp_path / "trace.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Quick\n      ansible.builtin.ping:\n"
        "    - name: Waits\n      ansible.builtin.wait_for:\n        timeout: 1\n"
    )
    lines: list[str] = []
    result = playbook.run(
        "trace.yml",
        project_dir=tmp_path,
        inventory=cdir.path / "hosts.yml",
        cluster_dir=cdir.path,
        say=Progress(emit=lines.append),
    )
    assert set(result.task_seconds) == {"Quick", "Waits"} and result.task_seconds["Waits"] >= 1.0
    summary = [line for line in lines if "trace.yml: ok on 1 host(s), 2 task(s) in" in line]
    assert len(summary) == 1 and "(slowest: Waits " in summary[0], lines
