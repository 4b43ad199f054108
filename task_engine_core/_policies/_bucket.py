"""What a rate limit is and the token-bucket arithmetic over it: pure, with the time passed in.

A `RateLimit` is `rate` tokens per `per` seconds with bursts up to `burst`; a `TokenBucket` holds
one limit's tokens and is refilled, asked and taken from at times its caller supplies (a limiter's
injected clock, or a shared store's clock), so the math does not depend on where it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._numbers import check_number, is_finite_number
from ..errors import InvalidArgumentError

__all__ = ["PERIODS", "RateLimit", "TokenBucket"]

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
        if not is_finite_number(per) or not per > 0:
            raise InvalidArgumentError(
                f"RateLimit({self.key!r}, per={self.per!r}): per is a number of seconds > 0 "
                f"or one of {', '.join(PERIODS)}"
            )
        check_number(f"RateLimit({self.key!r}, rate={self.rate!r})", "rate", self.rate, minimum=0.0, strict=True)
        # Default burst: one period's worth of requests (at least one token), like most API quotas.
        burst = max(1.0, float(self.rate)) if self.burst is None else self.burst
        check_number(f"RateLimit({self.key!r}, burst={burst!r})", "burst", burst, minimum=1.0)
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
