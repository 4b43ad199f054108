"""RetryRule: how often one kind of HTTP failure is retried, and how long to wait before each retry."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._policies import Backoff
from ..errors import InvalidArgumentError

__all__ = ["NO_RETRY", "RetryRule"]


@dataclass(frozen=True)
class RetryRule:
    """Retry one kind of failure at most `retries` times, waiting `backoff` (or Retry-After, if honoured)."""

    retries: int
    backoff: Backoff = field(default_factory=lambda: Backoff.exponential(1.0, 2.0))
    honour_retry_after: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidArgumentError(
                f"RetryRule(retries={self.retries!r}): retries is how often this failure is retried, an integer >= 0"
            )
        if not isinstance(self.backoff, Backoff):
            raise InvalidArgumentError(f"RetryRule(backoff={self.backoff!r}): backoff must be a Backoff")


#: Fail at once: the rule of 400, 401, 403, 404, 409, 422 and every other 4xx.
NO_RETRY = RetryRule(retries=0)
