"""DESIGN's layers: imports point down only; the executor and what it stands on import no reporter, telemetry, backend or CLI."""

from __future__ import annotations

import ast
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "task_engine_core"
#: The executor and the layers under it (DESIGN.md, "Layers").
LOWER = ["_executor", "_lifecycle", "_runtime", "_pipeline", "_graph", "_policies"]
#: The layers above the executor: output, tracing, the backend seam, the default assembly, the entry point.
UPPER = ["reporters", "telemetry", "backend", "_defaults", "_cli", "_cli_history", "_cli_reporting", "__main__"]


def module_file(module: str, root: Path = PACKAGE) -> Path | None:
    """The file of `task_engine_core.<module>` (dotted, without the package), or None if there is none."""
    base = root.joinpath(*module.split(".")) if module else root
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """The package's modules `path` imports when it runs (lazy imports too; `if TYPE_CHECKING:` blocks left out)."""
    tree = ast.parse(path.read_text())
    parts = path.relative_to(root).with_suffix("").parts
    package = parts[:-1]  # the package a relative import starts from, for a module and an __init__ alike
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(inner) for child in node.body for inner in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "task_engine_core" or alias.name.startswith("task_engine_core."):
                    found.add(alias.name.removeprefix("task_engine_core").lstrip("."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = list(package[: len(package) - node.level + 1])
                base = ".".join([*anchor, *(node.module.split(".") if node.module else [])])
            elif (node.module or "").split(".")[0] == "task_engine_core":
                base = (node.module or "").removeprefix("task_engine_core").lstrip(".")
            else:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}" if base else alias.name
                found.add(submodule if module_file(submodule, root) else base)
    return found


def import_closure(start: str, root: Path = PACKAGE) -> dict[str, list[str]]:
    """Every package module that importing `start` can run, each with one import chain leading to it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        module = todo.pop()
        path = module_file(module, root)
        assert path is not None, module
        imported = imported_modules(path, root)
        # Importing a.b runs a/__init__ first.
        imported |= {".".join(name.split(".")[:i]) for name in imported for i in range(1, name.count(".") + 1)}
        for name in sorted(imported - chains.keys()):
            if module_file(name, root) is None:
                continue
            chains[name] = [*chains[module], name]
            todo.append(name)
    return chains


def upward_imports(start: str, root: Path = PACKAGE) -> list[str]:
    """The import chains from `start` that reach a layer above the executor."""
    return [
        " -> ".join(chain)
        for name, chain in sorted(import_closure(start, root).items())
        if any(name == upper or name.startswith(f"{upper}.") for upper in UPPER)
    ]


def recorded_runs(path: Path) -> int:
    """How many runs the statistics file at `path` holds (0 when there is no file)."""
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return connection.execute("SELECT count(*) FROM runs").fetchone()[0] if "runs" in tables else 0


@pytest.mark.parametrize("module", LOWER)
def test_the_executor_and_the_layers_below_it_import_nothing_above_them(module: str) -> None:
    assert upward_imports(module) == []


def test_the_layer_check_follows_chains_lazy_imports_and_packages(tmp_path: Path) -> None:
    (tmp_path / "reporters").mkdir()
    (tmp_path / "reporters" / "__init__.py").write_text("")
    (tmp_path / "reporters" / "_console.py").write_text("")
    (tmp_path / "_policies").mkdir()
    (tmp_path / "_policies" / "__init__.py").write_text("from ._retry import retries\n")
    (tmp_path / "_policies" / "_retry.py").write_text("def retries():\n    from .._helper import x\n")
    (tmp_path / "_helper.py").write_text("from .reporters._console import ConsoleReporter\n")
    (tmp_path / "_graph.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import backend\nfrom .errors import E\n"
    )
    (tmp_path / "backend.py").write_text("")
    (tmp_path / "errors.py").write_text("")
    assert upward_imports("_policies", tmp_path) == [
        "_policies -> _policies._retry -> _helper -> reporters",
        "_policies -> _policies._retry -> _helper -> reporters._console",
    ]
    assert upward_imports("_graph", tmp_path) == []  # an import for type checking only does not run


def test_the_executor_has_only_the_listeners_it_is_given_and_the_facade_adds_the_defaults(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from task_engine_core import Pipeline, PipelineExecutor
    from task_engine_core._executor import ExecutorCore
    from task_engine_core.events import Event

    pipeline = Pipeline("layers")

    @pipeline.register()
    def hello() -> None:
        print("Hello!")

    heard: list[Event] = []
    ExecutorCore(pipeline, stats=tmp_path / "stats.sqlite3", listeners=[heard.append]).run()
    assert capsys.readouterr().out == "Hello!\n"  # no console reporter
    assert [type(event).__name__ for event in heard] == [
        "RunStarted",
        "TaskStarted",
        "AttemptStarted",
        "TaskFinished",
        "RunFinished",
    ]
    assert recorded_runs(tmp_path / "stats.sqlite3") == 0  # read for priority, but no statistics recorder

    PipelineExecutor(pipeline, stats=tmp_path / "stats.sqlite3").run()
    assert capsys.readouterr().out == "Executing hello\nHello!\n"
    assert recorded_runs(tmp_path / "stats.sqlite3") == 1
