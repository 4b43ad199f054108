"""TASK_ENGINE_STATS=<path> and =off are honoured by every reader and writer of statistics.

Each case starts from two recorded histories that order the same three tasks differently: one in
the file TASK_ENGINE_STATS names, one in the working directory's default file (a decoy that only
a reader resolving the location on its own would find).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from task_engine_core import RunResult, TaskResult, TaskState
from task_engine_core._stats import StatsStore

ROOT = Path(__file__).resolve().parent.parent

PIPELINE = """
from task_engine_core import register


@register
def a():
    pass


@register
def b():
    pass


@register
def c():
    pass
"""

#: The configured file says c, b, a; the decoy says b, a, c; registration order is a, b, c.
CONFIGURED = {"a": 60.0, "b": 120.0, "c": 300.0}
DECOY = {"a": 600.0, "b": 900.0, "c": 60.0}


def record(path: Path, durations: dict[str, float], pipeline: str = "pipe") -> None:
    """One synthetic successful run of `pipeline` with these durations (a real SQLite write)."""
    now = datetime.now(UTC)
    tasks = {
        name: TaskResult(name, TaskState.SUCCESS, attempts=1, start=now, end=now, duration=seconds)
        for name, seconds in durations.items()
    }
    store = StatsStore(path, create_directory=True)
    assert store.record(RunResult(uuid.uuid4().hex, pipeline, tasks, start=now, end=now, duration=1.0))
    store.close()


def run_count(path: Path) -> int:
    store = StatsStore(path, read_only=True)
    try:
        return store.run_count("pipe")
    finally:
        store.close()


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A working directory with the pipeline and a decoy default statistics file; the configured file beside it."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "pipe.py").write_text(PIPELINE)
    record(work / ".task_engine" / "stats.sqlite3", DECOY)
    record(tmp_path / "configured.sqlite3", CONFIGURED)
    return work


def cli(work: Path, stats: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TASK_ENGINE_STATS": stats}
    done = subprocess.run(
        [sys.executable, "-m", "task_engine_core", *args], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def configured(work: Path) -> Path:
    return work.parent / "configured.sqlite3"


def decoy(work: Path) -> Path:
    return work / ".task_engine" / "stats.sqlite3"


def test_a_run_records_into_the_configured_file_and_orders_by_it(project: Path) -> None:
    out = cli(project, str(configured(project)), "run", "pipe.py", "--plan")
    assert "Execution plan: c -> b -> a" in out  # priority read from the configured file
    assert (run_count(configured(project)), run_count(decoy(project))) == (2, 1)


def test_off_a_run_neither_reads_nor_writes_statistics(project: Path) -> None:
    out = cli(project, "off", "run", "pipe.py", "--plan")
    assert "Execution plan: a -> b -> c" in out  # registration order: no statistics read
    assert (run_count(configured(project)), run_count(decoy(project))) == (1, 1)


def progress_etas(out: str) -> list[str]:
    return re.findall(r"\(ETA ([0-9:]+)\)", out)


def test_the_progress_eta_reads_the_configured_file(project: Path) -> None:
    out = cli(project, str(configured(project)), "run", "pipe.py", "--progress")
    # c (300 s expected) finished first; b and a are left: 120 + 60 s on one worker.
    assert re.search(r"\[1/3\] c success in \d+\.\d\d s \(ETA 3:00\)", out), out
    assert progress_etas(out) == ["3:00", "1:00"]


def test_off_the_progress_shows_no_eta(project: Path) -> None:
    out = cli(project, "off", "run", "pipe.py", "--progress")
    assert re.search(r"\[1/3\] a success in \d+\.\d\d s$", out, re.MULTILINE), out
    assert progress_etas(out) == []  # the decoy's durations would give one


def test_the_stats_command_reads_the_configured_file(project: Path) -> None:
    out = cli(project, str(configured(project)), "stats", "pipe.py")
    assert f"pipeline 'pipe': 1 run(s) recorded in {str(configured(project))!r}" in out
    assert re.search(r"^c\s+1\s+300\.000s", out, re.MULTILINE), out  # the configured file's 300 s, not the decoy's 60
    assert cli(project, "off", "stats", "pipe.py").strip() == "statistics are off (TASK_ENGINE_STATS=off)"


def test_the_runs_command_reads_the_configured_file(project: Path) -> None:
    out = cli(project, str(configured(project)), "runs", "pipe.py")
    assert f"pipeline 'pipe': 1 recorded run(s) in {str(configured(project))!r}, newest first" in out
    assert (
        cli(project, "off", "runs", "pipe.py").strip()
        == "statistics are off (TASK_ENGINE_STATS=off); no runs are recorded"
    )


def test_a_dry_run_names_the_configured_file(project: Path) -> None:
    out = cli(project, str(configured(project)), "run", "pipe.py", "--dry-run")
    assert f"statistics: {str(configured(project))!r} (writable)" in out
    assert cli(project, "off", "run", "pipe.py", "--dry-run").splitlines()[-1] == "statistics: off"
    assert (run_count(configured(project)), run_count(decoy(project))) == (1, 1)


def test_without_the_variable_every_reader_uses_the_working_directorys_file(project: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "TASK_ENGINE_STATS"}
    env["PYTHONPATH"] = str(ROOT)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "task_engine_core", *args], cwd=project, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    assert "Execution plan: b -> a -> c" in run("run", "pipe.py", "--plan")
    assert f"2 recorded run(s) in {str(decoy(project))!r}" in run("runs", "pipe.py")
