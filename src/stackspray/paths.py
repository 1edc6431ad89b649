"""Where stackspray's files are: one place, so no module counts `parents[N]` itself.

The playbooks and the Kubespray pin are package data (found with importlib.resources), so an
installed `stackspray` works from any folder. Cluster folders live under `$STACKSPRAY_INVENTORIES`
when it is set; else, when stackspray runs from its checkout (`pip install -e .`, as README.md
says), under the checkout's `inventories/`, as before; else under the user's data folder
(`$XDG_DATA_HOME/stackspray/inventories`, by default `~/.local/share/stackspray/inventories`) —
never relative to the working directory a command happens to be run from.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

PACKAGE = Path(str(files("stackspray")))
PLAYBOOKS = PACKAGE / "playbooks"
PIN_FILE = PACKAGE / "kubespray-pin" / "PIN.yaml"
VERIFY_SUITE = PACKAGE / "verify_suite" / "test_nodes.py"
# The checkout this package runs from, when it does (src/stackspray inside a stackspray checkout).
_ROOT = PACKAGE.parent.parent
CHECKOUT: Path | None = (
    _ROOT
    if PACKAGE.parent.name == "src"
    and (_ROOT / "pyproject.toml").is_file()
    and (_ROOT / "tasks.py").is_file()
    else None
)


def inventories_root() -> Path:
    """The folder holding one folder per cluster: $STACKSPRAY_INVENTORIES, else the checkout's
    `inventories/`, else the user's data folder. A relative $STACKSPRAY_INVENTORIES is taken
    relative to the checkout (or the data folder) too."""
    base = CHECKOUT if CHECKOUT is not None else data_home() / "stackspray"
    env = os.environ.get("STACKSPRAY_INVENTORIES")
    if not env:
        return base / "inventories"
    path = Path(env).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
