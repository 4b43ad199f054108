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
        sys.stdout = PipeSafeStream(sys.stdout)


class TaskPrefixedStream:
    """Standard output that starts each line a task prints with `[TaskName] ` (`run --prefix-output`).

    With several workers, task output interleaves; the prefix says whose line it is, as Airflow's
    and Prefect's task logs do. A task's text is written a whole line at a time (a partial line
    waits for its end, or for the attempt's end), so lines of two workers never mix. Lines written
    outside a task (the console reporter's) are unchanged.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Write `text`, each line of a task's output prefixed with its name."""
        name = printing_task()
        if name is None or not text:
            with self._lock:
                return self._stream.write(text)
        pending = getattr(_printing, "pending", "") + text
        lines = pending.splitlines(keepends=True)
        if lines and not lines[-1].endswith(("\n", "\r")):
            _printing.pending = lines.pop()
        else:
            _printing.pending = ""
        if lines:
            with self._lock:
                self._stream.write("".join(f"[{name}] {line}" for line in lines))
        return len(text)

    def flush_task_line(self, name: str) -> None:
        """Write what is left of the line task `name` was printing on this thread."""
        pending = getattr(_printing, "pending", "")
        if pending:
            _printing.pending = ""
            with self._lock:
                self._stream.write(f"[{name}] {pending}\n")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# Which task prints on this thread: set around an attempt's body only while output is prefixed,
# so the default path pays one flag check per attempt.
_printing = threading.local()
prefixing = False


def printing_task() -> str | None:
    """The name of the task whose attempt runs on this thread, while output is prefixed."""
    return getattr(_printing, "name", None)


def set_printing_task(name: str | None) -> None:
    """Say which task's attempt runs on this thread (None: none; ends the task's partial line)."""
    previous = getattr(_printing, "name", None)
    if name is None and previous is not None and isinstance(sys.stdout, TaskPrefixedStream):
        sys.stdout.flush_task_line(previous)
    _printing.name = name


def prefix_task_output() -> None:
    """Wrap `sys.stdout` in a TaskPrefixedStream (once)."""
    global prefixing
    prefixing = True
    if sys.stdout is not None and not isinstance(sys.stdout, TaskPrefixedStream):
        sys.stdout = TaskPrefixedStream(sys.stdout)
