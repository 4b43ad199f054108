"""Timeout policy: an attempt that runs too long fails with TaskTimeoutError and the run moves on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import InvalidArgumentError
from .retry import _check_target

__all__ = ["timeout"]

F = TypeVar("F", bound=Callable[..., Any] | type)


def timeout(seconds: float) -> Callable[[F], F]:
    """Fail an attempt that has not finished after `seconds` (retries and skip apply as usual).

    Python cannot kill a thread: the attempt's thread is abandoned, keeps running until
    `perform_task` returns, and whatever it does afterwards is ignored.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise InvalidArgumentError(f"timeout({seconds!r}): seconds must be a number > 0")

    def decorate(target: F) -> F:
        from ._store import attach

        _check_target("timeout", target)
        attach(target, timeout=float(seconds))
        return target

    return decorate
