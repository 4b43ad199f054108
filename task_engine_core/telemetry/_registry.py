"""Exporters registered for every tracing listener made in this process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["register_span_exporter", "register_log_exporter", "registered_span_exporters", "registered_log_exporters"]

_lock = threading.Lock()
_spans: list[Any] = []
_logs: list[Any] = []


def _register(target: list[Any], exporter: Any) -> Callable[[], None]:
    with _lock:
        target.append(exporter)

    def unregister() -> None:
        with _lock:
            if exporter in target:
                target.remove(exporter)

    return unregister


def register_span_exporter(exporter: Any) -> Callable[[], None]:
    """Send the spans of every later traced run to `exporter` (an SDK SpanExporter); returns an unregister function."""
    return _register(_spans, exporter)


def register_log_exporter(exporter: Any) -> Callable[[], None]:
    """Send the task logs of every later traced run to `exporter` (an SDK LogExporter); returns an unregister function."""
    return _register(_logs, exporter)


def registered_span_exporters() -> tuple[Any, ...]:
    """Span exporters registered so far."""
    with _lock:
        return tuple(_spans)


def registered_log_exporters() -> tuple[Any, ...]:
    """Log exporters registered so far."""
    with _lock:
        return tuple(_logs)
