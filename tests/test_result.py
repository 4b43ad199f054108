"""RunResult: the one owner of a run's first failure and its counts per state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from task_engine_core import RunResult, TaskResult, TaskState

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _result(*tasks: TaskResult) -> RunResult:
    return RunResult("run-1", "p", {task.name: task for task in tasks})


def test_first_failure_is_the_failed_task_that_ended_first_not_the_first_in_plan_order() -> None:
    late = TaskResult("late", TaskState.FAILED, end=T0 + timedelta(seconds=5), error=ValueError("late"))
    early = TaskResult("early", TaskState.FAILED, end=T0 + timedelta(seconds=1), error=ValueError("early"))
    result = _result(TaskResult("ok", TaskState.SUCCESS, end=T0), late, early)
    assert result.first_failure is early
    assert [r.name for r in result.failed] == ["late", "early"]


def test_first_failure_keeps_plan_order_for_ties_and_puts_tasks_without_an_end_last() -> None:
    no_end = TaskResult("no_end", TaskState.FAILED)
    a = TaskResult("a", TaskState.FAILED, end=T0)
    b = TaskResult("b", TaskState.FAILED, end=T0)
    assert _result(no_end, a, b).first_failure is a
    assert _result(no_end).first_failure is no_end
    assert _result(TaskResult("ok", TaskState.SUCCESS)).first_failure is None


def test_counts_per_state_in_order_of_first_occurrence_and_count_reads_them() -> None:
    result = _result(
        TaskResult("a", TaskState.SUCCESS),
        TaskResult("b", TaskState.FAILED),
        TaskResult("c", TaskState.UPSTREAM_FAILED),
        TaskResult("d", TaskState.SUCCESS),
    )
    assert list(result.counts().items()) == [
        (TaskState.SUCCESS, 2),
        (TaskState.FAILED, 1),
        (TaskState.UPSTREAM_FAILED, 1),
    ]
    assert (result.count(TaskState.SUCCESS), result.count(TaskState.SKIPPED)) == (2, 0)
