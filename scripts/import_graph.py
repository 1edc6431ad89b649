#!/usr/bin/env python3
"""Print stackspray's module layers: each module, the layer it sits in (0 imports no other
stackspray module; n imports only layers below n) and the stackspray modules it imports.

This is the figure in docs/architecture.md, between its FIGURE markers:
`python3 scripts/import_graph.py --write` regenerates it there; tests/unit/test_architecture.py
fails when the doc's figure is not what this prints. `--sandbox` lists the sandbox package's
modules (sandbox/src/stackspray_sandbox) instead.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = SRC / "stackspray"
SANDBOX_SRC = ROOT / "sandbox" / "src"
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- FIGURE: scripts/import_graph.py --write -->", "<!-- END FIGURE -->"
# Not modules of the package: the API stand-in runs on a node host on its own.
NOT_MODULES = {SANDBOX_SRC / "stackspray_sandbox" / "standins" / "kube_api" / "server.py"}


def modules(src: Path = SRC, package: str = "stackspray") -> dict[str, Path]:
    out = {}
    for f in sorted((src / package).rglob("*.py")):
        if f in NOT_MODULES:
            continue
        rel = f.relative_to(src).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = f
    return out


def imports_of(name: str, path: Path) -> set[str]:
    """Every module name an import statement of this file names (relative ones resolved)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}
    return found


def graph(src: Path = SRC, package: str = "stackspray") -> dict[str, set[str]]:
    mods = modules(src, package)
    # The package itself ("from . import names" also names it) is not an edge.
    return {n: {i for i in imports_of(n, p) if i in mods and i not in (n, package)} for n, p in mods.items()}


def layers(g: dict[str, set[str]]) -> dict[str, int]:
    depth: dict[str, int] = {}

    def d(n: str, seen: tuple[str, ...] = ()) -> int:
        if n in seen:
            raise SystemExit(f"import cycle: {' -> '.join((*seen, n))}")
        if n not in depth:
            depth[n] = 1 + max((d(m, (*seen, n)) for m in g[n]), default=-1)
        return depth[n]

    for n in g:
        d(n)
    return depth


def figure(src: Path = SRC, package: str = "stackspray") -> str:
    """The layer figure: one line per module (the package's __init__ left out)."""
    g = graph(src, package)
    lay = layers(g)
    prefix = f"{package}."

    def short(n: str) -> str:
        return n.removeprefix(prefix)

    lines = []
    for n in sorted(g, key=lambda n: (lay[n], n)):
        if n == package:
            continue
        deps = ", ".join(sorted(short(m) for m in g[n]))
        lines.append(f"{lay[n]:>2}  {short(n):<28} {deps}".rstrip())
    return "\n".join(lines) + "\n"


def doc_figure(text: str) -> str | None:
    """The figure docs/architecture.md holds (between its markers), or None."""
    if BEGIN not in text or END not in text:
        return None
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return block.strip("\n").removeprefix("```").removesuffix("```").strip("\n") + "\n"


def write_doc() -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n```\n{figure()}```\n{END}{tail}")


def main() -> int:
    if "--sandbox" in sys.argv:
        print(figure(SANDBOX_SRC, "stackspray_sandbox"), end="")
    elif "--write" in sys.argv:
        write_doc()
    else:
        print(figure(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
