"""The exception family of Task Engine: every error a user can cause derives from TaskEngineError."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class TaskEngineError(Exception):
    """Base class of every error Task Engine raises on purpose."""


class DefinitionError(TaskEngineError):
    """A pipeline is defined wrongly; raised before any task runs."""


class DuplicateTaskError(DefinitionError):
    """Two tasks in one pipeline share a name."""

    def __init__(self, name: str, pipeline: str) -> None:
        self.name = name
        super().__init__(
            f"task {name!r} is already registered in pipeline {pipeline!r}; "
            f"give one of them another name with @register(name=...)"
        )


class UnknownDependencyError(DefinitionError):
    """A task depends on a task that is not registered in its pipeline."""

    def __init__(self, task: str, dependency: str, suggestions: Sequence[str] = ()) -> None:
        self.task = task
        self.dependency = dependency
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else (
            "; register it in the same pipeline or fix the name"
        )
        super().__init__(f"task {task!r} depends on unknown task {dependency!r}{hint}")


class CycleError(DefinitionError):
    """The dependencies form a cycle; `cycle` lists it with the first task repeated at the end."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(
            f"dependency cycle: {' -> '.join(self.cycle)}; remove one of these dependencies"
        )


class NotATaskError(DefinitionError):
    """Something that is neither a Task subclass nor a function was registered or named."""

    def __init__(self, obj: object, where: str = "@register", reason: str | None = None) -> None:
        self.obj = obj
        reason = reason or (
            "which is not a task: register a subclass of task_engine_core.Task or a plain function"
        )
        super().__init__(f"{where} got {obj!r}, {reason}")


class InvalidArgumentError(DefinitionError, ValueError):
    """A decorator or option got a value it cannot accept."""


class EmptyPipelineError(DefinitionError):
    """A pipeline with no tasks was asked to run."""

    def __init__(self, pipeline: str) -> None:
        super().__init__(
            f"pipeline {pipeline!r} has no tasks; decorate a Task subclass or function with @register"
        )


class ContextError(TaskEngineError):
    """The TaskContext could not be built or read."""


class ContextKeyError(ContextError, KeyError):
    """A task asked the TaskContext for a key that no hydrator provided."""

    def __init__(self, path: str, sources: tuple[str, ...] = ()) -> None:
        self.path = path
        self.sources = sources
        consulted = ", ".join(sources) if sources else "no hydrators"
        super().__init__(
            f"context key {path!r} is not set (sources consulted: {consulted}); "
            f"add it to the context file or to one of these sources"
        )

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class TargetError(TaskEngineError):
    """A CLI target (module, file or package) cannot be loaded."""


class MissingExtraError(TaskEngineError, ImportError):
    """An optional library is needed but not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the {package!r} package, which is not installed; "
            f"install it with: pip install 'task-engine[{extra}]'"
        )


class RunInterrupted(TaskEngineError):
    """A run stopped early because of Ctrl-C or SIGTERM; finished results were kept."""


def closest_names(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """Return up to `limit` candidates that look like `name`, closest first."""
    import difflib

    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.6)
    return [lowered[c] for c in close]


class SkipTask(TaskEngineError):
    """Raise inside a task to end it SKIPPED at once (no retry); its dependents still run."""


class TaskTimeoutError(TaskEngineError, TimeoutError):
    """An attempt of a task ran longer than its `@timeout`; the attempt counts as failed."""

    def __init__(self, task: str, seconds: float, attempt: int) -> None:
        self.task = task
        self.seconds = seconds
        super().__init__(
            f"task {task!r} did not finish within {seconds:g} s (attempt {attempt}); its thread was left "
            f"running in the background and its outcome is ignored: raise the @timeout or make the task stop sooner"
        )
