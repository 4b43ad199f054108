"""Text bound for a file, a stream or a database: what cannot be encoded is written escaped, never lost.

A lone surrogate (what `os.listdir()` and `sys.argv` give for a name that is not valid UTF-8) cannot
be encoded by any codec; one of them in a skip reason must not cost a report, a statistics row or a
span. Every writer passes its text through `encodable` first.
"""

from __future__ import annotations

from typing import TextIO

__all__ = ["encodable", "stream_encodable"]


def encodable(text: str, encoding: str = "utf-8") -> str:
    """`text` itself when `encoding` can encode it; otherwise with each character it cannot written as `\\udcff`."""
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:  # an unknown codec name on a user's stream: leave the text to the stream
        return text
    return text


def stream_encodable(text: str, stream: TextIO) -> str:
    """`text` as `stream` can write it (its own encoding and error handler decide what is kept)."""
    if getattr(stream, "errors", "strict") not in ("strict", None):
        return text  # surrogateescape / backslashreplace streams write it their way, without raising
    return encodable(text, getattr(stream, "encoding", None) or "utf-8")
