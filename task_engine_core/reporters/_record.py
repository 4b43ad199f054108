"""RunRecorder: collects what the result alone does not hold (attempt errors, retries, waits)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._dataflow import output_text
from .._graph import critical_path_lengths, downstream_map
from .._result import RunResult, TaskResult
from .._secrets import error_text
from ..events import AttemptFailed, RetryScheduled, RunFinished, RunStarted, WaitFinished
from ._base import Reporter
from ._output import Redactor

__all__ = ["RunRecorder", "TaskHistory", "critical_path", "summary_dict", "plan_tasks", "shown_output"]


@dataclass
class TaskHistory:
    """Per-task events of one run, in the order they happened."""

    attempt_errors: list[tuple[int, BaseException]] = field(default_factory=list)
    retries: list[RetryScheduled] = field(default_factory=list)
    waits: list[WaitFinished] = field(default_factory=list)


class RunRecorder(Reporter):
    """Base of reporters that write a file at the end of a run from the result and the history."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.upstream: dict[str, tuple[str, ...]] = {}
        self.history: dict[str, TaskHistory] = {}

    def _of(self, task: str) -> TaskHistory:
        with self._lock:
            return self.history.setdefault(task, TaskHistory())

    def on_run_started(self, event: RunStarted) -> None:
        """Forget the previous run and keep the DAG of this one."""
        with self._lock:
            # Every task's graph, also of tasks that do not start (left out by a selection, resumed).
            self.upstream = {name: tuple(parents) for name, parents in event.upstream.items()}
            self.history = {}

    def on_attempt_failed(self, event: AttemptFailed) -> None:
        """Keep the error of each failed attempt."""
        self._of(event.task).attempt_errors.append((event.attempt, event.error))

    def on_retry_scheduled(self, event: RetryScheduled) -> None:
        """Keep each retry and its delay."""
        self._of(event.task).retries.append(event)

    def on_wait_finished(self, event: WaitFinished) -> None:
        """Keep each finished wait (retry delay, rate limit, resource)."""
        self._of(event.task).waits.append(event)

    def on_run_finished(self, event: RunFinished) -> None:
        """Write the output for the finished run."""
        self.write(event.result)

    def write(self, result: RunResult) -> None:
        """Subclasses write their file here."""


def plan_tasks(result: RunResult, upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """The run's tasks that are nodes of its graph: every task but the instances of mapped tasks."""
    if not upstream:
        return list(result.tasks)
    return [name for name in result.tasks if name in upstream]


def shown_output(task: TaskResult, redact: Redactor) -> str | None:
    """The short rendering of a task's output with secrets masked; None when it returned nothing."""
    text = output_text(task.output)
    return None if text is None else redact(text)


def critical_path(result: RunResult, upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """The chain of dependent tasks whose measured durations add up to the longest time."""
    order = plan_tasks(result, upstream)
    durations = {name: result.tasks[name].duration or 0.0 for name in order}
    lengths = critical_path_lengths(order, upstream, durations)
    if not lengths or max(lengths.values()) <= 0:
        return []
    downstream = downstream_map({name: tuple(upstream.get(name, ())) for name in order})
    roots = [name for name in order if not upstream.get(name)]
    node = max(roots, key=lambda n: lengths[n])
    path = [node]
    while downstream[node]:
        node = max(downstream[node], key=lambda n: lengths[n])
        path.append(node)
    return path


def _error(error: BaseException | None, redact: Redactor) -> dict[str, str] | None:
    if error is None:
        return None
    return {"type": type(error).__name__, "message": redact(error_text(error))}


def _task_dict(task: TaskResult, upstream: Sequence[str], history: TaskHistory, redact: Redactor) -> dict[str, Any]:
    return {
        "name": task.name,
        "state": task.state.value,
        "attempts": task.attempts,
        "start": task.start.isoformat() if task.start else None,
        "end": task.end.isoformat() if task.end else None,
        "duration": task.duration,
        "worker": task.worker or None,
        "upstream": list(upstream),
        "error": _error(task.error, redact),
        "reason": redact(task.reason),
        "output": shown_output(task, redact),
        "waits": dict(task.waits),
        "excluded": task.excluded,
        "resumed_from": task.resumed_from,
        "attempt_errors": [
            {"attempt": attempt, **(_error(error, redact) or {})} for attempt, error in history.attempt_errors
        ],
        "retries": [
            {"next_attempt": r.next_attempt, "max_attempts": r.max_attempts, "delay": r.delay} for r in history.retries
        ],
        "wait_events": [
            {"reason": w.reason, "key": redact(w.key), "seconds": w.seconds, "ok": w.ok} for w in history.waits
        ],
    }


def summary_dict(
    result: RunResult,
    upstream: Mapping[str, Sequence[str]],
    history: Mapping[str, TaskHistory],
    redact: Redactor | None = None,
) -> dict[str, Any]:
    """The run as plain JSON-ready data (the `--json` format, version 1); known secrets are masked."""
    from ._output import redactor

    redact = redactor(redact)
    counts = {state.value: n for state, n in result.counts().items()}
    return {
        "format": "task-engine-run-summary/1",
        "run_id": result.run_id,
        "pipeline": result.pipeline,
        "start": result.start.isoformat() if result.start else None,
        "end": result.end.isoformat() if result.end else None,
        "duration": result.duration,
        "workers": result.workers,
        "succeeded": result.succeeded,
        "interrupted": result.interrupted,
        "trace_id": result.trace_id,
        "resumed_from": result.resumed_from,
        "selection": result.selection,
        "counts": counts,
        "critical_path": critical_path(result, upstream),
        "tasks": [
            _task_dict(task, upstream.get(name, ()), history.get(name, TaskHistory()), redact)
            for name, task in result.tasks.items()
        ],
    }
