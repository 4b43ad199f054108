"""Tasks: the unit of work (Task subclasses and plain functions) and their final states."""

from __future__ import annotations

import enum
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from .attempt import HandlerDecision

__all__ = ["Task", "FunctionTask", "TaskState", "RetryDecision"]

#: What `retry_handler` may answer: False/None = give up, True = retry after the backoff,
#: a number = retry after that many seconds; a `HandlerDecision` says the same with a reason.
RetryDecision = Union[bool, float, int, None, "HandlerDecision"]  # noqa: UP007 - a forward reference


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
    #: The AttemptState of the running attempt (attempt number, waits, ...); set before each attempt.
    attempt_state: Any = None

    def perform_task(self) -> Any:
        """Do the work; return None, or raise to fail this attempt."""
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
        self._wants_context = _wants_context(function)

    def perform_task(self) -> Any:
        """Call the function, passing `context=` when it takes that argument; return what it returns."""
        if self._wants_context:
            return self.function(context=self.context)
        return self.function()

    def retry_handler(self, error: Exception) -> RetryDecision:
        """Function tasks have no handler of their own: every error may be retried."""
        return True

    def __repr__(self) -> str:
        return f"<FunctionTask {self.function.__name__}>"


_CONTEXT_KEYWORD: weakref.WeakKeyDictionary[Callable[..., Any], bool] = weakref.WeakKeyDictionary()


def _wants_context(function: Callable[..., Any]) -> bool:
    # inspect.signature costs microseconds; a function task is instantiated once per run.
    try:
        return _CONTEXT_KEYWORD[function]
    except (KeyError, TypeError):
        pass
    code = getattr(function, "__code__", None)
    if code is not None and type(function).__name__ == "function":
        # A plain Python function: read its code object instead of building a Signature.
        named = code.co_varnames[code.co_posonlyargcount : code.co_argcount + code.co_kwonlyargcount]
        wants = "context" in named or bool(code.co_flags & inspect.CO_VARKEYWORDS)
    else:
        wants = _accepts_keyword(function, "context")
    try:
        _CONTEXT_KEYWORD[function] = wants
    except TypeError:
        pass  # not weak-referenceable (a builtin): just do not cache
    return wants


def _accepts_keyword(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get(name)
    if parameter is not None:
        return parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    return any(p.kind is p.VAR_KEYWORD for p in parameters.values())
