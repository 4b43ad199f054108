"""The default exporters: spans and logs as JSON lines in one file (format in the README).

This module imports OpenTelemetry at the top; the package facade imports it only on demand.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import IO, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._text import encodable

try:  # the SDK renamed LogExporter to LogRecordExporter; accept both
    from opentelemetry.sdk._logs.export import LogRecordExporter as _LogExporter
    from opentelemetry.sdk._logs.export import LogRecordExportResult as _LogResult
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import LogExporter as _LogExporter  # type: ignore[assignment, no-redef, unused-ignore]
    from opentelemetry.sdk._logs.export import LogExportResult as _LogResult  # type: ignore[assignment, no-redef, unused-ignore]

__all__ = ["JsonLinesFile", "JsonLinesSpanExporter", "JsonLinesLogExporter", "span_to_dict", "log_to_dict"]


def _attributes(attributes: Any) -> dict[str, Any]:
    return {str(k): list(v) if isinstance(v, tuple) else v for k, v in dict(attributes or {}).items()}


def _hex(value: int | None, width: int) -> str | None:
    return None if not value else f"{value:0{width}x}"


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """One span as the JSON object written on its line."""
    context = span.get_span_context()
    parent = span.parent
    return {
        "type": "span",
        "name": span.name,
        "trace_id": _hex(context.trace_id, 32) if context is not None else None,
        "span_id": _hex(context.span_id, 16) if context is not None else None,
        "parent_span_id": _hex(parent.span_id, 16) if parent is not None else None,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": span.status.status_code.name,
        "status_message": span.status.description,
        "attributes": _attributes(span.attributes),
        "events": [
            {"name": e.name, "time_unix_nano": e.timestamp, "attributes": _attributes(e.attributes)}
            for e in span.events
        ],
        "resource": _attributes(span.resource.attributes),
    }


def log_to_dict(item: Any) -> dict[str, Any]:
    """One exported log record as the JSON object written on its line."""
    record = getattr(item, "log_record", item)
    severity = getattr(record, "severity_number", None)
    body = record.body
    scope = getattr(item, "instrumentation_scope", None)
    return {
        "type": "log",
        "time_unix_nano": record.timestamp,
        "severity_text": record.severity_text,
        "severity_number": getattr(severity, "value", severity),
        "body": body if isinstance(body, (str, int, float, bool, type(None))) else str(body),
        "trace_id": _hex(record.trace_id, 32),
        "span_id": _hex(record.span_id, 16),
        "logger": getattr(scope, "name", None),
        "attributes": _attributes(record.attributes),
    }


class JsonLinesFile:
    """A file that several exporters append JSON lines to; closed when the last one shuts down.

    Opened on the first write: a run that stops before it starts (a definition or context error)
    leaves an existing file as it was instead of emptying it.
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        self.path = os.fspath(path)
        self._mode = "a" if append else "w"
        self._file: IO[str] | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._users = 0

    def acquire(self) -> None:
        """Count one more exporter writing here."""
        with self._lock:
            self._users += 1

    def write(self, rows: Sequence[dict[str, Any]]) -> bool:
        """Append one line per row and flush; False once closed."""
        with self._lock:
            if self._closed:
                return False
            file = self._file
            if file is None:
                file = self._file = open(self.path, self._mode, encoding="utf-8")  # noqa: SIM115 - closed in release()
            for row in rows:
                file.write(encodable(json.dumps(row, ensure_ascii=False, default=str)) + "\n")
            file.flush()
            return True

    def release(self) -> None:
        """One exporter is done; close the file after the last."""
        with self._lock:
            self._users -= 1
            if self._users <= 0 and not self._closed:
                self._closed = True
                if self._file is not None:
                    self._file.close()
                    self._file = None


class _JsonLinesExporter:
    """What the span and log exporters share: one JsonLinesFile, released once on shutdown."""

    def __init__(self, target: JsonLinesFile | str | os.PathLike[str]) -> None:
        self.file = target if isinstance(target, JsonLinesFile) else JsonLinesFile(target)
        self.file.acquire()
        self._closed = False

    def shutdown(self) -> None:
        """Release the file."""
        if not self._closed:
            self._closed = True
            self.file.release()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Lines are flushed as they are written."""
        return True


class JsonLinesSpanExporter(_JsonLinesExporter, SpanExporter):
    """Writes each finished span as one JSON line (`"type": "span"`)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write `spans`."""
        ok = self.file.write([span_to_dict(span) for span in spans])
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE


class JsonLinesLogExporter(_JsonLinesExporter, _LogExporter):
    """Writes each log record as one JSON line (`"type": "log"`)."""

    def export(self, batch: Sequence[Any]) -> Any:
        """Write `batch`."""
        ok = self.file.write([log_to_dict(item) for item in batch])
        return _LogResult.SUCCESS if ok else _LogResult.FAILURE
