"""Task Engine core: define a pipeline of tasks in plain Python and run it.

Importing this package loads the standard library only.
"""

from .context import TaskContext
from .errors import (
    ContextError,
    ContextKeyError,
    CycleError,
    DefinitionError,
    DuplicateTaskError,
    EmptyPipelineError,
    InvalidArgumentError,
    MissingExtraError,
    NotATaskError,
    RateLimitError,
    RateLimitTimeoutError,
    RunInterrupted,
    SkipTask,
    TargetError,
    TaskEngineError,
    UnknownDependencyError,
    UnknownRateLimitKeyError,
)
from .events import EventBus
from .executor import PipelineExecutor
from .pipeline import Pipeline, default_pipeline, register
from .policies import Backoff, RateLimit, RateLimiter, rate_limit, rate_limited, retries, set_rate_limit, skippable
from .reporters import ConsoleReporter, Reporter
from .result import RunResult, TaskResult
from .task import FunctionTask, Task, TaskState

__all__ = [
    "Backoff",
    "ConsoleReporter",
    "ContextError",
    "ContextKeyError",
    "CycleError",
    "DefinitionError",
    "DuplicateTaskError",
    "EmptyPipelineError",
    "EventBus",
    "FunctionTask",
    "InvalidArgumentError",
    "MissingExtraError",
    "NotATaskError",
    "Pipeline",
    "PipelineExecutor",
    "RateLimit",
    "RateLimitError",
    "RateLimitTimeoutError",
    "RateLimiter",
    "Reporter",
    "RunInterrupted",
    "RunResult",
    "SkipTask",
    "TargetError",
    "Task",
    "TaskContext",
    "TaskEngineError",
    "TaskResult",
    "TaskState",
    "UnknownDependencyError",
    "UnknownRateLimitKeyError",
    "default_pipeline",
    "rate_limit",
    "rate_limited",
    "register",
    "retries",
    "set_rate_limit",
    "skippable",
]
