"""What the end-of-run reports (HTML, JSON) derive from a result: its graph's tasks, critical path, shown outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._dataflow import output_text
from .._graph import critical_path
from .._result import RunResult, TaskResult
from ._output import Redactor

__all__ = ["plan_tasks", "run_critical_path", "shown_output"]


def plan_tasks(result: RunResult, upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """The run's tasks that are nodes of its graph: every task but the instances of mapped tasks."""
    if not upstream:
        return list(result.tasks)
    return [name for name in result.tasks if name in upstream]


def run_critical_path(result: RunResult, upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """The chain of dependent tasks whose measured durations add up to the longest time."""
    order = plan_tasks(result, upstream)
    return critical_path(order, upstream, {name: result.tasks[name].duration or 0.0 for name in order})


def shown_output(task: TaskResult, redact: Redactor) -> str | None:
    """The short rendering of a task's output with secrets masked; None when it returned nothing."""
    text = output_text(task.output)
    return None if text is None else redact(text)
