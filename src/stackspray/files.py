"""Writing the files a cluster depends on so that a crash or power loss cannot lose them.

`atomic_write`: the content goes to a temporary file created with its final mode (a secret is
never readable by others, not even for a moment), is fsynced, renamed over the target, and the
folder is fsynced so the rename itself is on disk. The credential file is the only copy of its
secret: a state or secret that a crash could leave empty or half-written is not acceptable.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str, mode: int = 0o644) -> Path:
    """Replace `path` with `text` atomically and durably, the file created with `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path
