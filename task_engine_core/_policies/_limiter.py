"""The rate-limit registry: token buckets by key, thread-safe, with the process-wide default limiter.

Buckets hand out *reservations*: a caller that finds no token takes one from the future, under the
key's lock, and then sleeps outside the lock until that moment. Waiting callers are therefore
served in arrival order without polling, and the number of grants in any window never exceeds
`burst + rate * window`. A key may carry several limits (per second and per hour); a caller
proceeds only when every bucket of the key has a token.

The buckets live in the limiter's store: this process (`memory`, the default), a SQLite file shared
by the processes of one host, or Redis shared by every machine (see `_bucket_stores`). The store is
chosen in code (`set_rate_limit_store`), else by the running task's context (`rate_limit_store:`),
else by TASK_ENGINE_RATE_LIMIT_STORE. On a worker where nothing configured a key yet, the running
task's context (`rate_limits:`) configures it on first use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ContextError, InvalidArgumentError, RateLimitTimeoutError, UnknownRateLimitKeyError
from ._bucket import RateLimit, TokenBucket
from ._bucket_stores import MEMORY, RATE_LIMIT_STORE_ENVIRONMENT_VARIABLE, bucket_store
from ._rate_limit_config import context_store, parse_rate_limits

__all__ = [
    "RateLimiter",
    "apply_context_rate_limits",
    "default_rate_limiter",
    "set_rate_limit",
    "set_rate_limit_store",
]

logger = logging.getLogger("task_engine.rate_limit")


@dataclass
class _KeyState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    buckets: dict[float, TokenBucket] = field(default_factory=dict)  # by period in seconds


class RateLimiter:
    """A registry of token buckets by key; `default_rate_limiter()` is the process-wide one.

    `store` (a URL or a store object) pins where the buckets live; without it the running task's
    context (`rate_limit_store:`) or TASK_ENGINE_RATE_LIMIT_STORE decides, and `memory` is the default.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        store: Any = None,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()
        self._store: Any = None
        self.use_store(store)

    # -- where the buckets live ----------------------------------------------------------------
    def use_store(self, store: Any) -> None:
        """Pin the store (a URL such as `redis://127.0.0.1:6379/0`, a store object); None = configured one."""
        self._store = bucket_store(store, "rate-limit store") if isinstance(store, str) else store

    @property
    def store(self) -> Any:
        """The store an acquire outside a task uses: pinned in code, else TASK_ENGINE_RATE_LIMIT_STORE."""
        return self.store_for(None)

    def store_for(self, attempt: Any = None) -> Any:
        """The store an acquire of `attempt` (an AttemptState or None) uses: code, else its context, else the environment."""
        return self.configured_store(getattr(getattr(attempt, "task", None), "context", None))

    def configured_store(self, context: Mapping[str, Any] | None = None) -> Any:
        """The store a task run with `context` uses: pinned in code, else `rate_limit_store:`, else the environment."""
        # The one resolution: acquires and `check --backend` both ask here, so they cannot disagree.
        if self._store is not None:
            return self._store
        if isinstance(context, Mapping) and "rate_limit_store" in context:
            return context_store(context)
        return bucket_store(os.environ.get(RATE_LIMIT_STORE_ENVIRONMENT_VARIABLE, ""))

    # -- configuration ------------------------------------------------------------------------
    def set(self, *limits: RateLimit) -> None:
        """Add or replace limits; a limit replaces the one of the same key and period, others stay."""
        for limit in limits:
            if not isinstance(limit, RateLimit):
                raise InvalidArgumentError(f"set_rate_limit() takes RateLimit objects, not {limit!r}")
        with self._lock:
            for limit in limits:
                state = self._keys.setdefault(limit.key, _KeyState())
                with state.lock:
                    now = self.clock()
                    period = float(limit.per)
                    old = state.buckets.get(period)
                    if old is not None and old.limit == limit:
                        continue  # configuring the same limit again must not hand out a fresh burst
                    if old is not None:
                        old.refill(now)
                    # A changed limit keeps the tokens already spent, so reconfiguring is no reset.
                    state.buckets[period] = TokenBucket(limit, now, None if old is None else old.tokens)

    def remove(self, key: str) -> None:
        """Forget every limit of `key`."""
        with self._lock:
            self._keys.pop(key, None)

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._keys.clear()

    def keys(self) -> tuple[str, ...]:
        """The configured keys, sorted."""
        return tuple(sorted(self._keys))

    def limits(self, key: str) -> tuple[RateLimit, ...]:
        """The limits of `key`, shortest period first."""
        state = self._state(key)
        return tuple(state.buckets[p].limit for p in sorted(state.buckets))

    def available(self, key: str) -> float:
        """Tokens available now on `key` (the smallest of its buckets; negative when reserved ahead)."""
        state = self._state(key)
        store = self.store
        if store is not MEMORY:
            return float(store.reserve(key, self._limits_of(state), 0.0, None)[2])
        with state.lock:
            now = self.clock()
            for bucket in state.buckets.values():
                bucket.refill(now)
            return min(bucket.tokens for bucket in state.buckets.values())

    # -- acquiring -----------------------------------------------------------------------------
    def reserve(self, key: str, tokens: float = 1, *, timeout: float | None = None, attempt: Any = None) -> float:
        """Take `tokens` now or from the future and return how long the caller must sleep first.

        `attempt` is the calling task's AttemptState, if any: on a worker where nothing configured
        `key` yet, its context's `rate_limits:` section is applied first.
        """
        state = self._keys.get(key) or self._state(key, attempt)
        store = self.store_for(attempt)
        if store is not MEMORY:
            return self._reserve_in(store, key, self._limits_of(state), tokens, timeout)
        with state.lock:
            now = self.clock()
            wait = 0.0
            buckets = state.buckets.values()
            for bucket in buckets:
                if tokens > bucket.capacity:
                    raise InvalidArgumentError(
                        f"rate limit {key!r}: {tokens:g} tokens at once exceed the burst of "
                        f"{bucket.limit.describe()}; request fewer tokens or raise burst"
                    )
                bucket.refill(now)
                missing = tokens - bucket.tokens
                if missing > 0 and missing / bucket.per_second > wait:
                    wait = missing / bucket.per_second
            if timeout is not None and wait > timeout:
                raise RateLimitTimeoutError(key, wait, timeout)
            for bucket in buckets:
                bucket.tokens -= tokens
            return wait

    @staticmethod
    def _limits_of(state: _KeyState) -> tuple[RateLimit, ...]:
        with state.lock:  # set() may replace a bucket meanwhile
            return tuple(bucket.limit for bucket in state.buckets.values())

    @staticmethod
    def _reserve_in(store: Any, key: str, limits: tuple[RateLimit, ...], tokens: float, timeout: float | None) -> float:
        for limit in limits:
            if tokens > limit.burst:  # type: ignore[operator]
                raise InvalidArgumentError(
                    f"rate limit {key!r}: {tokens:g} tokens at once exceed the burst of "
                    f"{limit.describe()}; request fewer tokens or raise burst"
                )
        wait, taken, _ = store.reserve(key, limits, tokens, timeout)
        if not taken:
            raise RateLimitTimeoutError(key, wait, timeout)  # type: ignore[arg-type]
        return float(wait)

    def try_acquire(self, key: str, tokens: float = 1) -> bool:
        """Take `tokens` if they are available now; never waits."""
        try:
            self.reserve(key, tokens, timeout=0.0)
        except RateLimitTimeoutError:
            return False
        return True

    def acquire(self, key: str, tokens: float = 1, *, timeout: float | None = None, attempt: Any = None) -> float:
        """Take `tokens` from `key`, sleeping until they are available; return the seconds waited.

        With `attempt` (the calling task's AttemptState, e.g. `self.attempt_state`) a wait is
        reported as a `rate_limit` wait of that task (events, statistics). With `timeout`, a wait
        longer than it raises RateLimitTimeoutError at once, taking nothing.
        """
        wait = self.reserve(key, tokens, timeout=timeout, attempt=attempt)
        if wait > 0:
            store = self.store_for(attempt)
            message = f"waiting {wait:.1f} s for {key!r}" + ("" if store is MEMORY else f" in {store.name}")
            run = attempt
            if run is None:
                logger.info(message)
                self.sleep(wait)
            else:
                with run.waiting("rate_limit", key, wait, message):
                    self.sleep(wait)
        return wait

    def _state(self, key: str, attempt: Any = None) -> _KeyState:
        state = self._keys.get(key)
        if state is None or not state.buckets:
            # On Airflow/Prefect workers nothing ran apply_context_rate_limits in this process:
            # the running task's context may still carry the `rate_limits:` section.
            if self._configure_from_task(key, attempt):
                state = self._keys.get(key)
            if state is None or not state.buckets:
                raise UnknownRateLimitKeyError(key, self.keys())
        return state

    def _configure_from_task(self, key: str, attempt: Any) -> bool:
        context = getattr(getattr(attempt, "task", None), "context", None)
        if not isinstance(context, Mapping) or "rate_limits" not in context:
            return False
        apply_context_rate_limits(context, self)
        return key in self._keys


_DEFAULT = RateLimiter()


def default_rate_limiter() -> RateLimiter:
    """The process-wide registry used unless a limiter is passed explicitly."""
    return _DEFAULT


def set_rate_limit(*limits: RateLimit, limiter: RateLimiter | None = None) -> None:
    """Configure limits in the process-wide registry: `set_rate_limit(RateLimit("/jobs/runs/get", 30))`."""
    (limiter or _DEFAULT).set(*limits)


def set_rate_limit_store(store: Any, limiter: RateLimiter | None = None) -> None:
    """Keep the buckets in `store`: `memory`, `sqlite:///PATH`, `redis://HOST:PORT/DB`; None = configured one."""
    (limiter or _DEFAULT).use_store(store)


def apply_context_rate_limits(context: Mapping[str, Any], limiter: RateLimiter | None = None) -> list[RateLimit]:
    """Configure the limits of a context's `rate_limits:` section (if any); return them."""
    if "rate_limit_store" in context:
        try:
            context_store(context)  # a bad URL stops the run before any task, not in its first attempt
        except InvalidArgumentError as error:
            raise ContextError(str(error)) from None
    if "rate_limits" not in context:
        return []
    try:
        limits = parse_rate_limits(context["rate_limits"])
    except InvalidArgumentError as error:
        raise ContextError(f"context key {error}") from None
    (limiter or _DEFAULT).set(*limits)
    return limits
