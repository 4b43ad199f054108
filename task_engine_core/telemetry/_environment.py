"""Turning tracing on from `--trace FILE` and the standard OTEL_* environment variables."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgumentError, MissingExtraError

__all__ = ["tracing_from_environment", "json_lines_exporters"]


def json_lines_exporters(path: str | os.PathLike[str], append: bool = False) -> tuple[Any, Any]:
    """A span exporter and a log exporter writing JSON lines into the one file `path`."""
    from ._otel import require_otel

    require_otel("The JSON-lines trace file")
    from ._jsonl import JsonLinesFile, JsonLinesLogExporter, JsonLinesSpanExporter

    shared = JsonLinesFile(path, append=append)
    return JsonLinesSpanExporter(shared), JsonLinesLogExporter(shared)


def _names(environ: Mapping[str, str], variable: str) -> list[str]:
    return [part.strip().lower() for part in environ.get(variable, "").split(",") if part.strip()]


def _otlp(kind: str, environ: Mapping[str, str]) -> Any:
    protocol = environ.get(f"OTEL_EXPORTER_OTLP_{kind.upper()}_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    transport = "grpc" if protocol == "grpc" else "http"
    package = f"opentelemetry-exporter-otlp-proto-{transport}"
    module_name = f"opentelemetry.exporter.otlp.proto.{transport}.{'trace' if kind == 'traces' else '_log'}_exporter"
    try:
        import importlib

        module = importlib.import_module(module_name)
    except ImportError:
        raise MissingExtraError(package, "otel", f"OTEL_{kind.upper()}_EXPORTER=otlp") from None
    return module.OTLPSpanExporter() if kind == "traces" else module.OTLPLogExporter()


def _from_names(kind: str, names: list[str], environ: Mapping[str, str]) -> list[Any]:
    exporters = []
    for name in names:
        if name == "none":
            continue
        if name == "otlp":
            exporters.append(_otlp(kind, environ))
        elif name == "console":
            if kind == "traces":
                from opentelemetry.sdk.trace.export import ConsoleSpanExporter

                exporters.append(ConsoleSpanExporter(out=sys.stderr))
            else:
                from opentelemetry.sdk._logs import export as log_export

                console = getattr(log_export, "ConsoleLogRecordExporter", None) or log_export.ConsoleLogExporter
                exporters.append(console(out=sys.stderr))
        else:
            raise InvalidArgumentError(
                f"OTEL_{kind.upper()}_EXPORTER={name!r} is not supported here; use otlp, console or none "
                f"(or pass --trace FILE for the JSON-lines file)"
            )
    return exporters


def tracing_from_environment(
    trace_file: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Any:
    """A TracingListener when `trace_file` is given or OTEL_TRACES_EXPORTER names an exporter, else None.

    `OTEL_SDK_DISABLED=true` turns environment-driven tracing off; an explicit `trace_file` still
    traces. OTEL_LOGS_EXPORTER adds log exporters; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    describe the service as usual.
    """
    environ = os.environ if environ is None else environ
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    trace_names = [] if disabled else [n for n in _names(environ, "OTEL_TRACES_EXPORTER") if n != "none"]
    if trace_file is None and not trace_names:
        return None
    from ._otel import require_otel

    if trace_file is None:
        try:
            require_otel()
        except MissingExtraError as missing:
            # Environment variables meant for other programs must not break a run: tracing stays off.
            logging.getLogger("task_engine").warning("OTEL_TRACES_EXPORTER is set but tracing is off: %s", missing)
            return None
    require_otel("Tracing (--trace FILE)")
    from ._listener import TracingListener

    span_exporters = _from_names("traces", trace_names, environ)
    log_exporters = [] if disabled else _from_names("logs", _names(environ, "OTEL_LOGS_EXPORTER"), environ)
    if trace_file is not None:
        spans, logs = json_lines_exporters(trace_file)
        span_exporters.insert(0, spans)
        log_exporters.insert(0, logs)
    return TracingListener(span_exporters, log_exporters)
