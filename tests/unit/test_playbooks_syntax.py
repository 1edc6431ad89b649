"""Every playbook stackspray ships parses as ansible-core parses it (`--syntax-check`: YAML,
play keywords, module names resolved) — including the tasks no sandbox run reaches, such as the
NVIDIA toolkit's on a cloud with GPU nodes. A playbook with an unknown module is refused, so the
check can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stackspray.paths import PLAYBOOKS

PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")


def syntax_check(books: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    exe = str(PLAYBOOK_BIN) if PLAYBOOK_BIN.exists() else shutil.which("ansible-playbook")
    assert exe, "ansible-playbook is installed with stackspray (ansible-core)"
    return subprocess.run(
        [exe, "-i", "localhost,", "--syntax-check", *map(str, books)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_shipped_playbook_parses(tmp_path):
    books = sorted(Path(PLAYBOOKS).glob("*.yml"))
    assert len(books) >= 10
    out = syntax_check(books, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("playbook: ") == len(books), out.stdout


def test_an_unknown_module_is_refused(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("- hosts: all\n  tasks:\n    - name: x\n      ansible.builtin.no_such_module: {}\n")
    out = syntax_check([bad], tmp_path)
    assert out.returncode != 0 and "no_such_module" in out.stdout + out.stderr
