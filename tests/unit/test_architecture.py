"""The layering of src/stackspray (docs/architecture.md), read from the source with `ast` by
scripts/import_graph.py (the script that prints the doc's figure).

- no import cycle between stackspray's modules;
- no import inside a function (a lazy import hides a cycle or a layering mistake);
- nothing imports from tests/ (the product runs without its test suite);
- no module finds the project's files by counting parent folders (stackspray.paths does that).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "import_graph.py"
_spec = importlib.util.spec_from_file_location("import_graph", _SCRIPT)
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)
SRC, PKG = import_graph.SRC, import_graph.PKG
modules, imports_of, graph = import_graph.modules, import_graph.imports_of, import_graph.graph


def test_no_import_cycle():
    g = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for m in sorted(g[n]):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m) :] + [m])
            elif m not in state:
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(g):
        if n not in state:
            visit(n, [n])
    assert not cycles, f"import cycles: {cycles}"


def test_no_import_inside_a_function():
    lazy = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        lazy.append(f"{path.relative_to(SRC)}:{sub.lineno} {ast.unparse(sub)}")
    assert not lazy, "imports inside functions:\n" + "\n".join(lazy)


def test_nothing_imports_from_tests_or_points_into_tests():
    bad = []
    for name, path in modules().items():
        text = path.read_text()
        if any(i == "tests" or i.startswith("tests.") for i in imports_of(name, path)):
            bad.append(f"{path}: imports tests")
        if '"tests"' in text or "'tests'" in text or "tests/" in text.replace("# ", ""):
            bad.append(f"{path}: names tests/")
    assert not bad, bad


def test_only_paths_counts_parent_folders():
    bad = [
        str(p.relative_to(SRC))
        for n, p in modules().items()
        if ".parents[" in p.read_text() and p != PKG / "paths.py"
    ]
    assert not bad, f"use stackspray.paths instead: {bad}"


def test_the_graph_is_what_the_scan_reads():
    """The scan itself can fail: it sees the known edges."""
    g = graph()
    assert "stackspray.names" in g["stackspray.plan"] and "stackspray.cloudops" in g["stackspray.apply"]
    assert "stackspray.cluster" not in g["stackspray.scale"]


def test_test_module_basenames_are_unique():
    """The test folders are not packages: two modules of one basename stop pytest at collection."""
    tests = Path(__file__).resolve().parents[1]
    names = [p.name for p in tests.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_the_docs_figure_is_what_the_code_imports():
    """docs/architecture.md's layer figure is generated; it must not drift from the code."""
    doc = import_graph.doc_figure(import_graph.DOC.read_text())
    assert doc is not None, "docs/architecture.md lost its FIGURE markers"
    assert doc == import_graph.figure(), "the figure is stale: run `python3 scripts/import_graph.py --write`"


def test_the_product_knows_no_sandbox():
    """What differs on the test cloud is a property of the target (stackspray.target), decided
    by the sandbox's own provider: no product module imports the sandbox or asks for it by name."""
    bad = []
    for name, path in modules().items():
        if any(i.startswith("stackspray_sandbox") for i in imports_of(name, path)):
            bad.append(f"{path}: imports the sandbox")
        if "is_sandbox" in path.read_text():
            bad.append(f"{path}: asks is_sandbox")
    assert not bad, bad


def test_the_agent_imports_only_what_its_wheels_install():
    """The autoscaler's agent runs on a node from a venv with AGENT_REQUIREMENTS alone
    (agent_wheels.py): importing it must not pull in Ansible, invoke, testinfra or the others
    only the operator's machine has."""
    probe = (
        "import sys, stackspray.autoscale_agent;"
        "heavy = ('ansible', 'ansible_runner', 'invoke', 'testinfra', 'paramiko', 'jinja2', 'pytest');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
