"""Timeout policy: an attempt that runs too long fails with TaskTimeoutError and the run moves on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._numbers import check_number
from ._retry import _check_target

__all__ = ["timeout"]

F = TypeVar("F", bound=Callable[..., Any] | type)


def timeout(seconds: float) -> Callable[[F], F]:
    """Fail an attempt that has not finished after `seconds` (retries and skip apply as usual).

    Python cannot kill a thread: the attempt's thread is abandoned, keeps running until
    `perform_task` returns, and whatever it does afterwards is ignored.
    """
    limit = check_number(f"timeout({seconds!r})", "seconds", seconds, minimum=0.0, strict=True)

    def decorate(target: F) -> F:
        from ._store import attach

        _check_target("timeout", target)
        attach(target, timeout=limit)
        return target

    return decorate
