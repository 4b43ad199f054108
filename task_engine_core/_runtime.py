"""Running one attempt of one task with its policies: the single source of truth for every backend.

The standalone executor, the Airflow adapter and the Prefect adapter all call `run_attempt` and
act on its AttemptOutcome; none of them re-implements retry or skip decisions.
"""

from __future__ import annotations

import contextvars
import enum
import inspect
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _streams
from ._attempt import AttemptState, HandlerDecision
from ._numbers import is_finite_number
from ._runnable import close_thread_loop, is_awaitable, run_awaitable
from .errors import SkipTask, TaskTimeoutError
from .events import AttemptFailed, AttemptStarted

__all__ = ["OutcomeKind", "AttemptOutcome", "AttemptState", "HandlerDecision", "TaskRun", "run_attempt"]


class OutcomeKind(enum.Enum):
    """What one attempt means for its task: RETRY, or the end in the TaskState of the same name and value."""

    SUCCESS = "success"
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
    #: What perform_task returned (SUCCESS only): the task's output for its downstreams.
    output: Any = None

    @property
    def is_final(self) -> bool:
        """True unless another attempt follows."""
        return self.kind is not OutcomeKind.RETRY


#: The name this state had before it was typed and shared with guards, backoff and handlers.
TaskRun = AttemptState


def run_attempt(run: AttemptState, attempt: int, context: Mapping[str, Any] | None = None) -> AttemptOutcome:
    """Run attempt number `attempt` of `run.task`: guards, then perform_task; decide what follows."""
    policies = run.policies
    run.attempt = attempt
    task = run.task
    if context is not None:
        task.context = run.context = context
    if run.started is None:
        run.started = run.clock()
    task.attempt_state = run
    if run.events.wants(AttemptStarted):
        run.emit(AttemptStarted(run.run_id, run.name, attempt, policies.max_attempts))
    try:
        if policies.timeout is None:
            output = _guarded_perform(run)
        else:
            output = _perform_with_timeout(run, attempt, policies.timeout)
    except SkipTask as skip:
        return AttemptOutcome(OutcomeKind.SKIPPED, attempt, policies.max_attempts, skip, reason=str(skip))
    except Exception as error:  # noqa: BLE001 - whatever a task raises is its attempt's outcome
        run.last_error = error
        run.emit(AttemptFailed(run.run_id, run.name, attempt, policies.max_attempts, error))
        return _after_failure(run, attempt, error)
    return AttemptOutcome(OutcomeKind.SUCCESS, attempt, policies.max_attempts, output=output)


def _guarded_perform(run: AttemptState) -> Any:
    """One attempt's body: the guards (`@wait_for_resource` checks), then perform_task; return its output."""
    if _streams.prefixing:
        _streams.set_printing_task(run.name)
        try:
            return _perform(run)
        finally:
            _streams.set_printing_task(None)
    return _perform(run)


def _perform(run: AttemptState) -> Any:
    for guard in run.policies.guards:
        guard.before_attempt(run)
    if is_awaitable(output := run.task.perform_task()):  # async def: run it on this thread's event loop
        return run_awaitable(output)
    return output


def _perform_with_timeout(run: AttemptState, attempt: int, seconds: float) -> Any:
    """Run the guards and perform_task in a daemon thread and stop waiting for them after `seconds`; return the output.

    The guards are inside: a timeout bounds the whole attempt, so a readiness check that blocks
    (or never returns) cannot outlast it.
    """
    outcome: list[BaseException | None] = []
    returned: list[Any] = []
    # The attempt sees the caller's context variables, as it would without a timeout: an
    # orchestrator's run context (Prefect's run logger), OpenTelemetry's current span.
    context = contextvars.copy_context()

    def target() -> None:
        try:
            returned.append(context.run(_guarded_perform, run))
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread below
            outcome.append(error)
        finally:
            close_thread_loop()  # this thread ends here: an async body's loop must not be left open

    thread = threading.Thread(target=target, name=f"task-engine-{run.name}-attempt-{attempt}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        run.abandon(thread)  # its open wait ends here, and nothing it does later reaches the run
        raise TaskTimeoutError(run.name, seconds, attempt)
    if outcome and outcome[0] is not None:
        raise outcome[0]
    return returned[0] if returned else None


def _after_failure(run: AttemptState, attempt: int, error: Exception) -> AttemptOutcome:
    policies = run.policies
    limit = policies.max_attempts

    def give_up(reason: str, cause: BaseException = error) -> AttemptOutcome:
        kind = OutcomeKind.SKIPPED if policies.skippable else OutcomeKind.FAILED
        return AttemptOutcome(kind, attempt, limit, cause, reason=reason)

    if attempt >= limit:
        return give_up("no attempts left" if limit > 1 else "no retries configured")
    handler: Callable[..., Any] = run.task.retry_handler
    try:
        decision = handler(error, run) if _takes_state(handler) else handler(error)
    except Exception as handler_error:  # noqa: BLE001 - a failing handler gives up, naming its error
        handler_error.__context__ = error
        return give_up(f"retry_handler raised {type(handler_error).__name__}", handler_error)
    reason = ""
    if isinstance(decision, HandlerDecision):
        reason = decision.reason
        if not decision.retry:
            return give_up(reason or "retry_handler declined to retry")
        decision = True if decision.delay is None else decision.delay
    if decision is None or decision is False:
        return give_up("retry_handler declined to retry")
    if decision is True:
        delay = policies.backoff.delay_for(run)
    elif is_finite_number(decision) and decision >= 0:
        delay = float(decision)
    else:  # NaN and infinity too: the task's own failure, not a library error from a sleep
        return give_up(f"retry_handler returned {decision!r}; expected True, False or seconds >= 0")
    return AttemptOutcome(
        OutcomeKind.RETRY, attempt, limit, error, delay=delay, reason=reason or "retry_handler asked to retry"
    )


_TAKES_STATE: weakref.WeakKeyDictionary[Callable[..., Any], bool] = weakref.WeakKeyDictionary()


def _takes_state(handler: Callable[..., Any]) -> bool:
    """True when a bound retry_handler accepts a second positional argument (the AttemptState)."""
    function = getattr(handler, "__func__", handler)
    try:
        return _TAKES_STATE[function]
    except (KeyError, TypeError):
        pass
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        takes = False
    else:
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        takes = len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)
    try:
        _TAKES_STATE[function] = takes
    except TypeError:
        pass  # not weak-referenceable: decided again next time
    return takes
