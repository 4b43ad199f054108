"""The console reporter: the seed's lines on standard output."""

from __future__ import annotations

import sys
from typing import TextIO

from ..events import RunStarted, TaskFinished, TaskStarted
from ..task import TaskState
from .base import Reporter

__all__ = ["ConsoleReporter", "format_plan"]


def format_plan(plan: tuple[str, ...] | list[str]) -> str:
    """The plan line: tasks in the order they are planned to start."""
    return "Execution plan: " + " -> ".join(plan)


class ConsoleReporter(Reporter):
    """Prints `Executing <task>`, `Skipping task due to error: <error>` and, if asked, the plan line."""

    def __init__(self, show_plan: bool = False, stream: TextIO | None = None) -> None:
        self.show_plan = show_plan
        self._stream = stream

    def _print(self, line: str) -> None:
        # Look standard output up at print time so redirecting sys.stdout works.
        print(line, file=self._stream or sys.stdout, flush=True)

    def on_run_started(self, event: RunStarted) -> None:
        """Print the plan line when `show_plan` is on."""
        if self.show_plan:
            self._print(format_plan(event.plan))

    def on_task_started(self, event: TaskStarted) -> None:
        """Print the seed's `Executing <task>` line."""
        self._print(f"Executing {event.task}")

    def on_task_finished(self, event: TaskFinished) -> None:
        """Print the seed's skip line for a task that failed and was skipped."""
        if event.result.state is TaskState.SKIPPED:
            self._print(f"Skipping task due to error: {event.result.error}")
