"""TaskContext: the run's read-only configuration value, and the deep merge that builds it layer by layer.

A TaskContext is a frozen, nested mapping given to every task as `self.context`; a missing key
names its dotted path and the sources consulted. Where its data comes from (the hydrator chain)
is `_hydrators`; how a context file is read (the YAML dialect) is `_context_file`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._secrets import Secret, is_secret, mask_secrets
from .errors import ContextKeyError

__all__ = ["TaskContext", "deep_merge"]


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
