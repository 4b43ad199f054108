"""TaskLifecycle: one task from "allowed to start" to its final TaskResult, the same on every backend.

The lifecycle owns attempt numbers, the guards and retry decision (through `run_attempt`),
RetryScheduled, every wait with its events and record, outcome -> state and the result fields.
A backend supplies only where events go (the EventBus) and how a retry delay is waited out:

- in process, `run_to_end()` sleeps the delay (the standalone executor);
- handed to the orchestrator, `attempt(n)` ends with `retry_handed_off(outcome)` and the next
  try continues with `resume(n + 1)` (Prefect in one process; Airflow in the next worker process,
  where `resume` gets the waited seconds since the wait started elsewhere).

`may_start` is the one answer to "may this task start now?" for every backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._attempt import AttemptState
from ._result import TaskResult
from ._runtime import AttemptOutcome, OutcomeKind, run_attempt
from ._task import TaskState
from .events import EventBus, RetryScheduled, TaskFinished, TaskStarted, WaitFinished, WaitStarted

if TYPE_CHECKING:
    from ._pipeline import TaskDefinition
    from ._policies import TaskPolicies

__all__ = ["TaskLifecycle", "may_start"]

_FINAL_STATE = {
    OutcomeKind.SUCCESS: TaskState.SUCCESS,
    OutcomeKind.FAILED: TaskState.FAILED,
    OutcomeKind.SKIPPED: TaskState.SKIPPED,
}


def may_start(*, started: bool, failed: bool, keep_going: bool, stopping: bool = False) -> bool:
    """May a task start (or go on) now? A started task always finishes its retries; else not after a failure or a stop.

    `started`: its first attempt already ran; `failed`: a task of the run ended FAILED;
    `stopping`: the run was asked to stop (a signal, `request_stop`). `keep_going` lets
    independent tasks start after a failure.
    """
    if started:
        return True
    if stopping:
        return False
    return keep_going or not failed


class TaskLifecycle:
    """Drives one task of one run: start, attempts, retry waits, final TaskResult, TaskFinished."""

    __slots__ = (
        "_retry_wait_started",
        "_started",
        "clock",
        "context",
        "definition",
        "escaped",
        "events",
        "finished",
        "inputs",
        "policies",
        "result",
        "run_id",
        "settled",
        "sleep",
        "state",
        "trace_id",
    )

    def __init__(
        self,
        definition: TaskDefinition,
        policies: TaskPolicies,
        run_id: str,
        events: EventBus,
        *,
        context: Mapping[str, Any] | None = None,
        worker: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        settled: Callable[[TaskLifecycle], None] | None = None,
        trace_id: str | None = None,
        name: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> None:
        self.definition = definition
        self.policies = policies
        self.run_id = run_id
        self.events = events
        self.clock = clock
        self.sleep = sleep
        self.context = context
        #: The upstream outputs the task reads as `self.inputs` (a `TaskInputs`); None: none.
        self.inputs = inputs
        # `name` differs from the definition's for an instance of a mapped task (`Poll[0]`).
        self.result = TaskResult(name or definition.name, worker=worker)
        self.state: AttemptState | None = None
        #: A BaseException that escaped the task's code (not an attempt failure), once finished.
        self.escaped: BaseException | None = None
        #: Called by `finish()` just before TaskFinished (the scheduler's stop-on-failure goes here).
        self.settled = settled
        self.finished = False
        #: The run's trace id, for backends whose processes see no RunStarted (it goes into TaskStarted).
        self.trace_id = trace_id
        self._started = 0.0
        self._retry_wait_started: float | None = None

    @property
    def name(self) -> str:
        """The task's name (`Poll[0]` for an instance of a mapped task)."""
        return self.result.name

    # -- steps a backend calls ------------------------------------------------------------------
    def start(self, worker: str | None = None) -> None:
        """The task was allowed to start: stamp its start and emit TaskStarted (on the calling thread)."""
        result = self.result
        if worker is not None:
            result.worker = worker
        result.start = datetime.now(UTC)
        self._started = self.clock()
        events = self.events
        if events.wants(TaskStarted):
            events.emit(TaskStarted(self.run_id, result.name, result.worker, time.time(), self.trace_id))

    def attempt(self, number: int) -> AttemptOutcome:
        """Run attempt `number`; on a retry outcome RetryScheduled is emitted (the wait is the caller's)."""
        state = self.state or self._new_state()
        outcome = run_attempt(state, number, self.context)
        self.result.attempts = number
        if outcome.kind is OutcomeKind.RETRY:
            assert outcome.error is not None  # a retry outcome always carries the error it retries
            self.events.emit(
                RetryScheduled(
                    self.run_id,
                    state.name,
                    number + 1,
                    outcome.max_attempts,
                    outcome.delay,
                    outcome.error,
                    outcome.reason,
                )
            )
        return outcome

    def sleep_retry(self, outcome: AttemptOutcome) -> None:
        """Wait out a retry delay in this thread, reported and recorded as a `retry` wait."""
        state = self.state
        assert state is not None
        with state.waiting("retry", state.name, outcome.delay):
            self.sleep(outcome.delay)

    def retry_handed_off(self, outcome: AttemptOutcome) -> None:
        """The orchestrator waits the retry delay: report the wait as started; `resume` ends it."""
        self._retry_wait_started = self.clock()
        self.events.emit(WaitStarted(self.run_id, self.result.name, "retry", self.result.name, outcome.delay, ""))

    def resume(self, number: int, waited: float | None = None) -> None:
        """The orchestrator's retry wait is over and attempt `number` follows: end and record the wait.

        `waited` is the seconds the orchestrator waited when that started in another process;
        None measures from `retry_handed_off` in this one.
        """
        if waited is None:
            if self._retry_wait_started is None:
                return
            waited = self.clock() - self._retry_wait_started
        self._retry_wait_started = None
        name = self.result.name
        (self.state or self._new_state()).record_wait("retry", waited)
        self.events.emit(WaitFinished(self.run_id, name, "retry", name, waited, True))

    def run_to_end(self, first: int = 1) -> TaskResult:
        """Run attempts from `first`, sleeping retry delays here, until the outcome is final; settle the result."""
        try:
            number = first
            while True:
                outcome = self.attempt(number)
                if outcome.kind is not OutcomeKind.RETRY:
                    break
                self.sleep_retry(outcome)
                number += 1
        except BaseException as error:  # noqa: BLE001 - a task's KeyboardInterrupt must not kill the worker
            return self.fail(error)
        return self.conclude(outcome)

    def conclude(self, outcome: AttemptOutcome) -> TaskResult:
        """Settle the result from the final outcome: state, attempts, error, reason, waits, end, duration."""
        result = self.result
        result.state = _FINAL_STATE[outcome.kind]
        result.attempts = outcome.attempt
        result.error = outcome.error
        result.reason = outcome.reason
        result.output = outcome.output
        self._settle_times()
        return result

    def fail(self, error: BaseException) -> TaskResult:
        """Settle the result of a task whose code let `error` escape the attempt (not a decided failure)."""
        result = self.result
        result.state = TaskState.FAILED
        result.attempts = max(result.attempts, 1)
        result.error = error
        result.reason = f"{type(error).__name__} escaped the task"
        self.escaped = error
        self._settle_times()
        return result

    def finish(self) -> TaskResult:
        """Tell the scheduler (`settled`), emit TaskFinished with the settled result, and return it."""
        result = self.result
        self.finished = True
        if self.settled is not None:
            self.settled(self)
        events = self.events
        if events.wants(TaskFinished):
            events.emit(TaskFinished(self.run_id, result.name, result))
        return result

    def _new_state(self) -> AttemptState:
        task = self.definition.create()
        if self.inputs is not None:
            task.inputs = self.inputs
        state = self.state = AttemptState(
            self.result.name,
            self.policies,
            task,
            self.run_id,
            self.events,
            self.clock,
            self.sleep,
            started=self._started,
        )
        return state

    def _settle_times(self) -> None:
        result = self.result
        state = self.state
        if state is not None and state.waits:
            result.waits = dict(state.waits)
        result.end = datetime.now(UTC)
        result.duration = self.clock() - self._started
