"""`@rate_limit` and `rate_limited`: take a token of a key before each attempt or around each request.

`@rate_limit(key=...)` attaches a RateLimitGuard that takes a token before every attempt of a task;
`with rate_limited(key):` takes one around a request inside a task. Before a run,
`check_rate_limit_keys` makes sure every guard's key has a limit, naming the task if not.
The limits themselves live in a RateLimiter (`_limiter`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from .._numbers import check_number
from ..errors import InvalidArgumentError, UnknownRateLimitKeyError
from ._limiter import RateLimiter, default_rate_limiter

__all__ = ["RateLimitGuard", "check_rate_limit_keys", "rate_limit", "rate_limited"]

F = TypeVar("F", bound=Callable[..., Any] | type)


@contextmanager
def rate_limited(
    key: str,
    tokens: float = 1,
    *,
    timeout: float | None = None,
    limiter: RateLimiter | None = None,
    attempt: Any = None,
) -> Iterator[float]:
    """Take a token of `key` before the block (around one request); yields the seconds waited.

    Pass `attempt=self.attempt_state` inside a task so the wait is reported as the task's.
    """
    yield (limiter or default_rate_limiter()).acquire(key, tokens, timeout=timeout, attempt=attempt)


@dataclass(frozen=True)
class RateLimitGuard:
    """The attempt guard behind `@rate_limit`: takes a token before every attempt."""

    key: str
    tokens: float = 1
    timeout: float | None = None
    limiter: RateLimiter | None = None

    def before_attempt(self, run: Any) -> None:
        """Block until the key has a token (reported as a `rate_limit` wait of `run`)."""
        (self.limiter or default_rate_limiter()).acquire(self.key, self.tokens, timeout=self.timeout, attempt=run)


def rate_limit(
    key: str, *, tokens: float = 1, timeout: float | None = None, limiter: RateLimiter | None = None
) -> Callable[[F], F]:
    """Take a token of `key` before every attempt of the decorated task (class, perform_task or function)."""
    if callable(key) and not isinstance(key, str):
        raise InvalidArgumentError("@rate_limit needs a key, e.g. @rate_limit(key='/jobs/runs/get'); it was used bare")
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError(f"rate_limit(key={key!r}): the key must be a non-empty string")
    check_number(f"rate_limit({key!r}, tokens={tokens!r})", "tokens", tokens, minimum=0.0, strict=True)
    if timeout is not None:
        check_number(f"rate_limit({key!r}, timeout={timeout!r})", "timeout", timeout, minimum=0.0)
    guard = RateLimitGuard(key, tokens, timeout, limiter)

    def decorate(target: F) -> F:
        from ._retry import _check_target
        from ._store import attach, stored_settings

        _check_target("rate_limit", target)
        keys = tuple(stored_settings(target).get("rate_limit_keys", ()))
        attach(target, guards=(guard,), rate_limit_keys=(key, *(k for k in keys if k != key)))
        return target

    return decorate


def check_rate_limit_keys(policies_by_task: Mapping[str, Any]) -> None:
    """Before a run: raise UnknownRateLimitKeyError, naming the task, for a `@rate_limit` key with no limit."""
    for task, policies in policies_by_task.items():
        for guard in policies.guards:
            if isinstance(guard, RateLimitGuard):
                try:
                    (guard.limiter or default_rate_limiter()).limits(guard.key)
                except UnknownRateLimitKeyError as error:
                    error.args = (f"task {task!r}: {error.args[0]}",)
                    raise
                _ = (
                    guard.limiter or default_rate_limiter()
                ).store  # a bad TASK_ENGINE_RATE_LIMIT_STORE stops the run here
