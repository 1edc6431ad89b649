#!/usr/bin/env python3
"""Print stackspray's module layers: each module, the layer it sits in (0 imports no other
stackspray module; n imports only layers below n) and the stackspray modules it imports.

This is the figure in docs/architecture.md: `python3 scripts/import_graph.py` regenerates it.
tests/unit/test_architecture.py reads the same graph through `graph()`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "stackspray"
# Not stackspray modules: the API stand-in runs on a node host on its own; the verify suite is a
# pytest file run against the nodes.
NOT_MODULES = {PKG / "sandbox" / "standins" / "kube_api" / "server.py"}


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        if f in NOT_MODULES:
            continue
        rel = f.relative_to(SRC).with_suffix("")
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


def graph() -> dict[str, set[str]]:
    mods = modules()
    # The package itself ("from . import names" also names it) is not an edge.
    return {
        n: {i for i in imports_of(n, p) if i in mods and i not in (n, "stackspray")} for n, p in mods.items()
    }


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


def main() -> int:
    g = graph()
    lay = layers(g)
    short = lambda n: n.removeprefix("stackspray.")  # noqa: E731
    for n in sorted(g, key=lambda n: (lay[n], n)):
        if n.startswith("stackspray.sandbox") or n == "stackspray":
            continue  # the sandbox is its own tree; listed with --sandbox
        deps = ", ".join(sorted(short(m) for m in g[n] if not m.startswith("stackspray.sandbox")))
        print(f"{lay[n]:>2}  {short(n):<20} {deps}")
    if "--sandbox" in sys.argv:
        for n in sorted((n for n in g if n.startswith("stackspray.sandbox")), key=lambda n: (lay[n], n)):
            print(f"{lay[n]:>2}  {short(n):<28} {', '.join(sorted(short(m) for m in g[n]))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
