"""Pipelines: named registries of tasks, the `register` decorator, and graph validation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast, overload

from ._dataflow import check_parameters
from ._graph import topological_order
from ._numbers import is_finite_number
from ._policies import TaskPolicies, resolve_policies
from ._runnable import check_runnable
from ._selection import check_select_options, describe_selection, normalise_tags, resolve_selection
from ._task import FunctionTask, Task
from .errors import (
    DuplicateTaskError,
    EmptyPipelineError,
    EmptySelectionError,
    InvalidArgumentError,
    NotATaskError,
    UnknownDependencyError,
    closest_names,
)

__all__ = ["Pipeline", "TaskDefinition", "ValidatedPipeline", "register", "collecting_pipeline"]

T = TypeVar("T", bound=Callable[..., Any] | type)
DependencyRef = str | type | Callable[..., Any]


class TaskDefinition:
    """One registered task: its name, what to instantiate, what it depends on, its policies."""

    __slots__ = ("depends_on", "explicit_priority", "index", "map_over", "name", "pipeline_name", "tags", "target")

    def __init__(
        self,
        name: str,
        target: type[Task] | Callable[..., Any],
        depends_on: tuple[DependencyRef, ...],
        index: int,
        explicit_priority: float | None,
        pipeline_name: str,
        tags: tuple[str, ...] = (),
        map_over: DependencyRef | None = None,
    ) -> None:
        self.name = name
        self.tags = tags
        self.target = target
        self.depends_on = depends_on
        self.index = index
        self.explicit_priority = explicit_priority
        self.pipeline_name = pipeline_name
        self.map_over = map_over

    @property
    def is_function(self) -> bool:
        """True for a plain function registered as a task."""
        return not isinstance(self.target, type)

    @property
    def body(self) -> Callable[..., Any]:
        """What a run calls: the function, or the class's perform_task."""
        target = self.target
        return cast("type[Task]", target).perform_task if isinstance(target, type) else target

    def create(self) -> Task:
        """A fresh Task instance for one run."""
        if self.is_function:
            return FunctionTask(self.target)
        return self.target()

    def policies(self) -> TaskPolicies:
        """Resolve the policies from the class and its perform_task (or from the function)."""
        # Resolved at every validation (a few microseconds a task), so a decorator applied after
        # registration counts; a cache would need process-wide invalidation (issue 13).
        targets = (self.target,) if self.is_function else (self.target, self.body)
        policies = resolve_policies(*targets)
        if self.explicit_priority is not None:
            policies = replace(policies, priority=self.explicit_priority)
        return policies

    def __repr__(self) -> str:
        return f"<TaskDefinition {self.name!r} of pipeline {self.pipeline_name!r}>"


@dataclass(frozen=True)
class ValidatedPipeline:
    """A pipeline checked for errors: tasks in run order, resolved upstream names and policies."""

    name: str
    order: tuple[str, ...]
    definitions: dict[str, TaskDefinition]
    upstream: dict[str, tuple[str, ...]]
    policies: dict[str, TaskPolicies]
    #: Tasks a selection left out: they do not run and do not block (see `Pipeline.select`).
    excluded: frozenset[str] = frozenset()
    #: The selection as CLI flags (`--only A,B`); '' when every task is selected.
    selection: str = ""
    #: Mapped task -> the upstream whose output it fans out over (`@register(map_over=...)`).
    mapped: dict[str, str] = field(default_factory=dict)

    @property
    def registration_order(self) -> list[str]:
        """Task names in the order they were registered."""
        return list(self.definitions)


class Pipeline:
    """A named set of tasks and their dependencies; register into it with `pipeline.register`."""

    def __init__(self, name: str = "default") -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"Pipeline name must be a non-empty string, not {name!r}")
        self.name = name
        self._definitions: dict[str, TaskDefinition] = {}
        self._names_by_target: dict[int, str] = {}
        self._lock = threading.Lock()
        # Set on the copies `select` returns: the chosen tasks and the selection's description.
        self._selected: tuple[str, ...] | None = None
        self._selection = ""

    # -- registration -------------------------------------------------------------------
    @overload
    def register(self, target: T) -> T: ...
    @overload
    def register(
        self,
        target: None = None,
        *,
        depends_on: DependencyRef | Sequence[DependencyRef] | None = None,
        name: str | None = None,
        priority: float | None = None,
        tags: str | Sequence[str] | None = None,
        map_over: DependencyRef | None = None,
    ) -> Callable[[T], T]: ...

    def register(
        self,
        target: T | None = None,
        *,
        depends_on: DependencyRef | Sequence[DependencyRef] | None = None,
        name: str | None = None,
        priority: float | None = None,
        tags: str | Sequence[str] | None = None,
        map_over: DependencyRef | None = None,
    ) -> T | Callable[[T], T]:
        """Register a Task subclass or a function; bare (`@register`) or called (`@register(...)`)."""
        dependencies = _normalise_dependencies(depends_on)
        task_tags = normalise_tags(tags)
        if map_over is not None:
            if isinstance(map_over, (list, tuple)):
                raise InvalidArgumentError(
                    f"@register(map_over=...) names one upstream task to fan out over, not {map_over!r}"
                )
            (map_over,) = _normalise_dependencies(map_over)
            if map_over not in dependencies:
                dependencies = (*dependencies, map_over)  # fanning out over a task depends on it
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidArgumentError(f"@register(name=...) must be a non-empty string, not {name!r}")
        if priority is not None and not is_finite_number(priority):  # NaN would make the ready order arbitrary
            raise InvalidArgumentError(f"@register(priority=...) must be a number, not {priority!r}")

        def decorate(inner: T) -> T:
            self.add(inner, depends_on=dependencies, name=name, priority=priority, tags=task_tags, map_over=map_over)
            return inner

        if target is None:
            return decorate
        if isinstance(target, (str, list, tuple)):
            raise InvalidArgumentError(
                f"@register got {target!r} as its first argument; write @register(depends_on={target!r})"
            )
        return decorate(target)

    def add(
        self,
        target: type[Task] | Callable[..., Any],
        *,
        depends_on: Sequence[DependencyRef] = (),
        name: str | None = None,
        priority: float | None = None,
        tags: str | Sequence[str] | None = None,
        map_over: DependencyRef | None = None,
    ) -> TaskDefinition:
        """Register `target` without decorator syntax; returns its definition."""
        _check_task(target)
        task_name = name or target.__name__
        task_tags = normalise_tags(tags)
        if self._selected is not None:
            raise InvalidArgumentError(
                f"pipeline {self.name!r} here is a selection ({self._selection}) and cannot gain tasks; "
                f"register {task_name!r} into the pipeline it was selected from"
            )
        with self._lock:
            if task_name in self._definitions:
                raise DuplicateTaskError(task_name, self.name)
            definition = TaskDefinition(
                task_name,
                target,
                tuple(depends_on),
                len(self._definitions),
                priority,
                self.name,
                task_tags,
                map_over,
            )
            self._definitions[task_name] = definition
            self._names_by_target.setdefault(id(target), task_name)
        return definition

    # -- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._definitions)

    def __iter__(self) -> Iterator[TaskDefinition]:
        return iter(list(self._definitions.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._definitions

    def __getitem__(self, name: str) -> TaskDefinition:
        return self._definitions[name]

    @property
    def task_names(self) -> list[str]:
        """Task names in registration order."""
        return list(self._definitions)

    def name_of(self, target: object) -> str | None:
        """The name `target` (class or function) was registered under here, if any."""
        return self._names_by_target.get(id(target))

    def clear(self) -> None:
        """Forget every task (useful between tests that use the default pipeline)."""
        with self._lock:
            self._definitions.clear()
            self._names_by_target.clear()

    def validate(self) -> ValidatedPipeline:
        """Resolve dependencies and check the graph; raises a DefinitionError before any task runs."""
        definitions = dict(self._definitions)
        if not definitions:
            raise EmptyPipelineError(self.name)
        upstream = {name: self._resolve(definition) for name, definition in definitions.items()}
        names = list(definitions)
        order = topological_order(names, upstream)
        policies = {name: definitions[name].policies() for name in names}
        mapped: dict[str, str] = {}
        for name, definition in definitions.items():
            if definition.map_over is not None:
                mapped[name] = self._resolve_one(definition, definition.map_over)
            if definition.is_function:
                # `def transform(extract):` must fail here, before anything runs, not as a TypeError later.
                check_parameters(name, definition.target, upstream[name])
        excluded = frozenset() if self._selected is None else frozenset(names).difference(self._selected)
        return ValidatedPipeline(
            self.name, tuple(order), definitions, upstream, policies, excluded, self._selection, mapped
        )

    def _resolve_one(self, definition: TaskDefinition, ref: DependencyRef) -> str:
        if isinstance(ref, str):
            dependency = ref
        else:
            # A class or function means that very object: never a local task that shares its name.
            registered = self._names_by_target.get(id(ref))
            if registered is None:
                raise UnknownDependencyError.not_registered(definition.name, ref, self.name)
            dependency = registered
        if dependency not in self._definitions:
            raise UnknownDependencyError(definition.name, dependency, closest_names(dependency, self._definitions))
        return dependency

    def select(
        self,
        only: str | Sequence[str] | None = None,
        from_: str | Sequence[str] | None = None,
        to: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        with_upstream: bool = False,
        *,
        from_tasks: str | Sequence[str] | None = None,
    ) -> Pipeline:
        """A new pipeline that runs only the selected tasks (this one is unchanged); see `selection`.

        `only`: just these; `from_` (or `from_tasks`): these and everything downstream; `to`: these
        and everything they need; `tags`: tasks with one of these tags. Names and tags may be
        glob patterns; criteria intersect; `with_upstream` adds what the chosen tasks need.
        Left-out tasks stay in the graph, do not run and do not block their dependents.
        """
        if from_ is not None and from_tasks is not None:
            raise InvalidArgumentError("select() got both from_= and from_tasks=; they are the same option, give one")
        options = check_select_options(
            {
                "only": only,
                "from_": from_ if from_ is not None else from_tasks,
                "to": to,
                "tags": tags,
                "with_upstream": with_upstream,
            }
        )
        validated = self.validate()
        tags_of = {name: definition.tags for name, definition in validated.definitions.items()}
        chosen = resolve_selection(validated.name, validated.order, validated.upstream, tags_of, options)
        description = describe_selection(options)
        if self._selected is not None:  # selecting from a selection narrows it further
            kept = set(self._selected)
            chosen = tuple(name for name in chosen if name in kept)
            description = f"{self._selection} {description}".strip()
            if not chosen:
                raise EmptySelectionError(self.name, description)
        selected = Pipeline(self.name)
        selected._definitions = dict(self._definitions)
        selected._names_by_target = dict(self._names_by_target)
        selected._selected = chosen
        selected._selection = description
        return selected

    @property
    def selection(self) -> str:
        """How this pipeline was selected, as CLI flags (`--only A,B`); '' for a whole pipeline."""
        return self._selection

    def _resolve(self, definition: TaskDefinition) -> tuple[str, ...]:
        resolved: list[str] = []
        for ref in definition.depends_on:
            dependency = self._resolve_one(definition, ref)
            if dependency not in resolved:
                resolved.append(dependency)
        return tuple(resolved)

    @contextmanager
    def collecting(self) -> Iterator[Pipeline]:
        """Make this pipeline the target of bare `register` calls inside the block (e.g. an import)."""
        with _ACTIVE_LOCK:
            _ACTIVE.append(self)
        try:
            yield self
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.remove(self)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r} with {len(self)} tasks>"


def _check_task(target: object) -> None:
    if isinstance(target, type):
        if not issubclass(target, Task):
            raise NotATaskError(target)
        if target.perform_task is Task.perform_task:
            raise NotATaskError(target, reason="which does not override perform_task(); define perform_task(self)")
    if not callable(target) or not hasattr(target, "__name__"):
        raise NotATaskError(target)
    check_runnable(target)


def _normalise_dependencies(depends_on: object) -> tuple[DependencyRef, ...]:
    if depends_on is None:
        return ()
    refs = tuple(depends_on) if isinstance(depends_on, (list, tuple)) else (depends_on,)
    for ref in refs:
        if isinstance(ref, str):
            if not ref:
                raise InvalidArgumentError("@register(depends_on=...) got an empty task name")
        elif isinstance(ref, type):
            if not issubclass(ref, Task):
                raise NotATaskError(ref, where="@register(depends_on=...)")
        elif not callable(ref):
            raise NotATaskError(ref, where="@register(depends_on=...)")
    return refs


_DEFAULT = Pipeline("default")
_ACTIVE: list[Pipeline] = []
_ACTIVE_LOCK = threading.Lock()


def collecting_pipeline() -> Pipeline:
    """The pipeline bare `register` uses now: the process-wide default unless one is collecting."""
    return _ACTIVE[-1] if _ACTIVE else _DEFAULT


@overload
def register(target: T) -> T: ...
@overload
def register(
    target: None = None,
    *,
    depends_on: DependencyRef | Sequence[DependencyRef] | None = None,
    name: str | None = None,
    priority: float | None = None,
    tags: str | Sequence[str] | None = None,
    map_over: DependencyRef | None = None,
) -> Callable[[T], T]: ...


def register(target: Any = None, **options: Any) -> Any:
    """Register a task in the default pipeline: `@register`, `@register()`, `@register(depends_on=X)`."""
    return collecting_pipeline().register(target, **options)
