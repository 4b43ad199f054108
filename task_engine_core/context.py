"""TaskContext: the run's read-only configuration, given to every task as `self.context`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .errors import ContextKeyError

__all__ = ["TaskContext"]


class TaskContext(Mapping[str, Any]):
    """A read-only, nested mapping; a missing key names its dotted path and the sources consulted."""

    __slots__ = ("_data", "_sources", "_path")

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, sources: tuple[str, ...] = (), path: str = ""
    ) -> None:
        object.__setattr__(self, "_data", dict(data or {}))
        object.__setattr__(self, "_sources", tuple(sources))
        object.__setattr__(self, "_path", path)

    @property
    def sources(self) -> tuple[str, ...]:
        """Names of the hydrators that built this context, in the order they were applied."""
        return self._sources

    def __getitem__(self, key: str) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            raise ContextKeyError(self._dotted(key), self._sources) from None
        if isinstance(value, Mapping) and not isinstance(value, TaskContext):
            return TaskContext(value, sources=self._sources, path=self._dotted(key))
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("TaskContext is read-only; change the context file or a hydrator instead")

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError(
            f"TaskContext is read-only: cannot set {self._dotted(key)!r}; "
            f"change the context file or a hydrator instead"
        )

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"TaskContext is read-only: cannot delete {self._dotted(key)!r}")

    def get_path(self, dotted: str, default: Any = ...) -> Any:
        """Look up `a.b.c`; without a default a missing part raises ContextKeyError."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is ...:
                    raise ContextKeyError(dotted, self._sources)
                return default
            node = node[part]
        return node

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable deep copy of the data."""
        return _plain(self._data)

    def _dotted(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else str(key)

    def __repr__(self) -> str:
        return f"TaskContext({self._data!r})"


def _plain(value: Any) -> Any:
    if isinstance(value, TaskContext):
        return _plain(value._data)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
