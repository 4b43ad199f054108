"""Running one attempt of one task with its policies: the single source of truth for every backend.

The standalone executor, the Airflow adapter and the Prefect adapter all call `run_attempt` and
act on its AttemptOutcome; none of them re-implements retry or skip decisions.
"""

from __future__ import annotations

import contextvars
import enum
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .errors import SkipTask, TaskTimeoutError
from .events import AttemptFailed, AttemptStarted, Event, EventBus, WaitFinished, WaitStarted
from .policies import TaskPolicies
from .task import Task

__all__ = ["OutcomeKind", "AttemptOutcome", "TaskRun", "run_attempt", "current_task_run"]


class OutcomeKind(enum.Enum):
    """What one attempt means for its task."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class AttemptOutcome:
    """The decision after one attempt: done, retry after `delay`, failed, or skipped."""

    kind: OutcomeKind
    attempt: int
    max_attempts: int
    error: BaseException | None = None
    delay: float = 0.0
    reason: str = ""
    #: What perform_task returned (SUCCEEDED only): the task's output for its downstreams.
    output: Any = None

    @property
    def is_final(self) -> bool:
        """True unless another attempt follows."""
        return self.kind is not OutcomeKind.RETRY


@dataclass
class TaskRun:
    """The state of one task in one run, shared by its attempts: identity, events, waits."""

    name: str
    policies: TaskPolicies
    task: Task
    run_id: str = ""
    events: EventBus = field(default_factory=EventBus)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    attempt: int = 0
    waits: dict[str, float] = field(default_factory=dict)
    first_poll: dict[str, float] = field(default_factory=dict)
    explanation: str = ""

    def explain(self, reason: str) -> None:
        """Say why `retry_handler` decided as it did; the reason goes into RetryScheduled and TaskResult."""
        self.explanation = reason

    def emit(self, event: Event) -> None:
        """Send an event of this task to the run's listeners."""
        self.events.emit(event)

    def record_wait(self, reason: str, seconds: float) -> None:
        """Add `seconds` to the time this task spent waiting for `reason`."""
        self.waits[reason] = self.waits.get(reason, 0.0) + seconds

    @contextmanager
    def waiting(self, reason: str, key: str, seconds: float | None = None, message: str = "") -> Iterator[None]:
        """Report and record a blocking wait around the block (rate limit, resource, retry)."""
        self.emit(WaitStarted(self.run_id, self.name, reason, key, seconds, message))
        started = self.clock()
        ok = False
        try:
            yield
            ok = True
        finally:
            waited = self.clock() - started
            self.record_wait(reason, waited)
            self.emit(WaitFinished(self.run_id, self.name, reason, key, waited, ok))


_CURRENT: contextvars.ContextVar[TaskRun | None] = contextvars.ContextVar("task_engine_run", default=None)


def current_task_run() -> TaskRun | None:
    """The TaskRun of the task executing in this thread, or None outside a task."""
    return _CURRENT.get()


def run_attempt(run: TaskRun, attempt: int, context: Mapping[str, Any] | None = None) -> AttemptOutcome:
    """Run attempt number `attempt` of `run.task`: guards, then perform_task; decide what follows."""
    policies = run.policies
    run.attempt = attempt
    if context is not None:
        run.task.context = context
    if run.events.wants(AttemptStarted):
        run.emit(AttemptStarted(run.run_id, run.name, attempt, policies.max_attempts))
    token = _CURRENT.set(run)
    try:
        for guard in policies.guards:
            guard.before_attempt(run)
        if policies.timeout is None:
            output = run.task.perform_task()
        else:
            output = _perform_with_timeout(run, attempt, policies.timeout)
    except SkipTask as skip:
        return AttemptOutcome(OutcomeKind.SKIPPED, attempt, policies.max_attempts, skip, reason=str(skip))
    except Exception as error:
        run.emit(AttemptFailed(run.run_id, run.name, attempt, policies.max_attempts, error))
        return _after_failure(run, attempt, error)
    finally:
        _CURRENT.reset(token)
    if output is not None:
        return AttemptOutcome(OutcomeKind.SUCCEEDED, attempt, policies.max_attempts, output=output)
    return _succeeded(attempt, policies.max_attempts)


_SUCCEEDED_OUTCOMES: dict[tuple[int, int], AttemptOutcome] = {}


def _succeeded(attempt: int, max_attempts: int) -> AttemptOutcome:
    # Outcomes are frozen, so one success per (attempt, limit) can be shared: building a frozen
    # dataclass costs more than the rest of a no-op attempt.
    try:
        return _SUCCEEDED_OUTCOMES[attempt, max_attempts]
    except KeyError:
        return _SUCCEEDED_OUTCOMES.setdefault(
            (attempt, max_attempts), AttemptOutcome(OutcomeKind.SUCCEEDED, attempt, max_attempts)
        )


def _perform_with_timeout(run: TaskRun, attempt: int, seconds: float) -> Any:
    """Run perform_task in a daemon thread and stop waiting for it after `seconds`; return its output."""
    outcome: list[BaseException | None] = []
    returned: list[Any] = []
    context = contextvars.copy_context()  # the attempt thread sees current_task_run() too

    def target() -> None:
        try:
            returned.append(context.run(run.task.perform_task))
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread below
            outcome.append(error)

    thread = threading.Thread(target=target, name=f"task-engine-{run.name}-attempt-{attempt}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TaskTimeoutError(run.name, seconds, attempt)
    if outcome and outcome[0] is not None:
        raise outcome[0]
    return returned[0] if returned else None


def _after_failure(run: TaskRun, attempt: int, error: Exception) -> AttemptOutcome:
    policies = run.policies
    limit = policies.max_attempts

    def give_up(reason: str, cause: BaseException = error) -> AttemptOutcome:
        kind = OutcomeKind.SKIPPED if policies.skippable else OutcomeKind.FAILED
        return AttemptOutcome(kind, attempt, limit, cause, reason=reason)

    if attempt >= limit:
        return give_up("no attempts left" if limit > 1 else "no retries configured")
    run.explanation = ""
    try:
        decision = run.task.retry_handler(error)
    except Exception as handler_error:
        handler_error.__context__ = error
        return give_up(f"retry_handler raised {type(handler_error).__name__}", handler_error)
    explained = run.explanation
    if decision is None or decision is False:
        return give_up(explained or "retry_handler declined to retry")
    if decision is True:
        delay = policies.backoff.delay(attempt)
    elif isinstance(decision, (int, float)) and decision >= 0:
        delay = float(decision)
    else:
        return give_up(f"retry_handler returned {decision!r}; expected True, False or seconds >= 0")
    return AttemptOutcome(
        OutcomeKind.RETRY, attempt, limit, error, delay=delay, reason=explained or "retry_handler asked to retry"
    )
