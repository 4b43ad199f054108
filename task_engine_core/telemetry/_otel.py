"""The one place that imports OpenTelemetry, lazily, with an error that names the extra."""

from __future__ import annotations

from types import ModuleType

from ..errors import MissingExtraError

__all__ = ["require_otel"]


def require_otel(feature: str = "Tracing with OpenTelemetry") -> ModuleType:
    """Import and return `opentelemetry.sdk.trace`, or raise MissingExtraError naming the `otel` extra."""
    try:
        import opentelemetry.sdk.trace as sdk_trace
    except ImportError:
        raise MissingExtraError("opentelemetry-sdk", "otel", feature) from None
    return sdk_trace
