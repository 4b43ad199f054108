"""What the engine can run as a task, and running a coroutine task on the calling worker thread.

A task's body is called with no arguments (a function task may take `context=`); it may be a plain
function or a coroutine function (`async def`), which runs to completion on an event loop of the
worker thread's own (one per thread, reused by its later tasks). A generator cannot be run as a
task (its body would never execute), and a Task class the engine cannot instantiate without
arguments would fail only when reached: both are definition errors at registration.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable
from typing import Any

from .errors import NotATaskError

__all__ = ["check_runnable", "close_thread_loop", "is_awaitable", "run_awaitable"]

_GENERATOR_HINT = (
    "a generator cannot be run as a task (its body would never execute); return a value, or collect "
    "the items in a list, instead of using yield"
)


def check_runnable(target: Any) -> None:
    """Raise NotATaskError when the engine could not run `target` (a Task class or a function) as a task."""
    if isinstance(target, type):
        body = getattr(target, "perform_task", None)
        if not callable(body):
            raise NotATaskError(
                target, reason=f"whose perform_task is {body!r}, not a method; define perform_task(self)"
            )
        if inspect.isgeneratorfunction(body) or inspect.isasyncgenfunction(body):
            raise NotATaskError(target, reason=f"whose perform_task is a generator function: {_GENERATOR_HINT}")
        missing = _required_parameters(target)
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise NotATaskError(
                target,
                reason=(
                    f"whose __init__ needs {names}, but the engine creates each task with no arguments; "
                    f"give them defaults, or read settings from self.context in perform_task"
                ),
            )
        return
    if inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target):
        raise NotATaskError(target, reason=f"which is a generator function: {_GENERATOR_HINT}")


def _required_parameters(cls: type) -> list[str]:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # a builtin-backed __init__ without a signature: cannot tell
        return []
    return [p.name for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


_thread_loops = threading.local()


def run_awaitable(awaitable: Awaitable[Any]) -> Any:
    """Run a coroutine task's body to completion on this worker thread's own event loop."""
    import asyncio  # only coroutine tasks pay for it

    loop = getattr(_thread_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_loops.loop = loop
    return loop.run_until_complete(_as_coroutine(awaitable))


def close_thread_loop() -> None:
    """Close this thread's event loop, if a coroutine task made one: for a thread that runs one attempt and ends."""
    loop = getattr(_thread_loops, "loop", None)
    if loop is not None:
        _thread_loops.loop = None
        if not loop.is_closed():
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())  # as asyncio.run() does before closing
            finally:
                loop.close()


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def is_awaitable(value: object) -> bool:
    """True for what a coroutine function (or any other awaitable-returning body) gave back."""
    return value is not None and inspect.isawaitable(value)  # most tasks return None
