"""`import task_engine_core` loads the standard library only."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig

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
