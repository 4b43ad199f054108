"""Tracing with OpenTelemetry: one trace per run, a span per task, task logs tied to their span.

Importing this package loads the standard library only; OpenTelemetry is imported when tracing
is turned on, and a missing SDK raises MissingExtraError naming the `otel` extra.
"""

from .._lazy import lazy_attributes
from ._environment import json_lines_exporters, tracing_from_environment
from ._registry import (
    register_log_exporter,
    register_span_exporter,
    registered_log_exporters,
    registered_span_exporters,
)

# Imported when first used: a run without tracing does not load the listener.
__getattr__ = lazy_attributes(__name__, {"TracingListener": "._listener"})

__all__ = [
    "TracingListener",
    "json_lines_exporters",
    "register_log_exporter",
    "register_span_exporter",
    "registered_log_exporters",
    "registered_span_exporters",
    "tracing_from_environment",
]
