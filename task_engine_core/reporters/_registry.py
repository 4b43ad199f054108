"""Process-wide reporter registry: reporters that every run in this process delivers events to."""

from __future__ import annotations

from collections.abc import Callable

from .._registry import Registry
from ..events import Listener

__all__ = ["register_reporter", "registered_reporters"]

_registered: Registry[Listener] = Registry()


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
    return _registered.register(reporter)


def registered_reporters() -> tuple[Listener, ...]:
    """The reporters registered with `register_reporter`, in registration order."""
    return _registered.items()
