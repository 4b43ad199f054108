"""`import task_engine_core` loads the standard library only."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import task_engine_core

SCRIPT = """
import json, sys
before = set(sys.modules)
import task_engine_core
import task_engine_core._cli, task_engine_core._loader
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_core_imports_only_the_standard_library():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    stdlib = set(sys.stdlib_module_names)
    third_party = sorted(
        {name.split(".")[0] for name in loaded}
        - stdlib
        - {"task_engine_core"}
        - {n for n in loaded if n.startswith("_")}
    )
    assert third_party == [], f"import task_engine_core loaded {third_party}"
    assert "task_engine_core" in loaded and sysconfig.get_paths()["stdlib"]


def test_public_names_of_the_design():
    import task_engine_core

    for name in (
        "Task",
        "register",
        "retries",
        "skippable",
        "Pipeline",
        "PipelineExecutor",
        "RunResult",
        "TaskResult",
        "TaskState",
        "TaskContext",
        "TaskEngineError",
    ):
        assert name in task_engine_core.__all__ and hasattr(task_engine_core, name), name


RUN_SCRIPT = """
import json, sys
from task_engine_core import _cli as cli
code = cli.main(["run", sys.argv[1]])
print(json.dumps([code, sorted(sys.modules)]))
"""


def test_cli_run_imports_no_reporter_checker_or_library_the_run_does_not_use(tmp_path):
    (tmp_path / "one.py").write_text("from task_engine_core import register\n\n\n@register\ndef only():\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT, "one.py"], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    code, loaded = json.loads(done.stdout.splitlines()[-1])
    assert code == 0 and "Executing only" in done.stdout
    unused = {
        "task_engine_core.reporters._html_report",
        "task_engine_core.reporters._json_summary",
        "task_engine_core.reporters._record",
        "task_engine_core.reporters._run_view",
        "task_engine_core.reporters._progress",
        "task_engine_core.reporters._html",
        "task_engine_core.telemetry._listener",
        "task_engine_core._check",
        "statistics",
        "uuid",
        "yaml",
        "requests",
        "redis",
        "psycopg",
        "opentelemetry",
        "airflow",
        "prefect",
    }
    assert sorted(unused & set(loaded)) == []


PUBLIC_MODULES = {"__init__", "__main__", "backend", "errors", "events", "sensible_defaults"}
PUBLIC_PACKAGES = {"http", "reporters", "telemetry"}


def test_implementation_modules_are_private_and_every_public_one_declares_its_names() -> None:
    root = Path(task_engine_core.__file__).parent
    public = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if any(part.startswith("_") and part not in ("__init__", "__main__") for part in parts):
            continue
        public.append("/".join(parts))
    expected = sorted(
        [m for m in PUBLIC_MODULES if (root / f"{m}.py").exists()] + [f"{p}/__init__" for p in PUBLIC_PACKAGES]
    )
    assert sorted(public) == expected
    for name in [*sorted(PUBLIC_MODULES - {"__init__", "__main__"}), *sorted(PUBLIC_PACKAGES)]:
        module = importlib.import_module(f"task_engine_core.{name}")
        assert isinstance(getattr(module, "__all__", None), list), name


def test_every_name_of_the_facade_is_documented() -> None:
    for name in task_engine_core.__all__:
        value = getattr(task_engine_core, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), name
