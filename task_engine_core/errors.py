"""The exception family of Task Engine: every error a user can cause derives from TaskEngineError."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "ContextError",
    "ContextFileError",
    "ContextKeyError",
    "CycleError",
    "DefinitionError",
    "DuplicateTaskError",
    "EmptyPipelineError",
    "EmptySelectionError",
    "HydrationError",
    "InputParameterError",
    "InputUnavailableError",
    "InvalidArgumentError",
    "MapOverError",
    "MissingExtraError",
    "NotATaskError",
    "OutputPathError",
    "OutputTransferError",
    "RateLimitError",
    "RateLimitStoreError",
    "RateLimitTimeoutError",
    "ResourceTimeoutError",
    "ResumeError",
    "RunHistoryError",
    "RunInterrupted",
    "SkipTask",
    "StatsWarning",
    "TargetError",
    "TaskEngineError",
    "TaskTimeoutError",
    "UnknownDependencyError",
    "UnknownInputError",
    "UnknownRateLimitKeyError",
    "UnknownRunError",
    "UnknownSelectionError",
]


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

    def __init__(self, task: str, dependency: str, suggestions: Sequence[str] = (), hint: str | None = None) -> None:
        self.task = task
        self.dependency = dependency
        self.suggestions = tuple(suggestions)
        if hint is None:
            hint = (
                f"; did you mean {' or '.join(repr(s) for s in suggestions)}?"
                if suggestions
                else ("; register it in the same pipeline or fix the name")
            )
        super().__init__(f"task {task!r} depends on unknown task {dependency!r}{hint}")

    @classmethod
    def not_registered(cls, task: str, target: object, pipeline: str) -> UnknownDependencyError:
        """A dependency given as a class or function that is not registered in this pipeline."""
        name = getattr(target, "__name__", repr(target))
        where = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', name)}"
        return cls(
            task,
            name,
            hint=(
                f" ({where}): that class or function is not registered in pipeline {pipeline!r}, and a class "
                f"or function dependency means that very object, never a local task of the same name; "
                f"register it in this pipeline, or depend on a local task by its name (depends_on={name!r})"
            ),
        )


class CycleError(DefinitionError):
    """The dependencies form a cycle; `cycle` lists it with the first task repeated at the end."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(f"dependency cycle: {' -> '.join(self.cycle)}; remove one of these dependencies")


class NotATaskError(DefinitionError):
    """Something that is neither a Task subclass nor a function was registered or named."""

    def __init__(self, obj: object, where: str = "@register", reason: str | None = None) -> None:
        self.obj = obj
        reason = reason or ("which is not a task: register a subclass of task_engine_core.Task or a plain function")
        super().__init__(f"{where} got {obj!r}, {reason}")


class InvalidArgumentError(DefinitionError, ValueError):
    """A decorator or option got a value it cannot accept."""


class EmptyPipelineError(DefinitionError):
    """A pipeline with no tasks was asked to run."""

    def __init__(self, pipeline: str) -> None:
        super().__init__(f"pipeline {pipeline!r} has no tasks; decorate a Task subclass or function with @register")


class UnknownSelectionError(DefinitionError, LookupError):
    """A selection (`--only`, `--from`, `--to`, `--tags`) names a task or tag the pipeline lacks."""

    def __init__(self, option: str, pattern: str, kind: str, pipeline: str, known: Sequence[str]) -> None:
        self.option = option
        self.pattern = pattern
        self.kind = kind
        self.suggestions = tuple(closest_names(pattern, known))
        if self.suggestions:
            hint = f"did you mean {' or '.join(repr(s) for s in self.suggestions)}?"
        elif known:
            shown = ", ".join(list(known)[:10]) + (", ..." if len(known) > 10 else "")
            hint = f"its {kind}s: {shown}"
        else:
            hint = f"no task of it has {kind}s; add them with @register(tags=[...])"
        super().__init__(f"--{option} {pattern!r}: pipeline {pipeline!r} has no {kind} matching it; {hint}")


class EmptySelectionError(DefinitionError):
    """A selection whose criteria (which intersect) leave no task to run."""

    def __init__(self, pipeline: str, selection: str) -> None:
        self.selection = selection
        super().__init__(
            f"{selection} selects no task of pipeline {pipeline!r}: the criteria must all hold (they intersect); "
            f"drop one, or list the tasks with: python -m task_engine_core list TARGET"
        )


class RunHistoryError(TaskEngineError):
    """A recorded run cannot be found or used (`runs TARGET RUN_ID`, `--resume`)."""


class UnknownRunError(RunHistoryError, LookupError):
    """No recorded run of the pipeline has this id (or the prefix is ambiguous)."""


class ResumeError(RunHistoryError):
    """A run cannot be resumed: statistics are off, or the pipeline changed since that run."""


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


class ContextFileError(ContextError):
    """A context file is missing, unreadable, not valid YAML, or not a mapping; `path`/`line` say where."""

    def __init__(self, message: str, path: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        super().__init__(message)


class HydrationError(ContextError):
    """A context hydrator raised or returned something other than a mapping."""


class RateLimitError(TaskEngineError):
    """Base class of rate-limit errors."""


class UnknownRateLimitKeyError(RateLimitError, LookupError):
    """A rate-limited call names a key that has no configured limit."""

    def __init__(self, key: str, configured: Sequence[str]) -> None:
        self.key = key
        self.configured = tuple(configured)
        known = ", ".join(repr(k) for k in self.configured) if self.configured else "none"
        close = closest_names(key, self.configured)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        super().__init__(
            f"no rate limit is configured for key {key!r}{hint}; configured keys: {known}; "
            f"call set_rate_limit(RateLimit({key!r}, rate=...)) or add it under rate_limits: in the context file"
        )


class RateLimitTimeoutError(RateLimitError, TimeoutError):
    """A token for a rate-limited key would not be available within the acquire timeout."""

    def __init__(self, key: str, wait: float, timeout: float) -> None:
        self.key = key
        self.wait = wait
        self.timeout = timeout
        super().__init__(
            f"rate limit {key!r}: the next token is {wait:.2f} s away, longer than the acquire timeout of "
            f"{timeout:g} s; raise the timeout or lower the request rate"
        )


class RateLimitStoreError(RateLimitError, ConnectionError):
    """The shared rate-limit store could not be reached or used; no token was taken, so retrying is safe."""

    #: The attempt took no token: trying again later (the task's retries) cannot exceed the limit.
    retryable = True

    def __init__(self, store: str, key: str, detail: str) -> None:
        self.store = store
        self.key = key
        self.detail = detail
        super().__init__(
            f"rate-limit store {store} could not be used for key {key!r} ({detail}); no token was taken, so "
            f"this attempt fails rather than exceed the limit (the task's retries apply); check that the store "
            f"is running and reachable, or choose another with TASK_ENGINE_RATE_LIMIT_STORE"
        )


class ResourceTimeoutError(TaskEngineError, TimeoutError):
    """A resource was not ready before the wait_for_resource timeout (counted from the first poll)."""

    def __init__(self, task: str, resource: str, timeout: float, polls: int) -> None:
        self.task = task
        self.resource = resource
        self.timeout = timeout
        self.polls = polls
        super().__init__(
            f"task {task!r} gave up waiting for resource {resource!r}: not ready {timeout:g} s after the "
            f"first poll ({polls} poll{'s' if polls != 1 else ''}); raise timeout= or check the resource"
        )


class TaskTimeoutError(TaskEngineError, TimeoutError):
    """An attempt of a task ran longer than its `@timeout`; the attempt counts as failed."""

    def __init__(self, task: str, seconds: float, attempt: int) -> None:
        self.task = task
        self.seconds = seconds
        super().__init__(
            f"task {task!r} did not finish within {seconds:g} s (attempt {attempt}); its thread was left "
            f"running in the background and its outcome is ignored: raise the @timeout or make the task stop sooner"
        )


class OutputPathError(TaskEngineError):
    """A report, summary or trace file cannot be written; raised before any task starts."""

    def __init__(self, path: str, what: str, problem: str) -> None:
        self.path = path
        super().__init__(f"cannot write the {what} to {path!r}: {problem}; choose a writable path")


class InputParameterError(DefinitionError):
    """A function task has a parameter the engine cannot supply (no upstream of that name)."""

    def __init__(self, task: str, parameter: str, upstream: Sequence[str], problem: str = "") -> None:
        self.task = task
        self.parameter = parameter
        known = ", ".join(repr(u) for u in upstream) if upstream else "none"
        close = closest_names(parameter, upstream)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        problem = problem or "names no upstream task"
        super().__init__(
            f"task {task!r}: parameter {parameter!r} {problem}{hint}; its upstream tasks are: {known}; "
            f"name a parameter after an upstream task (or `context`), give it a default, or add the dependency"
        )


class UnknownInputError(TaskEngineError, KeyError):
    """A task read `self.inputs[name]` for a task that is not one of its upstreams."""

    def __init__(self, task: str, name: object, upstream: Sequence[str]) -> None:
        self.task = task
        self.name = name
        known = ", ".join(repr(u) for u in upstream) if upstream else "none"
        super().__init__(
            f"task {task!r} has no input {name!r}: inputs are the outputs of its upstream tasks ({known}); "
            f"add {name!r} to depends_on= or fix the name"
        )

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class InputUnavailableError(TaskEngineError, LookupError):
    """A task needs the output of an upstream it cannot get (kept by a resume, left out, across a group's edge)."""

    def __init__(self, task: str, upstream: str, why: str, action: str) -> None:
        self.task = task
        self.upstream = upstream
        super().__init__(
            f"task {task!r} reads the output of {upstream!r}, which this run does not have: {upstream!r} {why}\n{action}"
        )


class MapOverError(TaskEngineError, TypeError):
    """The output a mapped task fans out over is not a list (or other iterable of items)."""

    def __init__(self, task: str, upstream: str, value: object) -> None:
        self.task = task
        self.upstream = upstream
        super().__init__(
            f"task {task!r} maps over the output of {upstream!r}, which returned {type(value).__name__}, not a "
            f"list: make {upstream!r} return a list (or tuple, or another iterable) of the items to fan out over"
        )


class OutputTransferError(TaskEngineError, TypeError):
    """A task's output cannot be carried to its downstreams by the backend (not serialisable, too large)."""

    def __init__(self, task: str, value: object, backend: str, problem: str) -> None:
        self.task = task
        super().__init__(f"task {task!r} returned a {type(value).__name__} that {backend} cannot carry: {problem}")


class StatsWarning(UserWarning):
    """Statistics could not be read or written; the run itself is unaffected."""
