"""The hydrator chain: the registry of context sources, `hydrate` (run them once, merge), and the built-in two.

Hydrators form a chain ordered by `order` (ties: registration order). Each returns a mapping that
is deep-merged over the result of the ones before it, so later hydrators override earlier ones.
Built in: the YAML file hydrator (order 0: `task_engine.yml` in the working directory, or the
path given with `--context` / `PipelineExecutor(context=PATH)`) and the environment hydrator
(order 1000: `TASK_ENGINE__TENANT_INFO__URL` -> `tenant_info.url`). Applications register their
own with `register_hydrator` (default order 100: above the file, below the environment).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._context import TaskContext, deep_merge
from ._context_file import load_context_file
from ._registry import Registry
from ._secrets import Secret, install_log_masking, is_sensitive_name, mask_text
from .errors import ContextError, ContextFileError, HydrationError, InvalidArgumentError, TaskEngineError

__all__ = [
    "Hydrated",
    "HydrationRequest",
    "Hydrator",
    "register_hydrator",
    "unregister_hydrator",
    "registered_hydrators",
    "reset_hydrators",
    "hydrate",
    "build_context",
    "yaml_file_hydrator",
    "environment_hydrator",
    "DEFAULT_CONTEXT_FILE",
    "ENV_PREFIX",
    "DEFAULT_ORDER",
    "ENVIRONMENT_ORDER",
]

#: The file the default hydrator reads from the working directory when no path is given.
DEFAULT_CONTEXT_FILE = "task_engine.yml"
#: Environment variables with this prefix become context keys (`__` separates levels).
ENV_PREFIX = "TASK_ENGINE__"
YAML_FILE_ORDER, DEFAULT_ORDER, ENVIRONMENT_ORDER = 0, 100, 1000
YAML_FILE_HYDRATOR, ENVIRONMENT_HYDRATOR = "yaml file", "environment"


@dataclass(frozen=True)
class HydrationRequest:
    """What a hydrator may use: the explicit context file (if any), working directory, environment, data so far."""

    path: Path | None
    cwd: Path
    environ: Mapping[str, str]
    data: TaskContext = field(default_factory=TaskContext)


@dataclass(frozen=True)
class Hydrated:
    """A hydrator's answer when it wants to name its source precisely (e.g. the file it read)."""

    data: Mapping[str, Any]
    source: str


#: A hydrator: called once per run; returns a mapping, a Hydrated, or None when it has nothing.
Hydrator = Callable[[HydrationRequest], "Mapping[str, Any] | Hydrated | None"]


@dataclass(frozen=True)
class _Registration:
    name: str
    order: float
    hydrator: Hydrator


#: Keyed by name; registration order breaks ties of `order` (a sort on order alone is stable).
_registrations: Registry[_Registration] = Registry()


def register_hydrator(
    hydrator: Hydrator | None = None,
    *,
    order: float | None = None,
    name: str | None = None,
    replace_default: bool = False,
) -> Any:
    """Add a hydrator to the chain (usable bare, called, or as `@register_hydrator(order=...)`).

    Higher `order` runs later and overrides earlier values (file 0, default 100, environment 1000).
    `replace_default=True` removes the YAML file hydrator and, unless `order` is given, takes its place.
    A second registration under the same name replaces the first.
    """

    def decorate(function: Hydrator) -> Hydrator:
        if not callable(function):
            raise InvalidArgumentError(
                f"register_hydrator() needs a callable taking a HydrationRequest, not {function!r}"
            )
        label = name or getattr(function, "__name__", None) or type(function).__name__
        if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
            raise InvalidArgumentError(f"register_hydrator({label!r}, order={order!r}): order must be a number")
        chosen = order if order is not None else (YAML_FILE_ORDER if replace_default else DEFAULT_ORDER)
        if replace_default:
            _registrations.unregister(YAML_FILE_HYDRATOR)
        _registrations.register(_Registration(label, chosen, function), key=label)
        return function

    return decorate if hydrator is None else decorate(hydrator)


def unregister_hydrator(name: str) -> None:
    """Remove the hydrator registered under `name` (no error if there is none)."""
    _registrations.unregister(name)


def registered_hydrators() -> list[tuple[str, float]]:
    """(name, order) of every registered hydrator, in the order they run."""
    return [(r.name, r.order) for r in _ordered()]


def reset_hydrators() -> None:
    """Back to the built-in chain: the YAML file, then the environment."""
    _registrations.clear()
    register_hydrator(yaml_file_hydrator, name=YAML_FILE_HYDRATOR, order=YAML_FILE_ORDER)
    register_hydrator(environment_hydrator, name=ENVIRONMENT_HYDRATOR, order=ENVIRONMENT_ORDER)


def _ordered() -> list[_Registration]:
    return sorted(_registrations.items(), key=lambda r: r.order)


def hydrate(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> TaskContext:
    """Run the hydrator chain once and return the merged, read-only TaskContext.

    Any failure raises a ContextError before a task can start.
    """
    request_path = Path(path) if path is not None else None
    base = Path(cwd) if cwd is not None else Path.cwd()
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    sources: list[str] = []
    for registration in _ordered():
        request = HydrationRequest(request_path, base, env, TaskContext(data, sources=tuple(sources)))
        try:
            answer = registration.hydrator(request)
        except TaskEngineError:
            raise
        except Exception as error:
            raise HydrationError(
                f"context hydrator {registration.name!r} raised {type(error).__name__}: {mask_text(str(error))}; "
                f"no task was started"
            ) from error
        source = registration.name
        if isinstance(answer, Hydrated):
            source, answer = answer.source, answer.data
        if answer is None:
            answer = {}
        if not isinstance(answer, Mapping):
            raise HydrationError(
                f"context hydrator {registration.name!r} returned {type(answer).__name__}; "
                f"a hydrator returns a mapping (or None when it has nothing)"
            )
        data = deep_merge(data, answer)
        sources.append(source)
    # A run starts here on every backend: from now on log records mask the secrets it may reveal
    # (installed once; constructing a Secret alone changes no process-wide logging).
    install_log_masking()
    return TaskContext(data, sources=tuple(sources))


# -- built-in hydrators ---------------------------------------------------------------------------
def yaml_file_hydrator(request: HydrationRequest) -> Hydrated:
    """The default hydrator: the explicit context file, else `task_engine.yml` in the working directory if present."""
    if request.path is not None:
        path = request.path if request.path.is_absolute() else request.cwd / request.path
        if not path.exists():
            raise ContextFileError(
                f"context file '{path}' does not exist; check the path given with --context or "
                f"PipelineExecutor(context=...)",
                str(path),
            )
    else:
        path = request.cwd / DEFAULT_CONTEXT_FILE
        if not path.exists():
            return Hydrated({}, f"{YAML_FILE_HYDRATOR} {path} (not found)")
    return Hydrated(load_context_file(path, environ=request.environ), f"{YAML_FILE_HYDRATOR} {path}")


def environment_hydrator(request: HydrationRequest) -> Hydrated:
    """`TASK_ENGINE__TENANT_INFO__URL=x` -> `{"tenant_info": {"url": "x"}}`; sensitive names become secrets."""
    data: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for variable in sorted(request.environ):
        if not variable.startswith(ENV_PREFIX):
            continue
        parts = tuple(part.lower() for part in variable[len(ENV_PREFIX) :].split("__"))
        if not all(parts):
            raise HydrationError(
                f"environment variable {variable!r} has an empty key part; separate levels with exactly "
                f"two underscores, e.g. {ENV_PREFIX}TENANT_INFO__URL"
            )
        value: Any = request.environ[variable]
        if is_sensitive_name(parts[-1]):
            value = Secret(value)
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise HydrationError(_env_conflict(variable, origin[parts[: depth + 1]]))
            origin.setdefault(parts[: depth + 1], variable)
            node = child
        if parts[-1] in node:
            raise HydrationError(_env_conflict(variable, origin[parts]))
        node[parts[-1]] = value
        origin[parts] = variable
    return Hydrated(data, f"{ENVIRONMENT_HYDRATOR} {ENV_PREFIX}*")


def _env_conflict(variable: str, other: str) -> str:
    return (
        f"environment variables {other!r} and {variable!r} both set context key "
        f"{'.'.join(p.lower() for p in other[len(ENV_PREFIX) :].split('__'))!r}, one as a value and one as a "
        f"section; unset one of them"
    )


def build_context(context: Any) -> TaskContext:
    """What the executor does with its `context=` argument: keep a TaskContext, wrap a mapping, hydrate a path or None."""
    install_log_masking()  # a run starts: its secrets, however the context came, are masked in logs
    if isinstance(context, TaskContext):
        return context
    if isinstance(context, Mapping):
        return TaskContext(context, sources=("executor argument",) if context else ())
    if context is None or isinstance(context, (str, os.PathLike)):
        return hydrate(context)
    raise ContextError(
        f"context={context!r}: pass a context file path, a mapping, a TaskContext or None "
        f"(None reads {DEFAULT_CONTEXT_FILE} and the environment)"
    )


reset_hydrators()
