"""The backend seam: adapters import only the facade and `task_engine_core.backend`; the lifecycle and start rule."""

from __future__ import annotations

import ast
import inspect
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import task_engine_core
from task_engine_core import Backoff, Pipeline, PipelineExecutor, Task, TaskState, backend, retries
from task_engine_core.backend import (
    EventBus,
    OutcomeKind,
    RetryScheduled,
    StatsStore,
    TaskFinished,
    TaskLifecycle,
    TaskResult,
    TaskStarted,
    WaitFinished,
    WaitStarted,
    may_start,
    validated_pipeline,
)

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "task_engine_core": set(task_engine_core.__all__),
    "task_engine_core.backend": set(backend.__all__),
}


def core_imports(source: str) -> list[str]:
    """Every import of the core in `source` that goes past the facade and the backend seam."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("task_engine_core") and alias.name not in ALLOWED:
                    problems.append(f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("task_engine_core"):
            allowed = ALLOWED.get(node.module or "")
            for alias in node.names:
                if allowed is None:
                    problems.append(f"from {node.module} import {alias.name}")
                elif alias.name not in allowed or alias.name.startswith("_"):
                    problems.append(f"from {node.module} import {alias.name} (not public there)")
    return problems


@pytest.mark.parametrize("adapter", ["airflow", "airflow_dags", "prefect"])
def test_adapters_import_only_the_facade_and_the_backend_seam(adapter: str) -> None:
    assert core_imports((ROOT / "adapters" / f"{adapter}.py").read_text()) == []


def test_the_import_check_catches_deep_modules_and_private_names() -> None:
    source = (
        "from task_engine_core._secrets import error_text\n"
        "import task_engine_core._runtime\n"
        "from task_engine_core.backend import _stats_store\n"
        "from task_engine_core import Pipeline\n"
    )
    assert core_imports(source) == [
        "from task_engine_core._secrets import error_text",
        "import task_engine_core._runtime",
        "from task_engine_core.backend import _stats_store (not public there)",
    ]


def test_the_backend_seam_documents_every_name() -> None:
    for name in backend.__all__:
        value = getattr(backend, name)
        if isinstance(value, type) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), name


def test_may_start() -> None:
    assert may_start(started=False, failed=False, keep_going=False)
    assert not may_start(started=False, failed=True, keep_going=False)
    assert may_start(started=False, failed=True, keep_going=True)
    assert not may_start(started=False, failed=False, keep_going=True, stopping=True)
    # A started task finishes its retries whatever happened elsewhere.
    assert may_start(started=True, failed=True, keep_going=False, stopping=True)


def flaky_pipeline() -> Pipeline:
    pipeline = Pipeline("flaky")

    @pipeline.register
    class Flaky(Task):
        @retries(3, backoff=Backoff.constant(0.5))
        def perform_task(self):
            if self.attempt_state.attempt < 3:
                raise RuntimeError(f"attempt {self.attempt_state.attempt}")

        def retry_handler(self, error):
            return True

    return pipeline


def lifecycle_events(events: list[object]) -> list[tuple]:
    picked = []
    for event in events:
        if isinstance(event, RetryScheduled):
            picked.append(("retry", event.next_attempt, event.delay))
        elif isinstance(event, (WaitStarted, WaitFinished)):
            picked.append((type(event).__name__, event.reason))
        elif isinstance(event, (TaskStarted, TaskFinished)):
            picked.append((type(event).__name__,))
    return picked


def test_an_orchestrator_handing_off_retries_sees_the_events_and_result_of_the_executor() -> None:
    standalone: list[object] = []
    PipelineExecutor(flaky_pipeline(), reporters=[standalone.append], stats=False, sleep=lambda s: None).run()

    validated = validated_pipeline(flaky_pipeline())
    handed: list[object] = []
    lifecycle = TaskLifecycle(
        validated.definitions["Flaky"], validated.policies["Flaky"], "r", EventBus([handed.append])
    )
    lifecycle.start()
    number = 1
    while True:
        if number > 1:
            lifecycle.resume(number)
        outcome = lifecycle.attempt(number)
        if outcome.kind is not OutcomeKind.RETRY:
            break
        lifecycle.retry_handed_off(outcome)
        number += 1
    result = lifecycle.conclude(outcome)
    lifecycle.finish()

    assert (
        lifecycle_events(handed)
        == lifecycle_events(standalone)
        == [
            ("TaskStarted",),
            ("retry", 2, 0.5),
            ("WaitStarted", "retry"),
            ("WaitFinished", "retry"),
            ("retry", 3, 0.5),
            ("WaitStarted", "retry"),
            ("WaitFinished", "retry"),
            ("TaskFinished",),
        ]
    )
    assert (result.state, result.attempts, sorted(result.waits)) == (TaskState.SUCCESS, 3, ["retry"])


def test_a_run_seen_task_by_task_leaves_one_run_row_and_a_row_per_task(tmp_path: Path) -> None:
    store = StatsStore(tmp_path / "stats.sqlite3")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = TaskResult("a", TaskState.SUCCESS, 1, start, start + timedelta(seconds=2), 2.0)
    second = TaskResult(
        "b",
        TaskState.FAILED,
        2,
        start + timedelta(seconds=3),
        start + timedelta(seconds=6),
        3.0,
        RuntimeError("x"),
        waits={"retry": 1.0},
    )
    assert store.record_task("run-1", "p", first, tasks=2)
    assert store.record_task("run-1", "p", second, tasks=2)
    store.close()
    with sqlite3.connect(tmp_path / "stats.sqlite3") as connection:
        runs = connection.execute("SELECT run_id, tasks, outcome, duration FROM runs").fetchall()
        tasks = connection.execute("SELECT task, state, attempts, waited FROM task_runs ORDER BY task").fetchall()
    assert runs == [("run-1", 2, "failed", pytest.approx(6.0, abs=1e-3))]
    assert tasks == [("a", "success", 1, 0.0), ("b", "failed", 2, 1.0)]
    assert StatsStore(tmp_path / "stats.sqlite3").expected_durations("p") == {"a": 2.0, "b": 3.0}


def test_default_listeners_record_per_task_when_asked(tmp_path: Path) -> None:
    store = StatsStore(tmp_path / "stats.sqlite3")
    validated = validated_pipeline(flaky_pipeline())
    listeners = backend.default_listeners([], stats_store=store, per_task_stats=(validated, None))
    assert [type(listener).__name__ for listener in listeners] == ["TaskStatsRecorder"]
    assert [type(listener).__name__ for listener in backend.default_listeners([], stats_store=store)] == [
        "RunStatsRecorder"
    ]
