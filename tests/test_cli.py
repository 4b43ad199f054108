"""The command line, run as a user would: a real subprocess, exit codes and output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "task_engine_core", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_run_module_target_prints_the_seed_lines():
    done = cli("run", "examples.jobs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Executing Job2Task1",
        "Hello from Job2, Task1!",
        "Executing Job2Task2",
        "Hello from Job2, Task2!",
        "Executing Job1Task1",
        "Hello from Job1, Task1!",
        "Executing Job1Task2",
        "Hello from Job1, Task2!",
    ]


def test_plan_flag_and_threads():
    done = cli("run", "examples.jobs", "--plan", "--workers", "3")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "Execution plan: Job2Task1 -> Job2Task2 -> Job1Task1 -> Job1Task2"


def test_failed_task_exits_1_with_a_summary_then_the_traceback(tmp_path):
    file = tmp_path / "fails.py"
    file.write_text(
        textwrap.dedent("""
        from task_engine_core import register

        @register
        def extract():
            raise ValueError("Error 401")
    """)
    )
    done = cli("run", str(file), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == "task 'extract' failed after 1 attempt(s): ValueError: Error 401"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-3:-1] == [
        "ValueError: Error 401",
        "Task Engine: task 'extract' failed on attempt 1 (no retries configured)",
    ]
    assert re.fullmatch(r"run finished in \d+\.\d\d s: 1 failed", lines[-1])  # which tasks then did not run


def test_definition_error_exits_2_without_traceback(tmp_path):
    file = tmp_path / "cycle.py"
    file.write_text(
        textwrap.dedent("""
        from task_engine_core import register

        @register(depends_on="b")
        def a():
            pass

        @register(depends_on="a")
        def b():
            pass
    """)
    )
    done = cli("run", str(file), cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "error: dependency cycle: a -> b -> a; remove one of these dependencies\n"


def test_unknown_target_exits_2():
    done = cli("run", "examples.nope")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: no module named 'examples.nope'")


def test_bad_workers_exit_2():
    for value, message in (
        ("0", "'0': the number of workers must be at least 1"),
        ("many", "'many' is not a whole number; use e.g. --workers 4"),
    ):
        done = cli("run", "examples.jobs", "--workers", value)
        assert done.returncode == 2 and done.stderr.splitlines()[-1] == f"error: argument --workers: {message}"


def test_list_shows_tasks_dependencies_and_policies():
    done = cli("list", "examples.tasks")
    assert done.returncode == 0
    lines = [line.split() for line in done.stdout.splitlines()]
    assert lines[0] == ["pipeline", "'examples.tasks':", "4", "tasks"]
    assert lines[3] == [
        "AlwaysFailsTask",
        "depends",
        "on:",
        "Task1",
        "retries=3",
        "(constant",
        "backoff",
        "from",
        "1s)",
        "skippable",
    ]


def test_help_explains_commands_and_exit_codes():
    done = cli("--help")
    assert done.returncode == 0
    assert "run a pipeline" in done.stdout and "Exit codes: 0 success, 1 a task failed" in " ".join(done.stdout.split())
    run_help = cli("run", "--help").stdout
    assert "--workers" in run_help and "--keep-going" in run_help and "TARGET" in run_help


def test_cli_default_is_one_worker_in_the_main_thread(tmp_path):
    file = tmp_path / "where.py"
    file.write_text(
        textwrap.dedent("""
        import threading
        from task_engine_core import register

        @register
        def where():
            print(threading.current_thread().name)
    """)
    )
    done = cli("run", str(file), cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.splitlines() == ["Executing where", "MainThread"]
    threaded = cli("run", str(file), "--workers", "2", cwd=tmp_path)
    assert threaded.stdout.splitlines()[1].startswith("task-engine-worker-")


def test_pipeline_with_no_tasks_exits_2(tmp_path):
    file = tmp_path / "empty_pipe.py"
    file.write_text("x = 1\n")
    done = cli("run", str(file), cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "error: pipeline 'empty_pipe' has no tasks; decorate a Task subclass or function with @register\n",
    )


def test_syntax_and_import_errors_in_the_users_module_exit_2_naming_file_and_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("from task_engine_core import register\n\n@register\ndef a(:\n    pass\n")
    done = cli("run", str(broken), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == f"error: cannot load {str(broken)!r}: syntax error in {broken}, line 4: invalid syntax\n"
    missing = tmp_path / "needs_missing.py"
    missing.write_text("import json\nfrom not_installed_lib import thing\n")
    done = cli("run", str(missing), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == (
        f"error: cannot load {str(missing)!r}: ModuleNotFoundError: No module named 'not_installed_lib' at {missing}, line 2\n"
    )


def test_version_prints_the_installed_version_and_exits_0():
    import subprocess
    import sys

    import task_engine_core

    done = subprocess.run(
        [sys.executable, "-m", "task_engine_core", "--version"],
        capture_output=True,
        text=True,
        cwd=Path(task_engine_core.__file__).parents[1],
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"task-engine {task_engine_core.__version__}\n", "")
    assert re.fullmatch(r"\d+\.\d+\.\d+", task_engine_core.__version__)


def test_prefix_output_names_the_task_on_each_line_it_prints(tmp_path):
    file = tmp_path / "talkers.py"
    file.write_text(
        textwrap.dedent("""
        import sys
        from task_engine_core import register

        @register
        def one():
            print("one says", 1)
            sys.stdout.write("partial ")
            sys.stdout.write("line\\nand more\\n")

        @register
        def two():
            print("two says", 2)
    """)
    )
    done = cli("run", str(file), "--workers", "2", "--prefix-output", "--no-stats", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line for line in lines if not line.startswith("Executing ")) == [
        "[one] and more",
        "[one] one says 1",
        "[one] partial line",
        "[two] two says 2",
    ]
    assert sorted(line for line in lines if line.startswith("Executing ")) == ["Executing one", "Executing two"]
    plain = cli("run", str(file), "--workers", "2", "--no-stats", cwd=tmp_path)  # off by default
    # Without the flag prints go straight through (another thread's line may land inside one).
    assert "one says" in plain.stdout and "[one]" not in plain.stdout  # print() writes "1" separately
