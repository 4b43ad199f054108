"""The typed state of one task's attempts (modelled on tenacity's RetryCallState) and a handler's decision.

An AttemptState is handed explicitly to everything that acts around an attempt: guards
(`before_attempt(state)`), the backoff (`Backoff.delay_for(state)`), a `retry_handler(error,
state)` that asks for it, and the task itself (`task.attempt_state`) for code inside
`perform_task` such as the rate limiter or the HTTP task. There is no context variable: who needs
the state is given it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import Event, EventBus, WaitFinished, WaitStarted

if TYPE_CHECKING:
    from ._policies import TaskPolicies
    from ._task import Task

__all__ = ["AttemptState", "HandlerDecision"]


@dataclass(frozen=True)
class HandlerDecision:
    """What a `retry_handler` may return to decide with a reason: retry (after `delay`, None = backoff) or give up."""

    retry: bool
    delay: float | None = None
    reason: str = ""

    @classmethod
    def retry_after(cls, seconds: float | None = None, reason: str = "") -> HandlerDecision:
        """Retry after `seconds` (None: the task's backoff), saying why."""
        return cls(True, seconds, reason)

    @classmethod
    def give_up(cls, reason: str = "") -> HandlerDecision:
        """No further attempt, saying why."""
        return cls(False, None, reason)


@dataclass(eq=False)
class AttemptState:
    """One task's state across its attempts in one run: attempt, limits, last error, time, waits, context."""

    name: str
    policies: TaskPolicies
    task: Task
    run_id: str = ""
    events: EventBus = field(default_factory=EventBus)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    attempt: int = 0
    last_error: BaseException | None = None
    started: float | None = None
    waits: dict[str, float] = field(default_factory=dict)
    first_poll: dict[str, float] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    # Attempt threads a timeout gave up on, and the waits each thread has open (closed by `abandon`).
    _abandoned: set[threading.Thread] = field(default_factory=set, init=False, repr=False)
    _open_waits: dict[threading.Thread, list[tuple[str, str, float]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _waits_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def max_attempts(self) -> int:
        """Total attempts the task's retry policy allows."""
        return self.policies.max_attempts

    @property
    def elapsed(self) -> float:
        """Seconds since the task's first attempt began (0.0 before it)."""
        return 0.0 if self.started is None else self.clock() - self.started

    def emit(self, event: Event) -> None:
        """Send an event of this task to the run's listeners (never from an attempt thread a timeout abandoned)."""
        if self._abandoned and threading.current_thread() in self._abandoned:
            return  # the attempt is over for the run: what its thread does later is not an event of it
        self.events.emit(event)

    def record_wait(self, reason: str, seconds: float) -> None:
        """Add `seconds` to the time this task spent waiting for `reason`."""
        if self._abandoned and threading.current_thread() in self._abandoned:
            return
        self.waits[reason] = self.waits.get(reason, 0.0) + seconds

    @contextmanager
    def waiting(self, reason: str, key: str, seconds: float | None = None, message: str = "") -> Iterator[None]:
        """Report and record a blocking wait around the block (rate limit, resource, retry)."""
        self.emit(WaitStarted(self.run_id, self.name, reason, key, seconds, message))
        thread = threading.current_thread()
        wait = (reason, key, self.clock())
        with self._waits_lock:
            self._open_waits.setdefault(thread, []).append(wait)
        ok = False
        try:
            yield
            ok = True
        finally:
            with self._waits_lock:
                opened = self._open_waits.get(thread, [])
                still_open = wait in opened
                if still_open:
                    opened.remove(wait)
                    if not opened:
                        del self._open_waits[thread]
            if still_open:  # else `abandon` ended it already
                waited = self.clock() - wait[2]
                self.record_wait(reason, waited)
                self.emit(WaitFinished(self.run_id, self.name, reason, key, waited, ok))

    def abandon(self, thread: threading.Thread) -> None:
        """Give up on attempt `thread` (a timeout fired): end its open waits now, unfinished, and ignore it from now on."""
        with self._waits_lock:
            self._abandoned.add(thread)
            opened = self._open_waits.pop(thread, [])
        now = self.clock()
        for reason, key, started in reversed(opened):  # innermost first, as the thread would have ended them
            self.waits[reason] = self.waits.get(reason, 0.0) + (now - started)
            self.events.emit(WaitFinished(self.run_id, self.name, reason, key, now - started, False))
