"""Tasks: the unit of work (Task subclasses and plain functions) and their final states."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from ._attempt import HandlerDecision

from ._dataflow import NO_INPUTS, call_with_inputs, parameter_plan

__all__ = ["Task", "FunctionTask", "TaskState", "RetryDecision"]

#: What `retry_handler` may answer: False/None = give up, True = retry after the backoff,
#: a number = retry after that many seconds; a `HandlerDecision` says the same with a reason.
RetryDecision = Union[bool, float, int, None, "HandlerDecision"]


class TaskState(enum.StrEnum):
    """The final state of one task in one run."""

    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    NOT_RUN = "not_run"

    @property
    def is_done_ok(self) -> bool:
        """True when dependents may run after this state (succeeded or skipped)."""
        return self in (TaskState.SUCCESS, TaskState.SKIPPED)


class Task:
    """Base class of a task: override `perform_task()`, and `retry_handler(error)` to retry."""

    #: The run's read-only TaskContext; the executor sets it before the first attempt.
    context: Mapping[str, Any] = {}
    #: Outputs of the upstream tasks by name (read-only); the lifecycle sets it before the first attempt.
    inputs: Mapping[str, Any] = NO_INPUTS
    #: The AttemptState of the running attempt (attempt number, waits, ...); set before each attempt.
    attempt_state: Any = None

    def perform_task(self) -> Any:
        """Do the work; return the task's output (None for none), or raise to fail this attempt."""
        raise TypeError(f"{type(self).__name__} does not override perform_task()")

    def retry_handler(self, error: Exception) -> RetryDecision:
        """Decide after a failed attempt: False = give up, True = retry, a number = retry after it.

        An override may take a second parameter, `retry_handler(self, error, state)`: it then
        receives the AttemptState and may return a `HandlerDecision` carrying the reason.
        """
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class FunctionTask(Task):
    """A Task running a plain function; it retries on any error when `@retries` allows it."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self._plan = parameter_plan(function)

    def perform_task(self) -> Any:
        """Call the function with `context=` and the upstream outputs its parameters name; return its result."""
        return call_with_inputs(self.function, self._plan, self.inputs, self.context)

    def retry_handler(self, error: Exception) -> RetryDecision:
        """Function tasks have no handler of their own: every error may be retried."""
        return True

    def __repr__(self) -> str:
        return f"<FunctionTask {self.function.__name__}>"


def _accepts_keyword(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get(name)
    if parameter is not None:
        return parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    return any(p.kind is p.VAR_KEYWORD for p in parameters.values())
