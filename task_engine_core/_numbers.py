"""The one check of every number a user passes in, and capped growth that cannot overflow.

Timeouts, backoffs, `Backoff.*`, rate limits, `wait_for_resource`, `@register(priority=...)`,
attempt counts and a retry handler's delay all validate their numbers here (at the bottom layer,
so the registry and the lifecycle share it with the policies), at decoration time, so NaN, infinity, booleans and strings are refused with one kind of
message (`InvalidArgumentError`, a definition error: exit 2 in the CLI) instead of surfacing later
as a library `ValueError` or `OverflowError` in the middle of a run.
"""

from __future__ import annotations

import math
from typing import TypeGuard

from .errors import InvalidArgumentError

__all__ = ["capped_growth", "check_number", "is_count", "is_finite_number"]


def is_finite_number(value: object) -> TypeGuard[float]:
    """True for an int or float that is finite; booleans, NaN, infinity and strings are not numbers here."""
    # bool is an int subclass: `timeout(True)` is a mistake, not one second.
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def is_count(value: object, minimum: int) -> TypeGuard[int]:
    """True for an int (not a bool) of at least `minimum`: a number of attempts or workers."""
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


def check_number(label: str, what: str, value: object, *, minimum: float, strict: bool = False) -> float:
    """`value` as a float, or InvalidArgumentError `<label>: <what> must be a finite number >= <minimum>`."""
    if is_finite_number(value) and (value > minimum if strict else value >= minimum):
        return float(value)
    relation = ">" if strict else ">="
    raise InvalidArgumentError(f"{label}: {what} must be a finite number {relation} {minimum:g}")


def capped_growth(initial: float, factor: float, steps: int, cap: float | None) -> float:
    """`initial * factor**steps`, at most `cap`: for any number of steps, without OverflowError."""
    steps = max(steps, 0)
    if initial == 0.0 or factor == 1.0 or steps == 0:
        value = initial
    else:
        # Past this exponent the product exceeds any float; inf then compares and caps correctly.
        try:
            value = initial * factor**steps
        except OverflowError:
            value = math.inf
    return min(value, cap) if cap is not None else value
