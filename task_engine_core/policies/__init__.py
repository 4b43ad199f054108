"""Policies that shape how each task runs: retries, skip, and the per-task policy set."""

from ._store import AttemptGuard, TaskPolicies, attach, resolve_policies, stored_settings
from .retry import Backoff, RetryPolicy, retries
from .skip import skippable
from .timeout import timeout

__all__ = [
    "AttemptGuard",
    "Backoff",
    "RetryPolicy",
    "TaskPolicies",
    "attach",
    "resolve_policies",
    "retries",
    "skippable",
    "stored_settings",
    "timeout",
]
