"""Task Engine core: define a pipeline of tasks in plain Python and run it.

This facade is the supported API: what DESIGN.md fixes plus what the README teaches. The public
subpackages and modules add their own: `errors` (every exception and warning), `events` (what
listeners hear), `reporters`, `telemetry`, `http` (tasks over `requests`) and `backend` (the seam
a backend uses). Every other module is private and may change without notice.
Importing this package loads the standard library only.
"""

from ._attempt import AttemptState, HandlerDecision
from ._context import TaskContext
from ._context_file import load_context_file
from ._defaults import PipelineExecutor
from ._hydrators import register_hydrator
from ._pipeline import Pipeline, register
from ._policies import (
    Backoff,
    RateLimit,
    RateLimiter,
    rate_limit,
    rate_limited,
    retries,
    set_rate_limit,
    set_rate_limit_store,
    skippable,
    timeout,
    wait_for_resource,
)
from ._result import RunResult, TaskResult
from ._secrets import Secret, mask_secrets
from ._task import Task, TaskState
from ._version import __version__
from .errors import SkipTask, TaskEngineError
from .reporters import register_reporter

__all__ = [
    "AttemptState",
    "Backoff",
    "HandlerDecision",
    "Pipeline",
    "PipelineExecutor",
    "RateLimit",
    "RateLimiter",
    "RunResult",
    "Secret",
    "SkipTask",
    "Task",
    "TaskContext",
    "TaskEngineError",
    "TaskResult",
    "TaskState",
    "__version__",
    "load_context_file",
    "mask_secrets",
    "rate_limit",
    "rate_limited",
    "register",
    "register_hydrator",
    "register_reporter",
    "retries",
    "set_rate_limit",
    "set_rate_limit_store",
    "skippable",
    "timeout",
    "wait_for_resource",
]
