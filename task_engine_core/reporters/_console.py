"""The console reporter: the seed's lines on standard output."""

from __future__ import annotations

import sys
from typing import TextIO

from .._secrets import error_text
from .._task import TaskState
from .._text import stream_encodable
from ..events import RunStarted, TaskFinished, TaskStarted, WaitStarted
from ._base import WAIT_LINE_THRESHOLD, Reporter

__all__ = ["ConsoleReporter", "format_plan"]


def format_plan(plan: tuple[str, ...] | list[str]) -> str:
    """The plan line: tasks in the order they are planned to start."""
    return "Execution plan: " + " -> ".join(plan)


class ConsoleReporter(Reporter):
    """Prints `Executing <task>`, `Skipping task due to error: <error>` and, if asked, the plan line."""

    def __init__(
        self, show_plan: bool = False, stream: TextIO | None = None, wait_threshold: float = WAIT_LINE_THRESHOLD
    ) -> None:
        self.show_plan = show_plan
        self._stream = stream
        # Rate-limit and resource waits shorter than this are recorded but not printed (less noise).
        self.wait_threshold = wait_threshold

    def _print(self, line: str) -> None:
        # Look standard output up at print time so redirecting sys.stdout works.
        stream = self._stream or sys.stdout
        print(stream_encodable(line, stream), file=stream, flush=True)

    def on_run_started(self, event: RunStarted) -> None:
        """Print the plan line when `show_plan` is on."""
        if self.show_plan:
            self._print(format_plan(event.plan))

    def on_task_started(self, event: TaskStarted) -> None:
        """Print the seed's `Executing <task>` line."""
        self._print(f"Executing {event.task}")

    def on_wait_started(self, event: WaitStarted) -> None:
        """Print `<task>: waiting 0.8 s for '<key>'` for rate-limit and resource waits above the threshold."""
        if (
            event.reason in ("rate_limit", "resource")
            and event.message
            and (event.seconds is None or event.seconds >= self.wait_threshold)
        ):
            self._print(f"{event.task}: {event.message}")

    def on_task_finished(self, event: TaskFinished) -> None:
        """Print the seed's skip line for a task that failed and was skipped."""
        if event.result.state is TaskState.SKIPPED:
            self._print(f"Skipping task due to error: {error_text(event.result.error)}")
