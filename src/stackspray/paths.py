"""Where the project's own files are: one place, so no module counts `parents[N]` itself.

stackspray runs from its checkout (`pip install -e .`, as README.md says): the playbooks, the
Kubespray pin and the sandbox's stand-ins are files of that checkout, found from this module.
Cluster folders live under `inventories/` of the checkout unless `STACKSPRAY_INVENTORIES` names
another folder — never relative to the working directory a command happens to be run from.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE.parents[1]
SRC = PACKAGE.parent
PLAYBOOKS = REPO_ROOT / "playbooks"
PIN_FILE = REPO_ROOT / "kubespray" / "PIN.yaml"
STANDINS = PACKAGE / "sandbox" / "standins"
KUBESPRAY_STANDIN = STANDINS / "kubespray"
KUBE_API_STANDIN = STANDINS / "kube_api"
VERIFY_SUITE = PACKAGE / "verify_suite" / "test_nodes.py"


def inventories_root() -> Path:
    """The folder holding one folder per cluster: $STACKSPRAY_INVENTORIES, else the checkout's
    `inventories/`. A relative $STACKSPRAY_INVENTORIES is taken relative to the checkout too."""
    env = os.environ.get("STACKSPRAY_INVENTORIES")
    if not env:
        return REPO_ROOT / "inventories"
    path = Path(env).expanduser()
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()
