"""Results of a run: one TaskResult per task, gathered in a RunResult."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._task import TaskState

__all__ = ["TaskResult", "RunResult"]


@dataclass(slots=True)  # slots: a 100,000-task run keeps 100,000 of these
class TaskResult:
    """What happened to one task in one run."""

    name: str
    state: TaskState = TaskState.NOT_RUN
    attempts: int = 0
    start: datetime | None = None
    end: datetime | None = None
    duration: float | None = None
    error: BaseException | None = None
    reason: str = ""
    waits: dict[str, float] = field(default_factory=dict)
    worker: str = ""
    #: True for a task a selection left out: NOT_RUN, and it did not block its dependents.
    excluded: bool = False
    #: The run whose SUCCESS / SKIPPED this task kept instead of running again (`--resume`).
    resumed_from: str | None = None
    #: What perform_task (or the function) returned; for a mapped task, the instances' outputs in item order.
    output: Any = None

    @property
    def waited(self) -> float:
        """Seconds spent waiting on retries, rate limits and resources together."""
        return sum(self.waits.values())


@dataclass
class RunResult:
    """Every task's result, in plan order, plus the run's identity and timing."""

    run_id: str
    pipeline: str
    tasks: dict[str, TaskResult]
    start: datetime | None = None
    end: datetime | None = None
    duration: float | None = None
    workers: int = 1
    interrupted: str | None = None
    trace_id: str | None = None
    #: The run this one resumed (`--resume`), or None.
    resumed_from: str | None = None
    #: The selection as CLI flags (`--only A,B`); '' when every task was selected.
    selection: str = ""

    @property
    def succeeded(self) -> bool:
        """True when no task failed, none was blocked and the run was not interrupted."""
        return self.interrupted is None and all(r.state.is_done_ok or r.excluded for r in self.tasks.values())

    @property
    def failed(self) -> list[TaskResult]:
        """Tasks that ended FAILED, in plan order."""
        return [r for r in self.tasks.values() if r.state is TaskState.FAILED]

    @property
    def first_failure(self) -> TaskResult | None:
        """The FAILED task that ended first: the one a failed run raises for and reports; None when none failed."""
        # min keeps the first of equals, so ties and tasks without an end keep plan order.
        return min(self.failed, key=lambda r: r.end.timestamp() if r.end is not None else math.inf, default=None)

    def states(self) -> dict[str, TaskState]:
        """Task name -> final state."""
        return {name: r.state for name, r in self.tasks.items()}

    def counts(self) -> dict[TaskState, int]:
        """How many tasks ended in each state that occurs, states in order of first occurrence in the plan."""
        counts: dict[TaskState, int] = {}
        for r in self.tasks.values():
            counts[r.state] = counts.get(r.state, 0) + 1
        return counts

    def count(self, state: TaskState) -> int:
        """How many tasks ended in `state`."""
        return self.counts().get(state, 0)
