"""The seed's two examples, run as `python run_examples.py <name>`, print the seed's lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(*args):
    return subprocess.run([sys.executable, "run_examples.py", *args], capture_output=True, text=True, cwd=ROOT)


def test_jobs_prints_exactly_the_seed_lines():
    done = run_example("jobs")
    assert done.returncode == 0
    assert done.stdout == (
        "Executing Job2Task1\nHello from Job2, Task1!\nExecuting Job2Task2\nHello from Job2, Task2!\n"
        "Executing Job1Task1\nHello from Job1, Task1!\nExecuting Job1Task2\nHello from Job1, Task2!\n"
    )


def test_tasks_run_1():
    done = run_example("tasks", "--seed", "7")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "Executing BaseTask",
        "Hello!",
        "Executing Task1",
        "Task1 failed with error 500, retrying...",
        "Task1 completed successfully",
        "Executing AlwaysFailsTask",
        "AlwaysFailsTask failed",
        "AlwaysFailsTask failed",
        "AlwaysFailsTask failed",
        "Skipping task due to error: AlwaysFailsTask failed",
        "Executing Task2",
        "Task2 completed successfully",
    ]


def test_tasks_run_2_ends_with_the_seed_traceback():
    done = run_example("tasks", "--seed", "9")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "Executing BaseTask",
        "Hello!",
        "Executing Task1",
        "Task1 failed with error 500, retrying...",
        "Task1 failed with error 401, no retries",
    ]
    lines = done.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert 'raise Exception(f"Error {status}")' in done.stderr
    assert lines[-2:] == [
        "Exception: Error 401",
        "Task Engine: task 'Task1' failed on attempt 2 (retry_handler declined to retry)",
    ]


def test_context_rate_limit_example_masks_the_secret_and_waits_for_tokens():
    done = run_example("context_rate_limit")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        "Executing StartCluster",
        "Starting example-cluster at http://127.0.0.1:8080/api",
        "Context: TaskContext({'url': 'http://127.0.0.1:8080/api', 'token': '***'})",
        "Executing wait_for_cluster",
    ]
    assert "example-cluster is ready" in lines
    requests = [line for line in lines if line.startswith("GET ")]
    assert len(requests) == 6
    # Burst of 2 at 4 per second: the first two are free, the rest wait for a token.
    assert [line.endswith("(waited 0.00 s)") for line in requests] == [True, True, False, False, False, False]
    assert "example-token-not-real" not in done.stdout


@pytest.mark.parametrize("workers", [1, 3])
def test_databricks_fan_out_example_polls_each_run_through_the_rate_limit(tmp_path, workers):
    summary = tmp_path / "run.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "task_engine_core",
            "run",
            "examples.databricks_fan_out",
            "--workers",
            str(workers),
            "--json",
            str(summary),
            "--no-stats",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "ListRuns: 5 runs" in lines
    # Instances print from several threads, next to the console reporter's lines: find each poll's text.
    assert sorted(re.findall(r"PollRun: run \d+ is [A-Z]+", done.stdout)) == [
        "PollRun: run 1001 is TERMINATED",
        "PollRun: run 1002 is TERMINATED",
        "PollRun: run 1003 is TERMINATED",
        "PollRun: run 1004 is RUNNING",
        "PollRun: run 1005 is TERMINATED",
    ]
    # Only the instance that met the 429 retried, honouring its Retry-After.
    assert re.findall(r"PollRun\[\d+\]: 429 .*?\(attempt \d+ of \d+\)", done.stdout) == [
        "PollRun[2]: 429 from GET .../runs/get, retrying in 1.0 s as Retry-After asks (attempt 2 of 4)"
    ]
    assert "Report: 5 runs, failed: [1002], still running: [1004]" in lines
    assert "Workspace saw 7 requests, 0 over its limit" in lines
    tasks = {task["name"]: task for task in json.loads(summary.read_text(encoding="utf-8"))["tasks"]}
    assert {name: (task["state"], task["attempts"]) for name, task in tasks.items()} == {
        "StartWorkspace": ("success", 1),
        "ListRuns": ("success", 1),
        "PollRun": ("success", 6),
        "PollRun[0]": ("success", 1),
        "PollRun[1]": ("success", 1),
        "PollRun[2]": ("success", 2),
        "PollRun[3]": ("success", 1),
        "PollRun[4]": ("success", 1),
        "Report": ("success", 1),
    }
    assert tasks["ListRuns"]["output"] == "[1001, 1002, 1003, 1004, 1005]"
    assert tasks["Report"]["output"] == "{'failed': [1002], 'running': [1004]}"
    # Five polls plus one retry at 4 per second with a burst of 2: some instance waited for a token.
    assert sum(task["waits"].get("rate_limit", 0.0) for name, task in tasks.items() if name.startswith("PollRun[")) > 0


def _runnable_readme_samples() -> list[tuple[int, str]]:
    """Every ```python block of the README preceded by a `<!-- runnable -->` line, with its line number."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    samples = []
    for number, line in enumerate(lines):
        if line.strip() == "<!-- runnable -->":
            assert lines[number + 1] == "```python", (
                f"README.md:{number + 1}: the runnable mark must precede a ```python block"
            )
            end = lines.index("```", number + 2)
            samples.append((number + 3, "\n".join(lines[number + 2 : end]) + "\n"))
    return samples


SAMPLES = _runnable_readme_samples()


def test_the_readme_marks_samples_as_runnable():
    assert len(SAMPLES) >= 2


@pytest.mark.parametrize(("line", "code"), SAMPLES, ids=[f"README.md:{line}" for line, _ in SAMPLES])
def test_every_runnable_readme_sample_runs_as_shown(tmp_path, line, code):
    (tmp_path / "sample.py").write_text(code, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TASK_ENGINE_STATS="off")
    done = subprocess.run(
        [sys.executable, "sample.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"README.md:{line}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
