"""The seed's import path of the HTTP tasks, kept working: everything here comes from `task_engine_core.http`."""

from .http import NO_RETRY, RetryRule, SensibleDefaultsRequests, mask_url, retry_after_seconds

__all__ = [
    "NO_RETRY",
    "RetryRule",
    "SensibleDefaultsRequests",
    "mask_url",
    "retry_after_seconds",
]
