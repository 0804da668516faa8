"""Dependencies one way (issue 31): ``sweeps`` builds on ``jena``, never the other way round.

The core and its command line draw the live board, the end-of-sweep table and the report's
search plots from events and the MLflow store, driver-neutral. The one place ``jena`` reaches
into ``sweeps`` is the ``jena sweep`` command itself (:func:`jena.cli.sweep.cmd_sweep`, a lazy
import): running a sweep is the sweeps package's work."""

from __future__ import annotations

import ast
from pathlib import Path

import jena

ROOT = Path(jena.__file__).resolve().parent
# (file under jena/, the function holding the import): the documented entry point
ALLOWED = {("cli/sweep.py", "cmd_sweep")}


def _sweeps_imports(path: Path) -> list[tuple[str, int, str]]:
    """(enclosing function or "<module>", line, what) for each import of ``sweeps`` in
    ``path`` (absolute imports only: ``jena`` has no relative way to reach it)."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            else:
                names = []
            found.extend((where, child.lineno, name) for name in names
                         if name == "sweeps" or name.startswith("sweeps."))  # fmt: skip
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), "<module>")
    return found


def test_nothing_under_jena_imports_sweeps_but_the_sweep_command() -> None:
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) > 50  # the whole package is walked
    edges, entry = [], []
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        for where, line, what in _sweeps_imports(path):
            found = f"jena/{name}:{line} ({where}) imports {what}"
            (entry if (name, where) in ALLOWED else edges).append(found)
    assert edges == [], "\n".join(edges)
    assert entry, "the documented entry point (jena sweep) no longer imports sweeps: drop it"


def test_the_walk_finds_an_import_of_sweeps(tmp_path: Path) -> None:
    """The check itself: each spelling of an import of ``sweeps`` is found, with where."""
    source = tmp_path / "m.py"
    source.write_text("import sweeps.state\nfrom sweeps import run_sweep\n"
                      "def f():\n    from sweeps.display import Board\n"
                      "import sweepstakes\nfrom .sweeps import x\n")  # fmt: skip
    assert _sweeps_imports(source) == [("<module>", 1, "sweeps.state"), ("<module>", 2, "sweeps"),
                                       ("f", 4, "sweeps.display")]  # fmt: skip
