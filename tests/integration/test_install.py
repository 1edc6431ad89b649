"""stackspray as a user installs it: `pip install .` (not editable) into a new venv, then the
`stackspray` command from another folder — every command listed, the playbooks and the
Kubespray pin found as package data, no checkout needed. Its dependencies come from this test
run's environment (PYTHONPATH) rather than being downloaded and unpacked again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from helpers import ROOT

COMMANDS = {
    "plan",
    "create-cluster",
    "add-nodes",
    "remove-nodes",
    "status",
    "verify",
    "share",
    "destroy-cluster",
    "scale.scale",
    "scale.schedule",
    "credentials.refresh",
    "credentials.schedule",
    "autoscale.enable",
    "autoscale.disable",
    "autoscale.run",
    "autoscale.status",
    "autoscale.limits",
    "autoscale.schedule",
    "kubespray.install",
}


def dependencies(into: Path) -> Path:
    """stackspray's dependencies as this test run has them, without stackspray and the sandbox
    themselves (pip resolving and unpacking them again — ansible alone is tens of MB — proves
    nothing about stackspray's own wheel)."""
    into.mkdir()
    for item in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not item.name.lower().startswith(("stackspray", "__editable__")):
            (into / item.name).symlink_to(item)
    return into


def test_pip_install_gives_a_stackspray_command_that_works_from_any_folder(tmp_path):
    deps = dependencies(tmp_path / "deps")

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(deps)}
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)

    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    pip = run(
        str(venv / "bin" / "pip"),
        "install",
        "--disable-pip-version-check",
        "-q",
        "--no-deps",
        str(ROOT),
        cwd=tmp_path,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    installed = list((venv / "lib").glob("python3.*/site-packages/stackspray"))
    assert installed and not (installed[0] / "__editable__").exists(), "a real install, not an editable one"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = run(str(venv / "bin" / "stackspray"), "--list", "--list-format", "json", cwd=elsewhere)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    doc = json.loads(listed.stdout)
    names = {t["name"] for t in doc["tasks"]} | {
        f"{c['name']}.{t['name']}" for c in doc["collections"] for t in c["tasks"]
    }
    assert COMMANDS <= names, COMMANDS - names
    assert not any(n.startswith("sandbox.") for n in names), (
        "the sandbox's commands come with its package only"
    )
    helped = run(str(venv / "bin" / "stackspray"), "--help", "create-cluster", cwd=elsewhere)
    assert helped.returncode == 0 and "--dry-run" in helped.stdout, helped.stdout + helped.stderr
    data = run(
        str(venv / "bin" / "python"),
        "-c",
        "from stackspray import paths; import yaml; "
        "print(paths.PACKAGE); print(sorted(p.name for p in paths.PLAYBOOKS.glob('*.yml'))); "
        "print(yaml.safe_load(paths.PIN_FILE.read_text())['tag']); print(paths.CHECKOUT)",
        cwd=elsewhere,
    )
    assert data.returncode == 0, data.stderr
    package, books, tag, checkout = data.stdout.splitlines()
    assert str(venv) in package, "the installed copy, not the checkout's"
    assert "prepare-nodes.yml" in books and "manila-share.yml" in books
    assert tag.startswith("v2.31"), tag
    assert checkout == "None", (
        "an installed stackspray is not a checkout: inventories go to the user's data folder"
    )
