"""Reporter: a run-event listener with one method per event kind."""

from __future__ import annotations

from ..events import (
    AttemptFailed,
    AttemptStarted,
    Event,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskStarted,
    WaitFinished,
    WaitStarted,
)

__all__ = ["Reporter", "WAIT_LINE_THRESHOLD"]

#: Waits shorter than this many seconds (a rate limit's 0.03 s) get no line of their own.
WAIT_LINE_THRESHOLD = 0.5


class Reporter:
    """Base class for listeners: override the `on_...` methods you need; the rest do nothing."""

    def __call__(self, event: Event) -> None:
        getattr(self, event.hook, self.on_event)(event)

    def on_event(self, event: Event) -> None:
        """Any event without a method of its own."""

    def on_run_started(self, event: RunStarted) -> None:
        """The run is about to start its first task."""

    def on_task_started(self, event: TaskStarted) -> None:
        """A task starts."""

    def on_attempt_started(self, event: AttemptStarted) -> None:
        """An attempt of a task starts."""

    def on_attempt_failed(self, event: AttemptFailed) -> None:
        """An attempt of a task raised."""

    def on_retry_scheduled(self, event: RetryScheduled) -> None:
        """A task will be retried after a delay."""

    def on_wait_started(self, event: WaitStarted) -> None:
        """A task blocks on a retry delay, a rate limit or a resource."""

    def on_wait_finished(self, event: WaitFinished) -> None:
        """A wait ended."""

    def on_task_finished(self, event: TaskFinished) -> None:
        """A task reached its final state."""

    def on_run_finished(self, event: RunFinished) -> None:
        """The run ended."""
