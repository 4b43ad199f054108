"""TaskContext: the run's read-only configuration, hydrated once and given to every task as `self.context`.

Hydrators form a chain ordered by `order` (ties: registration order). Each returns a mapping that
is deep-merged over the result of the ones before it, so later hydrators override earlier ones.
Built in: the YAML file hydrator (order 0: `task_engine.yml` in the working directory, or the
path given with `--context` / `PipelineExecutor(context=PATH)`) and the environment hydrator
(order 1000: `TASK_ENGINE__TENANT_INFO__URL` -> `tenant_info.url`). Applications register their
own with `register_hydrator` (default order 100: above the file, below the environment).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._registry import Registry
from ._secrets import SENSITIVE_WORDS, Secret, install_log_masking, is_secret, mask_secrets, mask_text
from .errors import (
    ContextError,
    ContextFileError,
    ContextKeyError,
    HydrationError,
    InvalidArgumentError,
    TaskEngineError,
)

__all__ = [
    "TaskContext",
    "Secret",
    "Hydrated",
    "HydrationRequest",
    "Hydrator",
    "register_hydrator",
    "unregister_hydrator",
    "registered_hydrators",
    "reset_hydrators",
    "hydrate",
    "load_context_file",
    "yaml_file_hydrator",
    "environment_hydrator",
    "deep_merge",
    "mask_secrets",
    "mask_text",
    "DEFAULT_CONTEXT_FILE",
    "ENV_PREFIX",
]

#: The file the default hydrator reads from the working directory when no path is given.
DEFAULT_CONTEXT_FILE = "task_engine.yml"
#: Environment variables with this prefix become context keys (`__` separates levels).
ENV_PREFIX = "TASK_ENGINE__"
YAML_FILE_ORDER, DEFAULT_ORDER, ENVIRONMENT_ORDER = 0, 100, 1000
YAML_FILE_HYDRATOR, ENVIRONMENT_HYDRATOR = "yaml file", "environment"
# SENSITIVE_WORDS (owned by _secrets): environment values whose last key part contains one are
# marked secret (env has no tags); the Airflow adapter marks Variables and params the same way.


class TaskContext(Mapping[str, Any]):
    """A read-only, nested mapping; a missing key names its dotted path and the sources consulted.

    Nested mappings are TaskContexts and lists are tuples, built once, so the same objects are
    shared safely by every thread. Secret values stay `Secret` objects (call `.reveal()`), and
    repr/str show them as `***`.
    """

    __slots__ = ("_data", "_path", "_sources")
    _data: dict[str, Any]
    _sources: tuple[str, ...]
    _path: str

    def __init__(self, data: Mapping[str, Any] | None = None, *, sources: tuple[str, ...] = (), path: str = "") -> None:
        sources = tuple(sources)
        frozen = {
            key: _freeze(value, sources, f"{path}.{key}" if path else str(key)) for key, value in (data or {}).items()
        }
        object.__setattr__(self, "_data", frozen)
        object.__setattr__(self, "_sources", sources)
        object.__setattr__(self, "_path", path)

    @property
    def sources(self) -> tuple[str, ...]:
        """Names of the hydrators that built this context, in the order they were applied."""
        return self._sources

    def __getitem__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise ContextKeyError(self._dotted(key), self._sources) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("TaskContext is read-only; change the context file or a hydrator instead")

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError(
            f"TaskContext is read-only: cannot set {self._dotted(key)!r}; change the context file or a hydrator instead"
        )

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"TaskContext is read-only: cannot delete {self._dotted(key)!r}")

    def get_path(self, dotted: str, default: Any = ...) -> Any:
        """Look up `a.b.c`; without a default a missing part raises ContextKeyError."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is ...:
                    full = f"{self._path}.{dotted}" if self._path else dotted
                    raise ContextKeyError(full, self._sources)
                return default
            node = node[part]
        return node

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable deep copy of the data; secrets stay `Secret` objects."""
        plain: dict[str, Any] = _plain(self._data)
        return plain

    def redacted(self) -> dict[str, Any]:
        """A plain deep copy with every secret replaced by `***`: safe for reports, spans and logs."""
        masked: dict[str, Any] = mask_secrets(self._data)
        return masked

    def _dotted(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else str(key)

    def __repr__(self) -> str:
        return f"TaskContext({self.redacted()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.to_dict(), self._sources, self._path))


def _rebuild(data: dict[str, Any], sources: tuple[str, ...], path: str) -> TaskContext:
    return TaskContext(data, sources=sources, path=path)


def _freeze(value: Any, sources: tuple[str, ...], path: str) -> Any:
    if isinstance(value, TaskContext):
        return value
    if isinstance(value, Mapping):
        return TaskContext(value, sources=sources, path=path)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item, sources, f"{path}[{i}]") for i, item in enumerate(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, TaskContext):
        return _plain(value._data)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# -- hydration -----------------------------------------------------------------------------------
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


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `overlay` over `base`: mappings merge key by key, anything else is replaced.

    A value that was secret stays secret when a later hydrator overrides it with a plain value.
    """
    merged: dict[str, Any] = _plain(base)
    for key, value in overlay.items():
        old = merged.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = deep_merge(old, value)
        elif is_secret(old) and not is_secret(value) and not isinstance(value, Mapping):
            merged[key] = Secret(value)
        else:
            merged[key] = _plain(value)
    return merged


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
        if any(word in parts[-1] for word in SENSITIVE_WORDS):
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


# -- the YAML loader -------------------------------------------------------------------------------
class _Refused(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


_loader_class: Any = None


def _yaml_loader() -> Any:
    """A yaml.SafeLoader with `!secret` and `!env NAME`; every other tag is refused."""
    global _loader_class
    if _loader_class is not None:
        return _loader_class
    try:
        import yaml
    except ImportError:  # PyYAML is a dependency; a broken install should still say what to do
        from .errors import MissingExtraError

        raise MissingExtraError("PyYAML", "yaml", "reading a context file") from None

    class ContextLoader(yaml.SafeLoader):
        environ: Mapping[str, str] = os.environ

    def scalar(loader: Any, node: Any, tag: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise _Refused(f"{tag} applies to a single value, not to a {node.id}", node.start_mark.line + 1)
        return str(loader.construct_scalar(node))

    def construct_secret(loader: Any, node: Any) -> Secret:
        return Secret(scalar(loader, node, "!secret"))

    def construct_env(loader: Any, node: Any) -> Secret:
        name = scalar(loader, node, "!env").strip()
        if name not in loader.environ:
            raise _Refused(
                f"environment variable {name!r} (from !env) is not set; set it or change the value",
                node.start_mark.line + 1,
            )
        return Secret(loader.environ[name])

    def refuse(loader: Any, node: Any) -> Any:
        tag = node.tag
        shown = "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag
        if "python/" in tag:
            why = "the context loader builds plain data only (yaml.safe_load), never Python objects"
        else:
            why = "the context loader knows only !secret and !env"
        raise _Refused(f"the tag {shown!r} is not allowed: {why}; remove the tag", node.start_mark.line + 1)

    ContextLoader.add_constructor("!secret", construct_secret)
    ContextLoader.add_constructor("!env", construct_env)
    ContextLoader.add_constructor(None, refuse)
    _loader_class = ContextLoader
    return ContextLoader


#: How many values a context file may expand to through YAML aliases (`&a` ... `*a`).
MAX_ALIASED_VALUES = 100_000
#: How deeply a context file's mappings and lists may nest: far beyond any real configuration, and
#: low enough that freezing, merging, masking and reporting the context never exhaust Python's stack.
MAX_CONTEXT_DEPTH = 100


def _too_deep(path: Path, line: int | None) -> ContextFileError:
    where = f", line {line}" if line is not None else ""
    return ContextFileError(
        f"context file '{path}'{where}: its mappings and lists nest more than {MAX_CONTEXT_DEPTH} levels deep; "
        f"flatten the structure (a context holds configuration, not deep data)",
        str(path),
        line,
    )


def _check_expansion(root: Any, path: Path) -> None:
    """Refuse a document whose aliases multiply it beyond MAX_ALIASED_VALUES ("billion laughs").

    PyYAML shares an aliased node, but the context is frozen, merged and shown value by value, so
    nine nested aliases of ten items each would become a billion values. Counted per distinct node.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any, depth: int = 1) -> int:
        if id(node) in open_nodes:
            raise ContextFileError(
                f"context file '{path}', line {node.start_mark.line + 1}: a value contains an alias of itself "
                f"(a recursive alias), which the context cannot hold; replace the alias with the values it should have",
                str(path),
                node.start_mark.line + 1,
            )
        known = sizes.get(id(node))
        if known is not None:
            return known
        open_nodes.add(id(node))
        if isinstance(node.value, list):  # a mapping or a sequence: one level deeper
            if depth > MAX_CONTEXT_DEPTH:
                raise _too_deep(path, node.start_mark.line + 1)
            children = (item for pair in node.value for item in (pair if isinstance(pair, tuple) else (pair,)))
            total = 1 + sum(size(child, depth + 1) for child in children)
        else:
            total = 1
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    if size(root) > MAX_ALIASED_VALUES and size(root) > len(sizes):
        raise ContextFileError(
            f"context file '{path}': its YAML aliases expand to more than {MAX_ALIASED_VALUES:,} values; use fewer "
            f"or smaller aliases (the limit keeps a small file from taking every byte of memory)",
            str(path),
        )


def load_context_file(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read a context YAML file (safe loader plus `!secret` / `!env NAME`); errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ContextFileError(
            f"cannot read context file '{path}': it is not UTF-8 text ({error.reason} at byte {error.start})",
            str(path),
        ) from None
    except OSError as error:
        raise ContextFileError(
            f"cannot read context file '{path}': {error.strerror or error}; check the path and its permissions",
            str(path),
        ) from None
    loader_class = _yaml_loader()
    import yaml

    loader = loader_class(text)
    loader.environ = os.environ if environ is None else environ
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, path)
        data = loader.construct_document(node) if node is not None else None
    except _Refused as refused:
        raise ContextFileError(
            f"context file '{path}', line {refused.line}: {refused}", str(path), refused.line
        ) from None
    except RecursionError:  # PyYAML's parser recurses per level: thousands of levels end here
        raise _too_deep(path, None) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        where = f", line {line}, column {mark.column + 1}" if mark is not None else ""
        problem = error.problem or "malformed YAML"
        if error.context and error.context_mark is not None:
            problem += f" ({error.context} that starts on line {error.context_mark.line + 1})"
        raise ContextFileError(
            f"context file '{path}' is not valid YAML{where}: {problem}; fix the file", str(path), line
        ) from None
    except yaml.YAMLError as error:
        raise ContextFileError(f"context file '{path}' is not valid YAML: {error}; fix the file", str(path)) from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ContextFileError(
            f"context file '{path}' must hold a mapping (key: value lines) at the top level, "
            f"not a {type(data).__name__}",
            str(path),
        )
    return data


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
