"""Task Engine core: define a pipeline of tasks in plain Python and run it.

Importing this package loads the standard library only.
"""

from ._secrets import Secret, mask_secrets
from .attempt import AttemptState, HandlerDecision
from ._version import __version__
from .context import Hydrated, HydrationRequest, TaskContext, hydrate, register_hydrator
from .errors import (
    ContextError,
    ContextFileError,
    ContextKeyError,
    CycleError,
    DefinitionError,
    DuplicateTaskError,
    EmptyPipelineError,
    HydrationError,
    InvalidArgumentError,
    MissingExtraError,
    NotATaskError,
    OutputPathError,
    RateLimitError,
    RateLimitStoreError,
    RateLimitTimeoutError,
    ResourceTimeoutError,
    RunInterrupted,
    SkipTask,
    TargetError,
    TaskEngineError,
    TaskTimeoutError,
    UnknownDependencyError,
    UnknownRateLimitKeyError,
)
from .events import EventBus
from .executor import PipelineExecutor
from .pipeline import Pipeline, default_pipeline, register
from .policies import (
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
from .reporters import ConsoleReporter, Reporter, register_reporter
from .result import RunResult, TaskResult
from .stats import StatsStore, StatsWarning
from .task import FunctionTask, Task, TaskState

__all__ = [
    "AttemptState",
    "__version__",
    "Backoff",
    "ConsoleReporter",
    "ContextError",
    "ContextFileError",
    "ContextKeyError",
    "CycleError",
    "DefinitionError",
    "DuplicateTaskError",
    "EmptyPipelineError",
    "EventBus",
    "FunctionTask",
    "HandlerDecision",
    "Hydrated",
    "HydrationError",
    "HydrationRequest",
    "InvalidArgumentError",
    "MissingExtraError",
    "NotATaskError",
    "OutputPathError",
    "Pipeline",
    "PipelineExecutor",
    "RateLimit",
    "RateLimitError",
    "RateLimitStoreError",
    "RateLimitTimeoutError",
    "RateLimiter",
    "Reporter",
    "ResourceTimeoutError",
    "RunInterrupted",
    "RunResult",
    "Secret",
    "SkipTask",
    "StatsStore",
    "StatsWarning",
    "TargetError",
    "Task",
    "TaskContext",
    "TaskEngineError",
    "TaskTimeoutError",
    "TaskResult",
    "TaskState",
    "UnknownDependencyError",
    "UnknownRateLimitKeyError",
    "default_pipeline",
    "hydrate",
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
