"""Priority of ready tasks: registration order without statistics, critical path with them."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from task_engine_core import Pipeline, PipelineExecutor, RunResult, TaskResult, TaskState
from task_engine_core._cli import main
from task_engine_core._priority import (
    fill_unknown_durations,
    planned_order,
    priority_keys,
    registration_keys,
    start_ranks,
)
from task_engine_core._stats import StatsStore
from task_engine_core.events import RunStarted, TaskStarted


def trap(name: str = "trap", shorts: int = 4, chain: int = 3, nap: float = 0.0) -> Pipeline:
    """Short independent tasks registered first, a long chain registered last."""
    pipeline = Pipeline(name)
    for i in range(shorts):
        pipeline.add(lambda: None, name=f"short{i}")
    for i in range(chain):
        pipeline.add(lambda: time.sleep(nap), name=f"long{i}", depends_on=[f"long{i - 1}"] if i else [])
    return pipeline


def record(store: StatsStore, pipeline: str, durations: dict[str, float]) -> None:
    """Store one synthetic successful run with the given task durations (a real SQLite write)."""
    now = datetime.now(UTC)
    tasks = {
        name: TaskResult(name, TaskState.SUCCESS, attempts=1, start=now, end=now, duration=seconds)
        for name, seconds in durations.items()
    }
    assert store.record(RunResult(uuid.uuid4().hex, pipeline, tasks, start=now, end=now, duration=1.0))


def start_order(pipeline: Pipeline, **options: object) -> list[str]:
    started: list[str] = []
    lock = threading.Lock()

    def listen(event: object) -> None:
        if isinstance(event, TaskStarted):
            with lock:
                started.append(event.task)

    PipelineExecutor(pipeline, reporters=[], listeners=[listen], **options).run()  # type: ignore[arg-type]
    return started


def test_without_statistics_ready_tasks_start_in_registration_order() -> None:
    validated = trap().validate()
    keys = priority_keys(validated, {})
    assert keys == registration_keys(validated)
    assert planned_order(validated, keys) == validated.order
    assert list(validated.order) == ["short0", "short1", "short2", "short3", "long0", "long1", "long2"]


def test_with_durations_the_longest_remaining_path_starts_first() -> None:
    validated = trap().validate()
    durations = {f"short{i}": 0.1 for i in range(4)} | {"long0": 1.0, "long1": 1.0, "long2": 1.0}
    keys = priority_keys(validated, durations)
    assert keys["long0"] == (-0.0, -3.0, 4)
    assert keys["long2"] == (-0.0, -1.0, 6)
    assert keys["short0"] == (-0.0, -0.1, 0)
    assert planned_order(validated, keys) == ("long0", "long1", "long2", "short0", "short1", "short2", "short3")


def test_an_explicit_priority_wins_over_the_critical_path() -> None:
    pipeline = trap()
    pipeline.add(lambda: None, name="urgent", priority=5)
    pipeline.add(lambda: None, name="whenever", priority=-1)
    validated = pipeline.validate()
    durations = {f"short{i}": 0.1 for i in range(4)} | {"long0": 10.0, "long1": 10.0, "long2": 10.0}
    order = planned_order(validated, priority_keys(validated, durations))
    assert order[0] == "urgent"
    assert order[1:4] == ("long0", "long1", "long2")
    assert order[-1] == "whenever"


def test_tasks_without_history_count_as_the_mean_of_the_others() -> None:
    assert fill_unknown_durations(["a", "b", "c"], {"a": 1.0, "b": 3.0}) == {"a": 1.0, "b": 3.0, "c": 2.0}
    assert fill_unknown_durations(["a"], {}) == {}


def test_the_executor_orders_by_recorded_durations(tmp_path: Path) -> None:
    store = StatsStore(tmp_path / "stats.sqlite3")
    pipeline = trap()
    assert start_order(pipeline, stats=store)[:4] == ["short0", "short1", "short2", "short3"]  # first run
    record(store, "trap", {f"short{i}": 0.01 for i in range(4)} | {"long0": 2.0, "long1": 2.0, "long2": 2.0})
    record(store, "trap", {"short3": 0.5})  # one slower run of short3: averaged with the others
    expected = store.expected_durations("trap")
    assert expected["short3"] > expected["short0"]
    order = start_order(pipeline, stats=store)
    assert order[:3] == ["long0", "long1", "long2"]
    assert order[3] == "short3"  # the longest of the shorts next


def test_the_plan_line_shows_the_priority_order(tmp_path: Path) -> None:
    store = StatsStore(tmp_path / "stats.sqlite3")
    record(store, "trap", {f"short{i}": 0.1 for i in range(4)} | {"long0": 1.0, "long1": 1.0, "long2": 1.0})
    plans: list[tuple[str, ...]] = []
    result = PipelineExecutor(
        trap(),
        reporters=[],
        listeners=[lambda e: plans.append(e.plan) if isinstance(e, RunStarted) else None],
        stats=store,
    ).run()
    assert plans[0][:3] == ("long0", "long1", "long2")
    assert tuple(result.tasks) == plans[0]


def test_priority_off_keeps_registration_order(tmp_path: Path) -> None:
    store = StatsStore(tmp_path / "stats.sqlite3")
    record(store, "trap", {"long0": 5.0, "long1": 5.0, "long2": 5.0})
    pipeline = trap()
    pipeline.add(lambda: None, name="urgent", priority=5)
    assert start_order(pipeline, stats=store, priority=False) == [
        "short0",
        "short1",
        "short2",
        "short3",
        "long0",
        "long1",
        "long2",
        "urgent",
    ]


def test_two_real_runs_second_starts_the_long_chain_first(tmp_path: Path) -> None:
    """The priority trap in small: real durations recorded by the first run steer the second."""
    store = StatsStore(tmp_path / "stats.sqlite3")
    pipeline = trap(shorts=6, chain=2, nap=0.03)
    first = start_order(pipeline, stats=store)
    assert first == ["short0", "short1", "short2", "short3", "short4", "short5", "long0", "long1"]
    second = start_order(pipeline, stats=store)
    assert second[:2] == ["long0", "long1"]


def test_cli_no_priority_runs_in_registration_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ordered.py"
    target.write_text(
        "from task_engine_core import register\n\n"
        "@register\ndef a():\n    pass\n\n"
        "@register(priority=3)\ndef b():\n    pass\n"
    )
    database = tmp_path / "stats.sqlite3"
    assert main(["run", str(target), "--stats", str(database)]) == 0
    assert capsys.readouterr().out == "Executing b\nExecuting a\n"
    assert main(["run", str(target), "--stats", str(database), "--no-priority"]) == 0
    assert capsys.readouterr().out == "Executing a\nExecuting b\n"


def test_start_ranks_follow_the_keys() -> None:
    validated = trap().validate()
    assert start_ranks(registration_keys(validated)) == {name: i for i, name in enumerate(validated.order)}
    durations = {f"short{i}": 0.1 * i for i in range(4)} | {"long0": 1.0, "long1": 1.0, "long2": 1.0}
    ranks = start_ranks(priority_keys(validated, durations))
    assert sorted(ranks, key=ranks.__getitem__) == ["long0", "long1", "long2", "short3", "short2", "short1", "short0"]
