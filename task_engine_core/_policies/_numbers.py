"""The one check of every number a user passes to a policy, and capped growth that cannot overflow.

Timeouts, backoffs, `Backoff.*`, rate limits and `wait_for_resource` all validate their numbers
here, at decoration time, so NaN, infinity, booleans and strings are refused with one kind of
message (`InvalidArgumentError`, a definition error: exit 2 in the CLI) instead of surfacing later
as a library `ValueError` or `OverflowError` in the middle of a run.
"""

from __future__ import annotations

import math

from ..errors import InvalidArgumentError

__all__ = ["check_number", "capped_growth"]


def check_number(label: str, what: str, value: object, *, minimum: float, strict: bool = False) -> float:
    """`value` as a float, or InvalidArgumentError `<label>: <what> must be a finite number >= <minimum>`."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)  # type: ignore[operator]
    if not ok:
        relation = ">" if strict else ">="
        raise InvalidArgumentError(f"{label}: {what} must be a finite number {relation} {minimum:g}")
    return float(value)  # type: ignore[arg-type]


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
