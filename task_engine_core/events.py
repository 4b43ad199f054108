"""Run events and the bus that delivers them; reporters, stats and telemetry listen here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._result import RunResult, TaskResult

__all__ = [
    "Event",
    "RunStarted",
    "TaskStarted",
    "AttemptStarted",
    "AttemptFailed",
    "RetryScheduled",
    "WaitStarted",
    "WaitFinished",
    "TaskFinished",
    "RunFinished",
    "EventBus",
    "Listener",
]

logger = logging.getLogger("task_engine")

#: A listener is any callable taking one event.
Listener = Callable[["Event"], Any]


@dataclass(frozen=True)
class Event:
    """Base of every run event; `hook` names the Reporter method that handles it."""

    hook: ClassVar[str] = "on_event"
    run_id: str


@dataclass(frozen=True)
class RunStarted(Event):
    """A run validated its pipeline and is about to start tasks in `plan` order."""

    hook: ClassVar[str] = "on_run_started"
    pipeline: str
    plan: tuple[str, ...]
    upstream: dict[str, tuple[str, ...]] = field(default_factory=dict)
    workers: int = 1
    time: float = 0.0
    trace_id: str | None = None


@dataclass(frozen=True)
class TaskStarted(Event):
    """A task left the ready queue and starts its first attempt on `worker`.

    `trace_id` is set where the run's RunStarted is not seen in this process (an Airflow try):
    the trace the task's span joins.
    """

    hook: ClassVar[str] = "on_task_started"
    task: str
    worker: str = ""
    time: float = 0.0
    trace_id: str | None = None


@dataclass(frozen=True)
class AttemptStarted(Event):
    """One attempt of a task begins (guards such as rate limits run inside it)."""

    hook: ClassVar[str] = "on_attempt_started"
    task: str
    attempt: int
    max_attempts: int


@dataclass(frozen=True)
class AttemptFailed(Event):
    """One attempt raised `error`; what happens next follows in RetryScheduled or TaskFinished."""

    hook: ClassVar[str] = "on_attempt_failed"
    task: str
    attempt: int
    max_attempts: int
    error: BaseException


@dataclass(frozen=True)
class RetryScheduled(Event):
    """The task will run attempt `next_attempt` after `delay` seconds."""

    hook: ClassVar[str] = "on_retry_scheduled"
    task: str
    next_attempt: int
    max_attempts: int
    delay: float
    error: BaseException
    reason: str = ""


@dataclass(frozen=True)
class WaitStarted(Event):
    """A task blocks: `reason` is 'retry', 'rate_limit' or 'resource'; `seconds` may be an estimate."""

    hook: ClassVar[str] = "on_wait_started"
    task: str
    reason: str
    key: str
    seconds: float | None = None
    message: str = ""


@dataclass(frozen=True)
class WaitFinished(Event):
    """A wait ended after `seconds`; `ok` is False when it timed out."""

    hook: ClassVar[str] = "on_wait_finished"
    task: str
    reason: str
    key: str
    seconds: float
    ok: bool = True


@dataclass(frozen=True)
class TaskFinished(Event):
    """A task reached its final state."""

    hook: ClassVar[str] = "on_task_finished"
    task: str
    result: TaskResult


@dataclass(frozen=True)
class RunFinished(Event):
    """Every task has a final state; `result` is the whole run."""

    hook: ClassVar[str] = "on_run_finished"
    result: RunResult


class EventBus:
    """Delivers events to listeners in subscription order; a listener that raises is logged only.

    Delivery is synchronous: `emit` calls every listener on the thread that emits, before it
    returns. Run events come from the thread that runs the run; a task's events (TaskStarted to
    TaskFinished, its attempts and waits) all come from the one thread that runs that task's
    attempts, so a listener may keep per-task thread state (the tracing listener's current span).
    Listeners must not change events or results: they observe.
    """

    def __init__(self, listeners: tuple[Listener, ...] | list[Listener] = ()) -> None:
        self._listeners: list[Listener] = list(listeners)
        self._lock = threading.Lock()
        self._wanted: dict[type, bool] = {}

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it again."""
        with self._lock:
            self._listeners = [*self._listeners, listener]
            self._wanted = {}

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = [item for item in self._listeners if item is not listener]
                self._wanted = {}

        return unsubscribe

    def wants(self, event_type: type[Event]) -> bool:
        """True when some listener may handle `event_type`, so emitters can skip building unread events.

        A listener narrows what it receives with an `event_types` attribute (a tuple of Event
        classes); a listener without one receives everything.
        """
        wanted = self._wanted
        try:
            return wanted[event_type]
        except KeyError:
            answer = any(
                issubclass(event_type, tuple(getattr(listener, "event_types", (Event,))))
                for listener in self._listeners
            )
            wanted[event_type] = answer
            return answer

    @property
    def listeners(self) -> tuple[Listener, ...]:
        """The current listeners."""
        return tuple(self._listeners)

    def emit(self, event: Event) -> None:
        """Give `event` to every listener; exceptions are logged and never reach the run."""
        for listener in self._listeners:  # copy-on-write list: safe to iterate without the lock
            try:
                listener(event)
            except Exception:
                logger.exception("listener %r failed on %s; the run goes on", listener, type(event).__name__)
            except BaseException as error:
                # A listener's SystemExit (or its own BaseException) is still only that listener's
                # failure: on a worker thread it would end the thread and leave the run waiting.
                # A KeyboardInterrupt in the main thread is the user's Ctrl-C: let it through.
                if isinstance(error, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
                    raise
                logger.error(
                    "listener %r raised %s on %s; the run goes on",
                    listener,
                    type(error).__name__,
                    type(event).__name__,
                    exc_info=True,
                )
