"""Standard output that a closed reader cannot turn into a task failure (`... run | head`).

When the reading end of a pipe goes away, the next write raises BrokenPipeError in whichever code
printed, usually a task. The CLI wraps `sys.stdout` in `PipeSafeStream`: after the first broken
pipe, standard output is pointed at /dev/null (as Python's documentation advises, so the
interpreter's own final flush stays quiet) and later output is dropped; the run goes on and its
exit code is the tasks'.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TextIO

__all__ = ["PipeSafeStream", "TaskPrefixedStream", "prefix_task_output", "protect_stdout"]


class PipeSafeStream:
    """A text stream that drops output once its reader has closed the pipe, instead of raising."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        """Write `text`, or drop it when the reader has gone."""
        if self.closed_by_reader:
            return len(text)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        """Flush, or do nothing when the reader has gone."""
        if self.closed_by_reader:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        with self._lock:
            if self.closed_by_reader:
                return
            self.closed_by_reader = True
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError):
                pass  # not a real file descriptor: dropping the text is enough

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def protect_stdout() -> None:
    """Wrap `sys.stdout` in a PipeSafeStream (once)."""
    if sys.stdout is not None and not isinstance(sys.stdout, PipeSafeStream):
        sys.stdout = PipeSafeStream(sys.stdout)  # type: ignore[assignment]


class TaskPrefixedStream:
    """Standard output that starts each line a task prints with `[TaskName] ` (`run --prefix-output`).

    With several workers, task output interleaves; the prefix says whose line it is, as Airflow's
    and Prefect's task logs do. Lines written outside a task (the console reporter's) are unchanged.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._line_start = threading.local()  # per thread: is the next character the start of a line?

    def write(self, text: str) -> int:
        """Write `text`, each new line of a task's output prefixed with its name."""
        from .runtime import current_task_run  # the stream is installed before any task runs

        run = current_task_run()
        if run is None or not text:
            with self._lock:
                return self._stream.write(text)
        task, at_start = getattr(self._line_start, "value", (run.name, True))
        at_start = at_start or task != run.name  # a new task on this worker starts a new line
        pieces = []
        for piece in text.splitlines(keepends=True):
            if at_start:
                pieces.append(f"[{run.name}] ")
            pieces.append(piece)
            at_start = piece.endswith(("\n", "\r"))
        self._line_start.value = (run.name, at_start)
        with self._lock:
            self._stream.write("".join(pieces))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def prefix_task_output() -> None:
    """Wrap `sys.stdout` in a TaskPrefixedStream (once)."""
    if sys.stdout is not None and not isinstance(sys.stdout, TaskPrefixedStream):
        sys.stdout = TaskPrefixedStream(sys.stdout)  # type: ignore[assignment]
