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

__all__ = ["PipeSafeStream", "protect_stdout"]


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
