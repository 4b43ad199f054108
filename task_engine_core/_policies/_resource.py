"""wait_for_resource: before each attempt, poll a readiness check until it is true or a timeout expires.

The timeout counts from the first poll of the task's first attempt and is not reset by retries
(the first-poll time is kept on the TaskRun). Timing out raises ResourceTimeoutError, which is an
ordinary attempt failure (retries and skippable apply); with `soft_fail=True` a timeout skips the
task instead. An error raised by the check itself is never turned into a skip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .._numbers import capped_growth, check_number
from ..errors import DefinitionError, InvalidArgumentError, ResourceTimeoutError, SkipTask

__all__ = ["wait_for_resource", "ResourceGuard", "HOOK_METHOD"]

F = TypeVar("F", bound=Callable[..., Any] | type)

#: The Task method polled when `wait_for_resource` is given no check.
HOOK_METHOD = "resource_ready"


@dataclass(frozen=True)
class ResourceGuard:
    """The attempt guard behind `@wait_for_resource`."""

    check: Callable[..., Any] | None
    name: str
    interval: float
    timeout: float
    backoff: float = 1.0
    max_interval: float | None = None
    soft_fail: bool = False

    def intervals(self) -> Callable[[int], float]:
        """The pause after poll n (n = 1 first): interval * backoff**(n-1), capped at max_interval."""

        def pause(poll: int) -> float:
            return capped_growth(self.interval, self.backoff, poll - 1, self.max_interval)

        return pause

    def before_attempt(self, run: Any) -> None:
        """Poll until ready; raise ResourceTimeoutError (or SkipTask with soft_fail) at the deadline."""
        check = self._resolve_check(run)
        key = f"resource:{self.name}"
        first = run.first_poll.setdefault(key, run.clock())
        deadline = first + self.timeout
        polls = 1
        if check():
            return
        pause = self.intervals()
        remaining = max(deadline - run.clock(), 0.0)
        message = f"waiting up to {remaining:.1f} s for resource {self.name!r}"
        with run.waiting("resource", self.name, remaining, message):
            while True:
                remaining = deadline - run.clock()
                if remaining <= 0:
                    error = ResourceTimeoutError(run.name, self.name, self.timeout, polls)
                    if self.soft_fail:
                        raise SkipTask(str(error)) from error
                    raise error
                run.sleep(min(pause(polls), remaining))
                polls += 1
                if check():
                    return

    def _resolve_check(self, run: Any) -> Callable[[], Any]:
        if self.check is not None:
            if _takes_context(self.check):
                return lambda: self.check(context=run.task.context)  # type: ignore[misc]
            return self.check
        method = getattr(run.task, HOOK_METHOD, None)
        if not callable(method):
            raise DefinitionError(
                f"task {run.name!r} uses @wait_for_resource without a check, so it needs a "
                f"{HOOK_METHOD}(self) -> bool method; add one or pass check="
            )
        return cast("Callable[[], Any]", method)


def _takes_context(function: Callable[..., Any]) -> bool:
    from .._task import _accepts_keyword

    return _accepts_keyword(function, "context")


def wait_for_resource(
    check: Callable[..., Any] | None = None,
    *,
    timeout: float = 300.0,
    interval: float = 5.0,
    backoff: float = 1.0,
    max_interval: float | None = None,
    soft_fail: bool = False,
    name: str | None = None,
) -> Callable[[F], F]:
    """Before every attempt, poll `check()` (or the task's `resource_ready()` method) until it is true.

    `interval` is the pause between polls; with `backoff` > 1 it grows by that factor after each
    poll, up to `max_interval`. `timeout` counts from the first poll and survives retries. The
    check may take a `context=` keyword to read the run's TaskContext. Used bare on a Task
    class (`@wait_for_resource`), it polls `resource_ready()` with the defaults.
    """
    if isinstance(check, type):
        return wait_for_resource(
            timeout=timeout,
            interval=interval,
            backoff=backoff,
            max_interval=max_interval,
            soft_fail=soft_fail,
            name=name,
        )(check)
    label = name or (getattr(check, "__name__", None) if check is not None else None) or HOOK_METHOD
    if check is not None and not callable(check):
        raise InvalidArgumentError(f"wait_for_resource(check={check!r}): the check must be callable, returning a bool")
    _number(label, "timeout", timeout, minimum=0.0)
    _number(label, "interval", interval, minimum=0.0, strict=True)
    _number(label, "backoff", backoff, minimum=1.0)
    if max_interval is not None:
        _number(label, "max_interval", max_interval, minimum=interval)
    guard = ResourceGuard(check, label, float(interval), float(timeout), float(backoff), max_interval, soft_fail)

    def decorate(target: F) -> F:
        from ._retry import _check_target
        from ._store import attach

        _check_target("wait_for_resource", target)
        if check is None and isinstance(target, type) and not callable(getattr(target, HOOK_METHOD, None)):
            raise InvalidArgumentError(
                f"@wait_for_resource without a check on {target.__name__!r} needs a {HOOK_METHOD}(self) -> bool "
                f"method on that class; add one or pass the check as the first argument"
            )
        attach(target, guards=(guard,))
        return target

    return decorate


def _number(label: str, what: str, value: object, *, minimum: float, strict: bool = False) -> None:
    check_number(f"wait_for_resource({label!r}, {what}={value!r})", what, value, minimum=minimum, strict=strict)
