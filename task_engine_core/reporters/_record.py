"""FileReporter: the base of reporters that write one file when a run ends (HTML report, JSON summary).

It records, per task, the events the result alone does not hold (attempt errors, retries, waits).
Not to be confused with the statistics recorders (`RunStatsRecorder`), which write to a StatsStore.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .._result import RunResult
from ..events import AttemptFailed, RetryScheduled, RunFinished, RunStarted, WaitFinished
from ._base import Reporter

__all__ = ["FileReporter", "TaskHistory"]


@dataclass
class TaskHistory:
    """Per-task events of one run, in the order they happened."""

    attempt_errors: list[tuple[int, BaseException]] = field(default_factory=list)
    retries: list[RetryScheduled] = field(default_factory=list)
    waits: list[WaitFinished] = field(default_factory=list)


class FileReporter(Reporter):
    """Base of reporters that write a file when a run ends, from its result and the per-task events recorded here."""

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
