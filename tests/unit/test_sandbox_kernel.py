"""The sandbox's kernel limits (sandbox/kernel.py) against a stand-in /proc/sys folder: raised
when low, never lowered, recorded, restored only where still the sandbox's value."""

from __future__ import annotations

from stackspray_sandbox import kernel
from stackspray_sandbox.paths import SandboxPaths

INSTANCES, WATCHES = "fs.inotify.max_user_instances", "fs.inotify.max_user_watches"


def proc(tmp_path, instances: int, watches: int):
    root = tmp_path / "sys"
    (root / "fs/inotify").mkdir(parents=True)
    (root / "fs/inotify/max_user_instances").write_text(f"{instances}\n")
    (root / "fs/inotify/max_user_watches").write_text(f"{watches}\n")
    return root


def test_low_limits_are_raised_and_restored(tmp_path):
    root, paths = proc(tmp_path, 128, 2_000_000), SandboxPaths(tmp_path / "home")
    got = kernel.raise_limits(paths, root)
    assert got[INSTANCES] == {"was": 128, "now": 8192}
    assert got[WATCHES] == {"was": 2_000_000, "now": 2_000_000}  # higher than needed: left alone
    assert kernel.read(INSTANCES, root) == 8192
    assert kernel.status(paths, root)[INSTANCES] == {"now": 8192, "needed": 8192, "was": 128}
    # A second `up` (e.g. after the first was killed) keeps the original value on record.
    kernel.raise_limits(paths, root)
    assert kernel.restore_limits(paths, root) == {INSTANCES: 128}
    assert kernel.read(INSTANCES, root) == 128 and kernel.read(WATCHES, root) == 2_000_000
    assert kernel.restore_limits(paths, root) == {}  # nothing recorded any more


def test_a_limit_someone_changed_since_is_not_restored(tmp_path):
    root, paths = proc(tmp_path, 128, 8192), SandboxPaths(tmp_path / "home")
    kernel.raise_limits(paths, root)
    (root / "fs/inotify/max_user_instances").write_text("20000\n")
    assert kernel.restore_limits(paths, root) == {WATCHES: 8192}
    assert kernel.read(INSTANCES, root) == 20000
