"""The wheels the autoscaler's agent is installed from on a node: this stackspray release and
the packages it needs there, for the node's own Python and platform.

They are fetched on the operator's machine (which may be a Mac or another Linux): `pip download
--only-binary=:all:` with the node's Python version, implementation and manylinux tags (its
glibc), each package pinned to the version installed here, so the node runs what this machine
runs. The node installs them into a venv from that folder alone (`pip install --no-index`):
it needs no package index. stackspray's own wheel is built from its checkout (`pip wheel
--no-deps`) when it runs from one, else downloaded as the installed version.

Only what the agent imports is installed (AGENT_REQUIREMENTS): not Ansible, invoke or
testinfra, which the operator's commands need and the agent does not (the architecture test
holds the agent's imports to that).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from . import paths
from .errors import StackSprayError

# What stackspray.autoscale_agent imports beyond the standard library (their own dependencies
# come along, pinned to this machine's versions too).
AGENT_REQUIREMENTS = ("openstacksdk", "kubernetes", "PyYAML")


class WheelsError(StackSprayError):
    """The agent's wheels could not be fetched for the node (nothing was installed there)."""


@dataclass(frozen=True)
class NodePython:
    """A node's Python as the agent's install probe reads it."""

    version: str  # "3.11"
    implementation: str  # "cp"
    machine: str  # "x86_64", "aarch64"
    glibc: str  # "2.36"

    @classmethod
    def from_probe(cls, doc: dict) -> NodePython:
        return cls(
            doc["version"], doc.get("implementation", "cp"), doc["machine"], doc.get("glibc") or "2.17"
        )

    def platforms(self) -> list[str]:
        """The manylinux tags a wheel may carry to run on this node (PEP 600; the legacy
        aliases of PEP 513/571/599 too)."""
        major, minor = (int(x) for x in self.glibc.split(".")[:2])
        if major != 2:
            raise WheelsError(f"node glibc {self.glibc}: only glibc 2.x nodes are supported")
        tags = [f"manylinux_2_{m}_{self.machine}" for m in range(minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{self.machine}" for m, name in legacy.items() if m <= minor]
        return tags

    @property
    def tag(self) -> str:
        return f"{self.implementation}{self.version.replace('.', '')}"


@dataclass
class Wheels:
    folder: Path
    build: str  # short sha256 over every wheel: what the agent reports as its build
    files: list[str]


def _marker_environment(node: NodePython) -> dict[str, str]:
    """PEP 508 marker values of the node's Python (Linux)."""
    return {
        "python_version": node.version,
        "python_full_version": f"{node.version}.0",
        "implementation_name": "cpython" if node.implementation == "cp" else node.implementation,
        "platform_python_implementation": "CPython" if node.implementation == "cp" else node.implementation,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": node.machine,
        "extra": "",
    }


def _pins(names: tuple[str, ...], node: NodePython) -> list[str]:
    """A requirement for each package the agent needs on the node and everything they need
    there (markers read for the node, not this machine): `name==version` as installed here,
    else the requirement as its dependent states it (a package this machine's platform does
    not need)."""
    env = _marker_environment(node)
    seen: dict[str, str] = {}
    todo = [Requirement(n) for n in names]
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name)
        if key in seen:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            seen[key] = str(Requirement(f"{req.name}{req.specifier}"))
            continue
        seen[key] = f"{dist.metadata['Name']}=={dist.version}"
        for text in dist.requires or []:
            dep = Requirement(text)
            if dep.marker is None or dep.marker.evaluate(env):
                todo.append(dep)
    return sorted(seen.values(), key=str.lower)


def _pip(*args: str, timeout: float = 900) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout
    )
    if out.returncode != 0:
        tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-8:])
        raise WheelsError(f"pip {args[0]} for the agent's wheels failed:\n{tail}")


def _own_wheel(into: Path) -> Path:
    """stackspray's wheel: built from the checkout this runs from, else the installed release."""
    into.mkdir(parents=True, exist_ok=True)
    for old in into.glob("stackspray-*.whl"):
        old.unlink()
    if paths.CHECKOUT is not None:
        _pip("wheel", "--no-deps", "--quiet", "-w", str(into), str(paths.CHECKOUT))
    else:
        _pip("download", "--no-deps", "--quiet", "-d", str(into), f"stackspray=={md.version('stackspray')}")
    (wheel,) = into.glob("stackspray-*.whl")
    return wheel


def fetch(node: NodePython, cache: Path) -> Wheels:
    """Every wheel the agent needs on `node`, in a folder of its own (cached by what is in it)."""
    pins = _pins(AGENT_REQUIREMENTS, node) + [f"pip=={md.version('pip')}"]
    key = hashlib.sha256(json.dumps([node.tag, node.machine, node.glibc, pins]).encode()).hexdigest()[:16]
    deps = cache / f"deps-{key}"
    if not (deps / ".complete").exists():
        shutil.rmtree(deps, ignore_errors=True)
        args = ["download", "--quiet", "--only-binary=:all:", "--no-deps", "-d", str(deps)]
        args += ["--python-version", node.version, "--implementation", node.implementation]
        for platform_tag in node.platforms():
            args += ["--platform", platform_tag]
        # --no-deps: the pins already name the whole closure, each at this machine's version.
        _pip(*args, *pins)
        (deps / ".complete").write_text("\n".join(pins) + "\n")
    own = _own_wheel(cache / "own")
    folder = cache / "current"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for wheel in [*sorted(deps.glob("*.whl")), own]:
        os.link(wheel, folder / wheel.name)  # the same cache folder: a hard link, no copy
    digest = hashlib.sha256()
    files = sorted(p.name for p in folder.glob("*.whl"))
    for name in files:
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    return Wheels(folder, digest.hexdigest()[:12], files)
