"""`invoke kubespray.install` against a local git repository shaped like Kubespray's (GitHub is
not reachable here): the real git clones the pinned tag, the commit is checked, pip installs the
requirements."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stackspray import kubespray


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    repo = tmp_path / "kubespray-upstream"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "cluster.yml").write_text("---\n- hosts: all\n  tasks: []\n")
    (repo / "requirements.txt").write_text("# nothing to install in this test\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "release")
    git(repo, "tag", "v9.9.0")
    monkeypatch.setenv("STACKSPRAY_KUBESPRAY_CACHE", str(tmp_path / "cache"))
    head = git(repo, "rev-parse", "HEAD").strip()
    return {"repository": f"file://{repo}", "tag": "v9.9.0", "commit": head}, tmp_path / "cache"


def test_install_clones_the_pinned_tag_and_checks_its_commit(upstream):
    pin, cache = upstream
    got = kubespray.install(pin)
    assert got.to_dict() == {
        "path": str(cache / "v9.9.0"),
        "tag": "v9.9.0",
        "commit": pin["commit"],
        "commit_pinned": True,
    }
    assert (cache / "v9.9.0" / "cluster.yml").exists()
    # Installed already: checked again, not cloned again.
    assert kubespray.install(pin).commit == pin["commit"]


def test_a_tag_at_another_commit_is_refused_and_nothing_is_left(upstream):
    pin, cache = upstream
    with pytest.raises(kubespray.KubesprayMissing, match="PIN.yaml pins 0{40}") as err:
        kubespray.install({**pin, "commit": "0" * 40})
    assert pin["commit"] in str(err.value) and "Nothing was installed" in str(err.value)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_missing_tag_says_what_could_not_be_fetched(upstream):
    pin, _ = upstream
    with pytest.raises(kubespray.KubesprayMissing, match="cannot fetch Kubespray v9.9.9"):
        kubespray.install({**pin, "tag": "v9.9.9"})


def test_a_pin_without_commit_installs_and_reports_the_commit_to_pin(upstream):
    pin, _ = upstream
    got = kubespray.install({k: v for k, v in pin.items() if k != "commit"})
    assert got.commit == pin["commit"] and got.commit_pinned is False
