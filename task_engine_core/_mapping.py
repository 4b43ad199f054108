"""Fan-out decided at run time: one instance of a mapped task per item of an upstream's output.

`@register(depends_on=ListRuns, map_over=ListRuns)` makes `Poll` a mapped task. When it becomes
ready, its upstream's output is read as a list of items and `Poll[0]`, `Poll[1]`, ... are run like
tasks of their own (attempts, retries, rate-limit tokens, events, results). When the last one ends,
`Poll` itself ends with the state its instances roll up to (`roll_up_state`) and, for its
downstreams, the list of their outputs in item order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ._dataflow import TaskInputs
from ._result import TaskResult
from ._task import TaskState
from .errors import MapOverError

__all__ = ["FanOut", "instance_name", "items_of", "roll_up_state", "ordered_results"]


def instance_name(task: str, index: int) -> str:
    """The name of instance `index` of mapped task `task`: `Poll[0]`."""
    return f"{task}[{index}]"


def items_of(task: str, upstream: str, value: Any) -> list[Any]:
    """The items `task` fans out over: `value` as a list; MapOverError when it is no collection of items.

    Text, bytes and mappings are iterable but almost never meant as a list of items, so they are
    refused rather than mapped character by character or key by key.
    """
    if isinstance(value, list):
        return value
    if value is None or isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise MapOverError(task, upstream, value)
    return list(value)


def roll_up_state(states: Sequence[TaskState]) -> TaskState:
    """The state of a mapped task from its instances' states.

    Any instance FAILED -> FAILED; else any instance that never ran (NOT_RUN) -> NOT_RUN; else
    every instance SKIPPED -> SKIPPED; else (no instance at all, or some succeeded) -> SUCCESS.
    """
    if TaskState.FAILED in states:
        return TaskState.FAILED
    if TaskState.NOT_RUN in states or TaskState.UPSTREAM_FAILED in states:
        return TaskState.NOT_RUN
    if states and all(state is TaskState.SKIPPED for state in states):
        return TaskState.SKIPPED
    return TaskState.SUCCESS


class FanOut:
    """One mapped task in one run: its items, how many instances are still to end, and the roll-up."""

    def __init__(
        self, result: TaskResult, over: str, upstream: Sequence[str], items: list[Any], started: float
    ) -> None:
        self.result = result
        self.name = result.name
        self.over = over
        self.upstream = upstream
        self.items = items
        self.started = started  # executor clock reading when the mapped task started
        self.names = [instance_name(self.name, i) for i in range(len(items))]
        self._left = len(items)
        self._lock = threading.Lock()

    def inputs(self, index: int, outputs: Mapping[str, Any]) -> TaskInputs:
        """The inputs of instance `index`: its item under the mapped-over upstream's name."""
        return TaskInputs(self.names[index], self.upstream, outputs, self.over, self.items[index])

    def placeholders(self) -> dict[str, TaskResult]:
        """A NOT_RUN result per instance, to hold its place in the run's results until it ends."""
        return {name: TaskResult(name) for name in self.names}

    def record(self) -> bool:
        """Count one instance as ended; True when it was the last one."""
        with self._lock:
            self._left -= 1
            return self._left == 0

    @property
    def open(self) -> bool:
        """True until the mapped task got its rolled-up result."""
        return self.result.end is None

    def roll_up(self, results: Mapping[str, TaskResult], end: datetime, duration: float | None) -> TaskResult:
        """Give the mapped task its final result from its instances' results in `results`."""
        result = self.result
        instances = [results[name] for name in self.names]
        state = roll_up_state([r.state for r in instances])
        result.state = state
        result.attempts = sum(r.attempts for r in instances)
        result.end = end
        result.duration = duration
        waits: dict[str, float] = {}
        for instance in instances:
            for reason, seconds in instance.waits.items():
                waits[reason] = waits.get(reason, 0.0) + seconds
        result.waits = waits
        if state is TaskState.SUCCESS:
            result.output = [r.output for r in instances]
            return result
        failed = [r for r in instances if r.state is TaskState.FAILED]
        if failed:
            first = min(failed, key=lambda r: r.end or end)
            result.error = first.error
            result.reason = f"{len(failed)} of {len(instances)} instances failed, first {first.name}"
        elif state is TaskState.SKIPPED:
            result.reason = f"all {len(instances)} instances were skipped"
        else:
            unstarted = sum(1 for r in instances if r.start is None)
            result.reason = f"{unstarted} of {len(instances)} instances did not run: the run stopped first"
        return result


def ordered_results(results: Mapping[str, TaskResult], fan_outs: Mapping[str, FanOut]) -> dict[str, TaskResult]:
    """`results` in plan order with each mapped task's instances right after it."""
    ordered: dict[str, TaskResult] = {}
    for name, result in results.items():
        if name in ordered:
            continue
        ordered[name] = result
        fan = fan_outs.get(name)
        if fan is not None:
            for instance in fan.names:
                ordered[instance] = results[instance]
    return ordered
