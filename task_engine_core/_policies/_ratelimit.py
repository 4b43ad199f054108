"""Rate limits: token buckets per key in a process-wide, thread-safe registry.

`@rate_limit(key=...)` takes a token before each attempt of a task; `with rate_limited(key):`
takes one around each request inside a task. A key may carry several limits (per second and per
hour); a caller proceeds only when every bucket of the key has a token.

Buckets hand out *reservations*: a caller that finds no token takes one from the future, under the
key's lock, and then sleeps outside the lock until that moment. Waiting callers are therefore
served in arrival order without polling, and the number of grants in any window never exceeds
`burst + rate * window`.

The buckets live in the limiter's store: this process (`memory`, the default), a SQLite file shared
by the processes of one host, or Redis shared by every machine (see `_bucket_stores`). The store is
chosen in code (`set_rate_limit_store`), else by the running task's context (`rate_limit_store:`),
else by TASK_ENGINE_RATE_LIMIT_STORE.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import InvalidArgumentError, RateLimitTimeoutError, UnknownRateLimitKeyError
from ._bucket_stores import MEMORY, RATE_LIMIT_STORE_ENVIRONMENT_VARIABLE, bucket_store
from ._numbers import check_number

__all__ = [
    "RateLimit",
    "RateLimiter",
    "TokenBucket",
    "default_rate_limiter",
    "set_rate_limit",
    "set_rate_limit_store",
    "rate_limited",
    "rate_limit",
    "RateLimitGuard",
    "parse_rate_limits",
    "apply_context_rate_limits",
    "check_rate_limit_keys",
]

F = TypeVar("F", bound=Callable[..., Any] | type)

logger = logging.getLogger("task_engine.rate_limit")

#: Period names accepted by `RateLimit(per=...)` and the `rate_limits:` section of a context file.
PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_PERIOD_SUFFIX = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "day"}


@dataclass(frozen=True)
class RateLimit:
    """`rate` requests per `per` seconds (default: per second) on `key`, with bursts up to `burst`."""

    key: str
    rate: float
    burst: float | None = None
    per: float | str = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise InvalidArgumentError(f"RateLimit(key={self.key!r}): the key must be a non-empty string")
        per = PERIODS.get(self.per) if isinstance(self.per, str) else self.per
        if per is None or isinstance(per, bool) or not isinstance(per, (int, float)) or not per > 0:
            raise InvalidArgumentError(
                f"RateLimit({self.key!r}, per={self.per!r}): per is a number of seconds > 0 "
                f"or one of {', '.join(PERIODS)}"
            )
        _positive(f"RateLimit({self.key!r}, rate={self.rate!r})", self.rate, "rate", minimum=0.0, strict=True)
        # Default burst: one period's worth of requests (at least one token), like most API quotas.
        burst = max(1.0, float(self.rate)) if self.burst is None else self.burst
        _positive(f"RateLimit({self.key!r}, burst={burst!r})", burst, "burst", minimum=1.0)
        object.__setattr__(self, "per", float(per))
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "burst", float(burst))

    @property
    def tokens_per_second(self) -> float:
        """How fast the bucket refills."""
        return self.rate / float(self.per)

    def describe(self) -> str:
        """A short human form, e.g. `30/s (burst 30)`."""
        suffix = _PERIOD_SUFFIX.get(float(self.per), f"{self.per:g}s")
        return f"{self.rate:g}/{suffix} (burst {self.burst:g})"


def _positive(label: str, value: object, what: str, *, minimum: float, strict: bool = False) -> None:
    check_number(label, what, value, minimum=minimum, strict=strict)


class TokenBucket:
    """One bucket: refills at `limit.tokens_per_second` up to `limit.burst`; tokens may go negative (reserved)."""

    __slots__ = ("capacity", "limit", "per_second", "tokens", "updated")

    def __init__(self, limit: RateLimit, now: float, tokens: float | None = None) -> None:
        self.limit = limit
        # Plain floats on the hot path: acquire reads them under the key's lock on every call.
        self.capacity = float(limit.burst)  # type: ignore[arg-type]
        self.per_second = limit.tokens_per_second
        self.tokens = self.capacity if tokens is None else min(tokens, self.capacity)
        self.updated = now

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update."""
        if now > self.updated:
            tokens = self.tokens + (now - self.updated) * self.per_second
            self.tokens = tokens if tokens < self.capacity else self.capacity
            self.updated = now

    def wait_for(self, tokens: float) -> float:
        """Seconds until `tokens` are available (0 if they are now); call refill first."""
        missing = tokens - self.tokens
        return missing / self.per_second if missing > 0 else 0.0

    def take(self, tokens: float) -> None:
        """Remove `tokens`, possibly reserving future ones."""
        self.tokens -= tokens


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
            return _context_store(context)
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


def _context_store(context: Mapping[str, Any]) -> Any:
    value = context["rate_limit_store"]
    reveal = getattr(value, "reveal", None)  # a Secret: the URL may carry a password
    url = reveal() if callable(reveal) else value
    if not isinstance(url, str):
        raise InvalidArgumentError(
            f"context key rate_limit_store must be a URL such as redis://HOST:PORT/DB, not {type(url).__name__}"
        )
    return bucket_store(url, "context key rate_limit_store")


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
    yield (limiter or _DEFAULT).acquire(key, tokens, timeout=timeout, attempt=attempt)


@dataclass(frozen=True)
class RateLimitGuard:
    """The attempt guard behind `@rate_limit`: takes a token before every attempt."""

    key: str
    tokens: float = 1
    timeout: float | None = None
    limiter: RateLimiter | None = None

    def before_attempt(self, run: Any) -> None:
        """Block until the key has a token (reported as a `rate_limit` wait of `run`)."""
        (self.limiter or _DEFAULT).acquire(self.key, self.tokens, timeout=self.timeout, attempt=run)


def rate_limit(
    key: str, *, tokens: float = 1, timeout: float | None = None, limiter: RateLimiter | None = None
) -> Callable[[F], F]:
    """Take a token of `key` before every attempt of the decorated task (class, perform_task or function)."""
    if callable(key) and not isinstance(key, str):
        raise InvalidArgumentError("@rate_limit needs a key, e.g. @rate_limit(key='/jobs/runs/get'); it was used bare")
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError(f"rate_limit(key={key!r}): the key must be a non-empty string")
    _positive(f"rate_limit({key!r}, tokens={tokens!r})", tokens, "tokens", minimum=0.0, strict=True)
    if timeout is not None:
        _positive(f"rate_limit({key!r}, timeout={timeout!r})", timeout, "timeout", minimum=0.0)
    guard = RateLimitGuard(key, tokens, timeout, limiter)

    def decorate(target: F) -> F:
        from ._retry import _check_target
        from ._store import attach, stored_settings

        _check_target("rate_limit", target)
        keys = tuple(stored_settings(target).get("rate_limit_keys", ()))
        attach(target, guards=(guard,), rate_limit_keys=(key, *(k for k in keys if k != key)))
        return target

    return decorate


def parse_rate_limits(section: Any, where: str = "rate_limits") -> list[RateLimit]:
    """Read a `rate_limits:` mapping: key -> rate | {rate, burst, per} | a list of those."""
    if not isinstance(section, Mapping):
        raise InvalidArgumentError(
            f"{where} must map keys to limits (e.g. '/jobs/runs/get': {{rate: 30}}), not {type(section).__name__}"
        )
    limits = []
    for key, spec in section.items():
        for item in spec if isinstance(spec, (list, tuple)) else [spec]:
            limits.append(_parse_one(str(key), item, f"{where}.{key}"))
    return limits


def _parse_one(key: str, spec: Any, where: str) -> RateLimit:
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"rate", "burst", "per"}
        if unknown or "rate" not in spec:
            problem = f"unknown field(s) {', '.join(sorted(map(str, unknown)))}" if unknown else "no rate"
            raise InvalidArgumentError(f"{where}: {problem}; a limit has rate, and optionally burst and per")
        rate, burst, per = spec["rate"], spec.get("burst"), spec.get("per", 1.0)
    else:
        rate, burst, per = spec, None, 1.0
    try:
        return RateLimit(key, _number(rate), None if burst is None else _number(burst), _period(per))
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"{where}: {error}") from None


def _number(value: Any) -> Any:
    # Values from environment variables arrive as strings.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _period(value: Any) -> Any:
    return value if isinstance(value, str) and value in PERIODS else _number(value)


def apply_context_rate_limits(context: Mapping[str, Any], limiter: RateLimiter | None = None) -> list[RateLimit]:
    """Configure the limits of a context's `rate_limits:` section (if any); return them."""
    from ..errors import ContextError

    if "rate_limit_store" in context:
        try:
            _context_store(context)  # a bad URL stops the run before any task, not in its first attempt
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


def check_rate_limit_keys(policies_by_task: Mapping[str, Any]) -> None:
    """Before a run: raise UnknownRateLimitKeyError, naming the task, for a `@rate_limit` key with no limit."""
    for task, policies in policies_by_task.items():
        for guard in policies.guards:
            if isinstance(guard, RateLimitGuard):
                try:
                    (guard.limiter or _DEFAULT).limits(guard.key)
                except UnknownRateLimitKeyError as error:
                    error.args = (f"task {task!r}: {error.args[0]}",)
                    raise
                _ = (guard.limiter or _DEFAULT).store  # a bad TASK_ENGINE_RATE_LIMIT_STORE stops the run here
