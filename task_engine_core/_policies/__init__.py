"""Policies that shape how each task runs: retries, skip, rate limits, resource waits, the per-task policy set."""

from ._bucket import RateLimit, TokenBucket
from ._limiter import RateLimiter, default_rate_limiter, set_rate_limit, set_rate_limit_store
from ._ratelimit import rate_limit, rate_limited
from ._resource import wait_for_resource
from ._retry import Backoff, RetryPolicy, retries
from ._skip import skippable
from ._store import AttemptGuard, TaskPolicies, attach, resolve_policies, stored_settings
from ._timeout import timeout

__all__ = [
    "AttemptGuard",
    "Backoff",
    "RateLimit",
    "RateLimiter",
    "RetryPolicy",
    "TaskPolicies",
    "TokenBucket",
    "attach",
    "default_rate_limiter",
    "rate_limit",
    "rate_limited",
    "resolve_policies",
    "retries",
    "set_rate_limit",
    "set_rate_limit_store",
    "skippable",
    "stored_settings",
    "timeout",
    "wait_for_resource",
]
