"""ProgressReporter: a live status line on a terminal, plain lines anywhere else."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from .._result import RunResult
from .._secrets import error_text, mask_text
from .._task import TaskState
from ..events import RetryScheduled, RunFinished, RunStarted, TaskFinished, TaskStarted, WaitFinished, WaitStarted
from ._base import WAIT_LINE_THRESHOLD, Reporter

__all__ = ["ProgressReporter", "describe_wait", "format_seconds", "format_run_totals"]

_WAIT_NAMES = {"rate_limit": "rate limit", "resource": "resource", "retry": "retry"}


def format_seconds(seconds: float) -> str:
    """Seconds as `m:ss` (or `h:mm:ss`), the way the status line shows elapsed time and ETA."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_run_totals(result: RunResult) -> str:
    """The one-line end of a run: `run finished in 3.50 s: 3 success, 1 skipped` (or `interrupted by SIGTERM`)."""
    counts = {state.value: n for state, n in result.counts().items()}
    totals = ", ".join(f"{n} {state}" for state, n in counts.items())
    took = f" in {result.duration:.2f} s" if result.duration is not None else ""
    ended = f"interrupted by {result.interrupted}" if result.interrupted else "finished"
    return f"run {ended}{took}: {totals}"


def describe_wait(event: WaitStarted) -> str:
    """Why a task waits, in a few words: `rate limit '/jobs/runs/get' ~0.8 s`."""
    if event.message:
        return event.message
    what = _WAIT_NAMES.get(event.reason, event.reason)
    key = f" {event.key!r}" if event.key and event.reason != "retry" else ""
    seconds = f" ~{event.seconds:.1f} s" if event.seconds is not None else ""
    return f"{what}{key}{seconds}"


def _one_line(error: BaseException | None) -> str:
    if error is None:
        return ""
    text = " ".join(error_text(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class ProgressReporter(Reporter):
    """Shows a run's progress: done/total, running, failed, skipped, elapsed, ETA and who waits why.

    On a terminal one status line is redrawn in place (and refreshed every `refresh` seconds);
    otherwise each change is one plain line, which suits CI logs. `expected` maps task names to
    expected durations in seconds (from recorded statistics); without it there is no ETA.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        expected: Mapping[str, float] | None = None,
        refresh: float | None = 0.5,
        clock: Callable[[], float] = time.monotonic,
        wait_threshold: float = WAIT_LINE_THRESHOLD,
    ) -> None:
        self._stream = stream
        self.wait_threshold = wait_threshold
        self._upstream: dict[str, tuple[str, ...]] = {}
        self._stdout_shield: _StatusClearingStdout | None = None
        self._tty = tty
        self.expected = dict(expected or {})
        self.refresh = refresh
        self.clock = clock
        self._lock = threading.RLock()
        self._total = 0
        self._workers = 1
        self._started_at = 0.0
        self._running: dict[str, float] = {}
        self._waiting: dict[str, str] = {}
        self._counts: dict[TaskState, int] = {}
        self._done = 0
        self._plan: tuple[str, ...] = ()
        self._planned: frozenset[str] = frozenset()
        self._finished: set[str] = set()
        self._status_shown = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- output ------------------------------------------------------------------------------
    @property
    def stream(self) -> TextIO:
        """Where progress goes: the given stream, else standard error looked up now."""
        return self._stream or sys.stderr

    @property
    def is_tty(self) -> bool:
        """True when the status line is redrawn in place."""
        if self._tty is not None:
            return self._tty
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _line(self, text: str) -> None:
        with self._lock:
            if self.is_tty:
                self.stream.write("\r\x1b[K" + text + "\n")
                self._draw_status()
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _redraw(self) -> None:
        with self._lock:
            if self.is_tty:
                self._draw_status()
                self.stream.flush()

    def _draw_status(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        text = self.status_line()
        if len(text) > width - 1:
            text = text[: max(width - 2, 10)] + "…"
        self.stream.write("\r\x1b[K" + text)
        self._status_shown = True

    # -- the status line -----------------------------------------------------------------------
    def eta(self) -> float | None:
        """Seconds until the run should end, from expected durations; None without statistics.

        The longer of the remaining critical path (a chain cannot go faster than its tasks one
        after another, however many workers) and the remaining work spread over the workers.
        """
        if not self.expected:
            return None
        with self._lock:
            now = self.clock()
            known = list(self.expected.values())
            typical = sum(known) / len(known)
            left: dict[str, float] = {}
            for name in self._plan:
                if name in self._finished:
                    continue
                started = self._running.get(name)
                expected = self.expected.get(name, typical)
                left[name] = max(expected - (now - started), 0.0) if started is not None else expected
            below: dict[str, float] = {}  # the longest remaining path that starts at each task
            downstream: dict[str, list[str]] = {}
            for name, parents in self._upstream.items():
                for parent in parents:
                    downstream.setdefault(parent, []).append(name)
            for name in reversed(self._plan):  # the plan is a topological order: children come later
                if name in left:
                    below[name] = left[name] + max((below.get(c, 0.0) for c in downstream.get(name, ())), default=0.0)
            critical = max(below.values(), default=0.0)
            return max(critical, sum(left.values()) / max(self._workers, 1))

    def status_line(self) -> str:
        """The one-line summary shown on a terminal."""
        with self._lock:
            elapsed = self.clock() - self._started_at if self._started_at else 0.0
            parts = [
                f"{self._done}/{self._total} done",
                f"running {len(self._running)}",
                f"failed {self._counts.get(TaskState.FAILED, 0)}",
                f"skipped {self._counts.get(TaskState.SKIPPED, 0)}",
                f"elapsed {format_seconds(elapsed)}",
            ]
            eta = self.eta()
            if eta is not None:
                parts.append(f"ETA {format_seconds(eta)}")
            if self._waiting:
                parts.append("waiting: " + ", ".join(f"{n} ({why})" for n, why in self._waiting.items()))
            return " | ".join(parts)

    def _prefix(self) -> str:
        return f"[{self._done}/{self._total}]"

    # -- events ----------------------------------------------------------------------------------
    def on_run_started(self, event: RunStarted) -> None:
        """Reset the counters and, on a terminal, start refreshing the status line."""
        with self._lock:
            self._plan = tuple(event.plan)
            self._planned = frozenset(event.plan)
            self._upstream = dict(event.upstream)
            self._finished = set()
            self._total = len(event.plan)
            self._workers = event.workers
            self._started_at = self.clock()
            self._running.clear()
            self._waiting.clear()
            self._counts.clear()
            self._done = 0
        workers = f"{event.workers} worker{'s' if event.workers != 1 else ''}"
        tasks = f"{self._total} task{'s' if self._total != 1 else ''}"
        self._line(f"run {event.pipeline!r}: {tasks} on {workers}")
        if self.is_tty:
            # A task's own print must not land on the end of the status line: clear it first.
            self._stdout_shield = _StatusClearingStdout.install(self)
        if self.is_tty and self.refresh:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="task-engine-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        assert self.refresh
        while not self._stop.wait(self.refresh):
            self._redraw()

    def on_task_started(self, event: TaskStarted) -> None:
        """Count the task as running."""
        with self._lock:
            self._running[event.task] = self.clock()
            if event.task not in self._planned:
                self._total += 1  # an instance of a mapped task: known only once its task fans out
        if self.is_tty:
            self._redraw()
        else:
            self._line(f"{self._prefix()} started {event.task}" + (f" on {event.worker}" if event.worker else ""))

    def on_wait_started(self, event: WaitStarted) -> None:
        """Show that the task waits, and why (a wait known to be shorter than `wait_threshold` is not shown)."""
        if event.seconds is not None and event.seconds < self.wait_threshold:
            return
        why = describe_wait(event)
        with self._lock:
            self._waiting[event.task] = why
        if self.is_tty:
            self._redraw()
        elif event.reason != "retry":  # a retry wait was announced by on_retry_scheduled
            # A wait's own message already says "waiting ... for ...".
            self._line(f"{self._prefix()} {event.task} {why if event.message else 'waiting for ' + why}")

    def on_wait_finished(self, event: WaitFinished) -> None:
        """Stop showing the wait; say so when it timed out."""
        with self._lock:
            self._waiting.pop(event.task, None)
        if not event.ok and event.reason != "retry":
            what = _WAIT_NAMES.get(event.reason, event.reason)
            self._line(
                f"{self._prefix()} {event.task} gave up waiting for {what} {event.key!r} after {event.seconds:.1f} s"
            )
        else:
            self._redraw()

    def on_retry_scheduled(self, event: RetryScheduled) -> None:
        """Say that an attempt failed and when the next one starts."""
        failed = event.next_attempt - 1
        self._line(
            f"{self._prefix()} {event.task} attempt {failed}/{event.max_attempts} failed ({_one_line(event.error)}); "
            f"retry {event.next_attempt}/{event.max_attempts} in {event.delay:g} s"
        )

    def on_task_finished(self, event: TaskFinished) -> None:
        """Count the task as done and print how it ended."""
        result = event.result
        with self._lock:
            self._running.pop(event.task, None)
            self._waiting.pop(event.task, None)
            self._finished.add(event.task)
            self._done += 1
            self._counts[result.state] = self._counts.get(result.state, 0) + 1
        took = f" in {result.duration:.2f} s" if result.duration is not None else ""
        attempts = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        detail = ""
        if result.state is TaskState.FAILED:
            detail = f": {_one_line(result.error)}"
        elif result.state is TaskState.SKIPPED:
            detail = f": {_one_line(result.error) or mask_text(result.reason)}"
        eta = self.eta() if not self.is_tty and self._done < self._total else None
        left = f" (ETA {format_seconds(eta)})" if eta is not None else ""
        self._line(f"{self._prefix()} {event.task} {result.state.value}{took}{attempts}{detail}{left}")

    def on_run_finished(self, event: RunFinished) -> None:
        """Stop refreshing and print the totals."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
            self._ticker = None
        with self._lock:
            if self._stdout_shield is not None:
                self._stdout_shield.uninstall()
                self._stdout_shield = None
            if self.is_tty and self._status_shown:
                self.stream.write("\r\x1b[K")
                self._status_shown = False
            self.stream.write(format_run_totals(event.result) + "\n")
            self.stream.flush()

    def clear_status(self) -> None:
        """Take the status line off the terminal (before other output); the next redraw brings it back."""
        with self._lock:
            if self.is_tty and self._status_shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._status_shown = False


class _StatusClearingStdout:
    """While a run shows its status line, standard output that clears the line before each write."""

    def __init__(self, stream: TextIO, reporter: ProgressReporter) -> None:
        self._stream = stream
        self._reporter = reporter

    @classmethod
    def install(cls, reporter: ProgressReporter) -> _StatusClearingStdout:
        shield = cls(sys.stdout, reporter)
        sys.stdout = shield
        return shield

    def uninstall(self) -> None:
        if sys.stdout is self:
            sys.stdout = self._stream

    def write(self, text: str) -> int:
        with self._reporter._lock:  # one writer at a time, so the line and the status never interleave
            self._reporter.clear_status()
            written = self._stream.write(text)
            if text.endswith("\n"):
                self._stream.flush()
                self._reporter._redraw()
            return written

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
