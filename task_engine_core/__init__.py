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
    RunInterrupted,
    SkipTask,
    TargetError,
    TaskEngineError,
    TaskTimeoutError,
    UnknownDependencyError,
)
from .events import EventBus
from .executor import PipelineExecutor
from .pipeline import Pipeline, default_pipeline, register
from .policies import Backoff, retries, skippable, timeout
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
    "Reporter",
    "RunInterrupted",
    "RunResult",
    "SkipTask",
    "TargetError",
    "Task",
    "TaskContext",
    "TaskEngineError",
    "TaskTimeoutError",
    "TaskResult",
    "TaskState",
    "UnknownDependencyError",
    "default_pipeline",
    "register",
    "retries",
    "skippable",
    "timeout",
]
