"""One registry type for every process-wide plug-in list (hydrators, reporters, telemetry exporters).

`register` returns an undo function (pluggy's monitoring style), so code that adds something for a
while (a DAG build, a test) takes away exactly what it added and nothing registered since.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A thread-safe list of registered items in registration order; a keyed item replaces its namesake."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[object, T] = {}
        # Unkeyed items get a fresh key each; a keyed one re-registered moves to the end.
        self._anonymous = itertools.count()

    def register(self, item: T, key: str | None = None) -> Callable[[], None]:
        """Add `item` (replacing an item registered under the same `key`); returns a function that removes it again."""
        slot: object = key if key is not None else ("anonymous", next(self._anonymous))
        with self._lock:
            self._entries.pop(slot, None)
            self._entries[slot] = item

        def undo() -> None:
            with self._lock:
                # Only this registration: a later one under the same key stays.
                if slot in self._entries and self._entries[slot] is item:
                    del self._entries[slot]

        return undo

    def unregister(self, key: str) -> None:
        """Remove the item registered under `key` (no error if there is none)."""
        with self._lock:
            self._entries.pop(key, None)

    def remove(self, item: T) -> None:
        """Remove every registration of `item` (no error if there is none)."""
        with self._lock:
            for slot in [slot for slot, entry in self._entries.items() if entry is item]:
                del self._entries[slot]

    def clear(self) -> None:
        """Remove everything."""
        with self._lock:
            self._entries.clear()

    def items(self) -> tuple[T, ...]:
        """The registered items, oldest first."""
        with self._lock:
            return tuple(self._entries.values())
