"""Each playbook run gets its own environment; the process's own is never touched.

Real Ansible runs through ansible-runner on this machine (ansible_connection=local): what a play
sees is asserted inside the play with lookup('env', …), what a run leaves is read from its
artifacts, and what other threads see of the process's environment is sampled while runs go on.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from stackspray import inventory, playbook
from stackspray.progress import Progress
from stackspray.state import ClusterDir

OPERATOR_SECRETS = {
    "OS_PASSWORD": "operator-password-8d1f",
    "OS_APPLICATION_CREDENTIAL_SECRET": "app-credential-secret-51c7",
}
PROCESS_SETTINGS = {
    "HTTPS_PROXY": "http://proxy.invalid:3128",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/site-ca.pem",
}

PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: What this run's Ansible sees of the environment
      ansible.builtin.assert:
        that:
          - lookup('env', 'OS_PASSWORD') == ''
          - lookup('env', 'OS_APPLICATION_CREDENTIAL_SECRET') == ''
          - lookup('env', 'STACKSPRAY_RUN') == run_name
          - lookup('env', 'HOME') != ''
        fail_msg: "OS_PASSWORD={{ lookup('env', 'OS_PASSWORD') }} RUN={{ lookup('env', 'STACKSPRAY_RUN') }}"
    - name: Take a moment
      ansible.builtin.wait_for:
        timeout: 1
"""


def _run(tmp_path: Path, name: str) -> playbook.PlaybookResult:
    cdir = ClusterDir(name, tmp_path / "inventories")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "run_name": name}
    hosts = {"all": {"hosts": {"n1": local}}}
    inventory.write(cdir.path, [inventory.InventoryFile("hosts.yml", yaml.safe_dump(hosts), 0o644)])
    book = tmp_path / "env.yml"
    book.write_text(PLAY)
    return playbook.run(
        "env.yml",
        project_dir=tmp_path,
        inventory=cdir.path / "hosts.yml",
        cluster_dir=cdir.path,
        say=Progress(emit=lambda _m: None),
        envvars={"STACKSPRAY_RUN": name},
    )


def test_two_runs_at_once_see_no_operator_secret_and_leave_none(tmp_path, monkeypatch):
    for k, v in OPERATOR_SECRETS.items():
        monkeypatch.setenv(k, v)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda n: _run(tmp_path, n), ["first", "second"]))
    assert [r.status for r in runs] == ["successful", "successful"]
    for r in runs:
        for f in r.artifacts.rglob("*"):
            if f.is_file():
                text = f.read_text(errors="replace")
                for secret in OPERATOR_SECRETS.values():
                    assert secret not in text, f"{f} holds an operator secret"
    assert {k: os.environ[k] for k in OPERATOR_SECRETS} == OPERATOR_SECRETS, "the process keeps its own"


def test_other_threads_find_the_process_environment_whole_during_a_run(tmp_path, monkeypatch):
    for k, v in {**PROCESS_SETTINGS, **OPERATOR_SECRETS}.items():
        monkeypatch.setenv(k, v)
    before = dict(os.environ)
    seen: list[dict] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.append({k: os.environ.get(k) for k in (*PROCESS_SETTINGS, *OPERATOR_SECRETS)})
            done.wait(0.01)

    reader = threading.Thread(target=sample)
    reader.start()
    try:
        _run(tmp_path, "watched")
    finally:
        done.set()
        reader.join()
    assert len(seen) > 20, "the reader sampled throughout the run"
    wrong = [s for s in seen if s != {**PROCESS_SETTINGS, **OPERATOR_SECRETS}]
    assert not wrong, f"{len(wrong)} of {len(seen)} samples found the environment changed: {wrong[0]}"
    assert dict(os.environ) == before
