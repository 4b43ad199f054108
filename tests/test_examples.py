"""The seed's two examples, run as `python run_examples.py <name>`, print the seed's lines."""

from __future__ import annotations

import os
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
        "Executing BaseTask", "Hello!", "Executing Task1", "Task1 failed with error 500, retrying...",
        "Task1 completed successfully", "Executing AlwaysFailsTask", "AlwaysFailsTask failed",
        "AlwaysFailsTask failed", "AlwaysFailsTask failed", "Skipping task due to error: AlwaysFailsTask failed",
        "Executing Task2", "Task2 completed successfully",
    ]


def test_tasks_run_2_ends_with_the_seed_traceback():
    done = run_example("tasks", "--seed", "9")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "Executing BaseTask", "Hello!", "Executing Task1", "Task1 failed with error 500, retrying...",
        "Task1 failed with error 401, no retries",
    ]
    lines = done.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert 'raise Exception(f"Error {status}")' in done.stderr
    assert lines[-2:] == ["Exception: Error 401", "Task Engine: task 'Task1' failed on attempt 2 (retry_handler declined to retry)"]


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


def _runnable_readme_samples() -> list[tuple[int, str]]:
    """Every ```python block of the README preceded by a `<!-- runnable -->` line, with its line number."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    samples = []
    for number, line in enumerate(lines):
        if line.strip() == "<!-- runnable -->":
            assert lines[number + 1] == "```python", f"README.md:{number + 1}: the runnable mark must precede a ```python block"
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
    done = subprocess.run([sys.executable, "sample.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"README.md:{line}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
