"""Exporters registered for every tracing listener made in this process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._registry import Registry

__all__ = ["register_span_exporter", "register_log_exporter", "registered_span_exporters", "registered_log_exporters"]

_spans: Registry[Any] = Registry()
_logs: Registry[Any] = Registry()


def register_span_exporter(exporter: Any) -> Callable[[], None]:
    """Send the spans of every later traced run to `exporter` (an SDK SpanExporter); returns an unregister function."""
    return _spans.register(exporter)


def register_log_exporter(exporter: Any) -> Callable[[], None]:
    """Send the task logs of every later traced run to `exporter` (an SDK LogExporter); returns an unregister function."""
    return _logs.register(exporter)


def registered_span_exporters() -> tuple[Any, ...]:
    """Span exporters registered so far."""
    return _spans.items()


def registered_log_exporters() -> tuple[Any, ...]:
    """Log exporters registered so far."""
    return _logs.items()
