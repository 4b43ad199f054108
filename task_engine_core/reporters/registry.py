"""Process-wide reporter registry: reporters that every run in this process delivers events to."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..events import Listener

__all__ = ["register_reporter", "registered_reporters"]

_lock = threading.Lock()
_registered: list[Listener] = []


def register_reporter(reporter: Listener) -> Callable[[], None]:
    """Give the events of runs of every PipelineExecutor made from now on to `reporter`; returns an unregister function.

    Choose this over `PipelineExecutor(listeners=...)` when the code that builds the executor is
    not yours (the CLI, an example runner). A reporter that raises is logged and never breaks a run.
    """
    if not callable(reporter):
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"register_reporter got {reporter!r}, which is not callable; "
            f"pass a Reporter instance or a function taking one event"
        )
    with _lock:
        _registered.append(reporter)

    def unregister() -> None:
        with _lock:
            if reporter in _registered:
                _registered.remove(reporter)

    return unregister


def registered_reporters() -> tuple[Listener, ...]:
    """The reporters registered with `register_reporter`, in registration order."""
    with _lock:
        return tuple(_registered)
