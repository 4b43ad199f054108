"""Retry policy: how many attempts a task gets and how long to wait between them."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .._numbers import capped_growth, check_number, is_count
from ..errors import InvalidArgumentError

__all__ = ["Backoff", "MAX_BACKOFF_DELAY", "RetryPolicy", "retries"]

F = TypeVar("F", bound=Callable[..., Any] | type)

#: Where a backoff without `maximum` stops growing: one day, Airflow's own ceiling on a retry delay.
#: (Unbounded growth reaches infinity after ~1,000 retries, which no sleep or timedelta takes.)
MAX_BACKOFF_DELAY = 86_400.0


@dataclass(frozen=True)
class Backoff:
    """Delay before retry k (k = 1 for the first retry): initial * multiplier**(k-1), capped, plus jitter."""

    initial: float = 1.0
    multiplier: float = 1.0
    maximum: float | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for what, minimum in (("initial", 0.0), ("multiplier", 1.0), ("jitter", 0.0), ("maximum", 0.0)):
            value = getattr(self, what)
            if value is not None or what != "maximum":
                check_number(f"Backoff({what}={value!r})", what, value, minimum=minimum)

    @classmethod
    def constant(cls, seconds: float) -> Backoff:
        """The same delay before every retry."""
        return cls(initial=seconds)

    @classmethod
    def exponential(
        cls, initial: float = 1.0, multiplier: float = 2.0, maximum: float | None = None, jitter: float = 0.0
    ) -> Backoff:
        """Delays that grow by `multiplier` each retry: 1 s, 2 s, 4 s ... by default."""
        return cls(initial=initial, multiplier=multiplier, maximum=maximum, jitter=jitter)

    @property
    def is_exponential(self) -> bool:
        """True when the delay grows between retries."""
        return self.multiplier > 1.0

    def base_delay(self, retry_number: int) -> float:
        """The delay before retry `retry_number` without jitter (capped at `maximum`, else at MAX_BACKOFF_DELAY)."""
        cap = self.maximum if self.maximum is not None else max(MAX_BACKOFF_DELAY, self.initial)
        return capped_growth(self.initial, self.multiplier, retry_number - 1, cap)

    def delay_for(self, state: Any) -> float:
        """The delay after the failed attempt described by `state` (an AttemptState), jitter included."""
        return self.delay(state.attempt)

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """The delay before retry `retry_number`, jitter included."""
        delay = self.base_delay(retry_number)
        if self.jitter:
            delay += (rng or random).uniform(0.0, self.jitter)
        return delay


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` attempts in total, waiting `backoff` between them."""

    attempts: int = 1
    backoff: Backoff = field(default_factory=Backoff)


def retries(n: int, *, backoff: Backoff | float | None = None) -> Callable[[F], F]:
    """Allow `n` attempts in total; the task's `retry_handler` decides after each failure."""
    if callable(n) and not isinstance(n, (int, float)):
        raise InvalidArgumentError(
            f"@retries needs the number of attempts, e.g. @retries(3); it was used bare on {_name(n)!r}"
        )
    if not is_count(n, 1):
        raise InvalidArgumentError(
            f"retries({n!r}): n is the total number of attempts and must be an integer of at least 1"
        )
    if backoff is None:
        resolved = Backoff()
    elif isinstance(backoff, Backoff):
        resolved = backoff
    elif isinstance(backoff, (int, float)) and not isinstance(backoff, bool):
        resolved = Backoff.constant(check_number(f"retries({n}, backoff={backoff!r})", "backoff", backoff, minimum=0.0))
    else:
        raise InvalidArgumentError(
            f"retries({n}, backoff={backoff!r}): backoff must be a number of seconds or a Backoff"
        )
    policy = RetryPolicy(attempts=n, backoff=resolved)

    def decorate(target: F) -> F:
        from ._store import attach

        _check_target("retries", target)
        attach(target, retry=policy)
        return target

    return decorate


def _check_target(decorator: str, target: object) -> None:
    if not callable(target):
        raise InvalidArgumentError(
            f"@{decorator} decorates a task class, its perform_task or a function task, not {target!r}"
        )


def _name(obj: object) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
