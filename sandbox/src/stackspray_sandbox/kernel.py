"""The kernel limits the sandbox's node hosts need, raised while it runs and restored after.

Every node host is a systemd-nspawn container whose systemd takes several inotify instances (and
hundreds of watches) as root; the kernel's default of 128 instances per user lets about 30 node
hosts boot — later ones die early ("Failed to create control group inotify object: Too many open
files") while their servers are ACTIVE. `sandbox.up` raises each limit below what 50+ node hosts
need (never lowering one someone set higher), records what it was, and `sandbox.down` puts back
the values it changed — unless someone changed them since, which it then leaves alone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .paths import SandboxPaths

log = logging.getLogger(__name__)
PROC_SYS = Path("/proc/sys")
# sysctl name -> the value the sandbox needs (measured: a node host's systemd holds 4-6 inotify
# instances and about 400 watches; 200 node hosts fit in these with room for the machine's own).
LIMITS = {
    "fs.inotify.max_user_instances": 8192,
    "fs.inotify.max_user_watches": 1048576,
}


def _path(name: str, root: Path) -> Path:
    return root / name.replace(".", "/")


def _record(paths: SandboxPaths) -> Path:
    return paths.home / "kernel-limits.json"


def read(name: str, root: Path = PROC_SYS) -> int:
    return int(_path(name, root).read_text().split()[0])


def raise_limits(paths: SandboxPaths, root: Path = PROC_SYS) -> dict[str, dict]:
    """Raise each limit in LIMITS that is lower; return {name: {"was", "now"}} of every limit (and
    "error" where the kernel refused). What was changed is recorded for `restore_limits`; a record
    left by an earlier run (one that was killed) is kept, so the original values survive."""
    record = _record(paths)
    changed: dict[str, dict] = json.loads(record.read_text()) if record.exists() else {}
    out = {}
    for name, wanted in LIMITS.items():
        was = read(name, root)
        entry = {"was": changed.get(name, {}).get("was", was), "now": was}
        if was < wanted:
            try:
                _path(name, root).write_text(f"{wanted}\n")
                entry["now"] = wanted
                changed[name] = {"was": entry["was"], "set": wanted}
            except OSError as exc:
                entry["error"] = f"cannot raise {name} from {was} to {wanted}: {exc}"
                log.warning(entry["error"])
        out[name] = entry
    if changed:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(changed, indent=1))
    return out


def restore_limits(paths: SandboxPaths, root: Path = PROC_SYS) -> dict[str, int]:
    """Put back what `raise_limits` changed, where the value is still the one it set; return
    {name: restored value}."""
    record = _record(paths)
    if not record.exists():
        return {}
    restored = {}
    for name, entry in json.loads(record.read_text()).items():
        try:
            if read(name, root) == entry["set"]:
                _path(name, root).write_text(f"{entry['was']}\n")
                restored[name] = entry["was"]
            else:
                log.info("%s was changed by someone else since the sandbox raised it: left as it is", name)
        except OSError as exc:
            log.warning("cannot restore %s: %s", name, exc)
    record.unlink()
    return restored


def status(paths: SandboxPaths, root: Path = PROC_SYS) -> dict[str, dict]:
    """Each limit: what it is now, what the sandbox needs, and what it was before the sandbox."""
    record = _record(paths)
    changed = json.loads(record.read_text()) if record.exists() else {}
    return {
        name: {
            "now": read(name, root),
            "needed": wanted,
            **({"was": changed[name]["was"]} if name in changed else {}),
        }
        for name, wanted in LIMITS.items()
    }
