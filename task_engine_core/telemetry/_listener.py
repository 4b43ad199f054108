"""TracingListener: turns run events into one OpenTelemetry trace per run, and task logs into OTel logs.

The run is the root span; each task is a child span started and ended in the thread that runs the
task, and made current there, so `logging` records and any OpenTelemetry instrumentation inside
the task are tied to the task's span. OpenTelemetry is imported when a listener is made.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from .._secrets import error_text
from .._task import TaskState
from ..events import (
    AttemptFailed,
    AttemptStarted,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskStarted,
    WaitFinished,
    WaitStarted,
)
from ..reporters._base import Reporter
from ._otel import require_otel
from ._registry import registered_log_exporters, registered_span_exporters

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["TracingListener"]

_PREFIX = "task_engine"
_SEVERITY = (
    (logging.CRITICAL, 21, "FATAL"),
    (logging.ERROR, 17, "ERROR"),
    (logging.WARNING, 13, "WARN"),
    (logging.INFO, 9, "INFO"),
    (logging.DEBUG, 5, "DEBUG"),
    (0, 1, "TRACE"),
)


class _GuardedExporter:
    """Hands everything to `exporter`, but its shutdown runs once and may not raise.

    The SDK shuts exporters down one after another without a guard: one that raises (a collector
    gone away) would skip the others and turn a finished run into a traceback.
    """

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        self._shut_down = False

    def export(self, batch: Any) -> Any:
        return self.exporter.export(batch)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))

    def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        try:
            self.exporter.shutdown()
        except Exception as error:  # noqa: BLE001 - reported, never raised: the run is over and recorded
            logging.getLogger("task_engine").warning(
                "tracing: shutting down exporter %s failed: %s: %s; the run's results are unaffected",
                type(self.exporter).__name__,
                type(error).__name__,
                error,
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)


def _run_trace_ids() -> Any:
    """Span and trace ids as the SDK makes them, except that a run's root span gets the run's trace id."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class RunTraceIds(RandomIdGenerator):
        next_trace_id: int | None = None

        def generate_trace_id(self) -> int:
            # Only root spans ask for a trace id, and the run's root span is started right after
            # on_run_started set the id: task spans are its children.
            chosen, self.next_trace_id = self.next_trace_id, None
            return chosen if chosen else super().generate_trace_id()

    return RunTraceIds()


def _ns(moment: datetime | float | None) -> int | None:
    if moment is None:
        return None
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    return int(seconds * 1e9)


class TracingListener(Reporter):
    """One trace per run: a root span, a child span per task, task logs exported with their span.

    `span_exporters` / `log_exporters` are SDK exporters (OTLP, console, the JSON-lines file
    exporter, in-memory for tests); exporters registered with `register_span_exporter` /
    `register_log_exporter` are added unless `use_registered=False`. The trace id is the run's
    own (`RunStarted.trace_id`, settled before the run starts): this listener reads it and never
    writes a result, so it may listen anywhere among the others.
    """

    #: Asks the run to settle a trace id before RunStarted (see `backend.settle_trace_id`).
    needs_trace_id = True

    def __init__(
        self,
        span_exporters: Iterable[Any] = (),
        log_exporters: Iterable[Any] = (),
        *,
        service_name: str | None = None,
        log_level: int | None = logging.INFO,
        redact: Callable[[str], str] | None = None,
        use_registered: bool = True,
        batch: bool = True,
    ) -> None:
        sdk_trace = require_otel()
        import os

        from opentelemetry import context as otel_context
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self._trace = trace
        self._context = otel_context
        name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "task-engine"
        self.resource = Resource.create({"service.name": name})
        self.span_exporters = [*span_exporters, *(registered_span_exporters() if use_registered else ())]
        self.log_exporters = [*log_exporters, *(registered_log_exporters() if use_registered else ())]
        processor = BatchSpanProcessor if batch else SimpleSpanProcessor
        self._ids = _run_trace_ids()
        self.tracer_provider = sdk_trace.TracerProvider(resource=self.resource, id_generator=self._ids)
        for exporter in self.span_exporters:
            self.tracer_provider.add_span_processor(processor(cast("SpanExporter", _GuardedExporter(exporter))))
        self.tracer = self.tracer_provider.get_tracer("task_engine_core")
        self.logger_provider: Any = None
        if self.log_exporters:
            from opentelemetry.sdk._logs import LoggerProvider
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor

            log_processor = BatchLogRecordProcessor if batch else SimpleLogRecordProcessor
            self.logger_provider = LoggerProvider(resource=self.resource)
            for exporter in self.log_exporters:
                self.logger_provider.add_log_record_processor(
                    log_processor(cast("LogRecordExporter", _GuardedExporter(exporter)))
                )
        self.log_level = log_level
        from ..reporters._output import redactor

        self.redact = redactor(redact)
        self.trace_id: str | None = None
        self._lock = threading.Lock()
        self._root: Any = None
        self._root_context: Any = None
        self._spans: dict[str, Any] = {}
        self._tokens: dict[str, Any] = {}
        self._task_span_ids: set[int] = set()
        self._handler: _TaskLogHandler | None = None
        self._saved_root_level: int | None = None

    # -- run ------------------------------------------------------------------------------------
    def on_run_started(self, event: RunStarted) -> None:
        """Start the root span, in the run's settled trace, and begin capturing task logs."""
        self._ids.next_trace_id = int(event.trace_id, 16) if event.trace_id else None
        self._root = self.tracer.start_span(
            f"run {event.pipeline}",
            start_time=_ns(event.time) or time.time_ns(),
            attributes={
                f"{_PREFIX}.pipeline": event.pipeline,
                f"{_PREFIX}.run_id": event.run_id,
                f"{_PREFIX}.workers": event.workers,
                f"{_PREFIX}.tasks": len(event.plan),
            },
        )
        self._root_context = self._trace.set_span_in_context(self._root)
        self.trace_id = f"{self._root.get_span_context().trace_id:032x}"
        with self._lock:
            self._spans.clear()
            self._tokens.clear()
            self._task_span_ids.clear()
        if self.logger_provider is not None:
            self._start_log_capture()

    def on_run_finished(self, event: RunFinished) -> None:
        """Give unstarted tasks a span too, end the root span, flush, and store the trace id."""
        result = event.result
        end = _ns(result.end) or time.time_ns()
        for name, task in result.tasks.items():
            if name not in self._spans:  # never started: upstream failed or not run
                span = self.tracer.start_span(f"task {name}", context=self._root_context, start_time=end)
                span.set_attributes(
                    {
                        f"{_PREFIX}.task.name": name,
                        f"{_PREFIX}.task.attempts": task.attempts,
                        f"{_PREFIX}.task.state": task.state.value,
                        f"{_PREFIX}.task.started": False,
                    }
                )
                span.end(end_time=end)
        counts = {state.value: n for state, n in result.counts().items()}
        root = self._root
        if root is not None:
            root.set_attributes(
                {
                    f"{_PREFIX}.succeeded": result.succeeded,
                    **{f"{_PREFIX}.count.{state}": n for state, n in counts.items()},
                }
            )
            if result.interrupted:
                root.set_attribute(f"{_PREFIX}.interrupted", result.interrupted)
            if not result.succeeded:
                from opentelemetry.trace import Status, StatusCode

                failed = ", ".join(t.name for t in result.failed)
                root.set_status(Status(StatusCode.ERROR, f"failed: {failed}" if failed else "interrupted"))
            root.end(end_time=end)
        self._stop_log_capture()
        self.flush()

    def flush(self) -> None:
        """Export everything buffered so far."""
        self.tracer_provider.force_flush()
        if self.logger_provider is not None:
            self.logger_provider.force_flush()

    def shutdown(self) -> None:
        """Flush and shut the exporters down; the listener cannot trace another run after this."""
        self._stop_log_capture()
        self.tracer_provider.shutdown()
        if self.logger_provider is not None:
            self.logger_provider.shutdown()

    # -- tasks ----------------------------------------------------------------------------------
    def _span(self, task: str) -> Any:
        return self._spans.get(task)

    def on_task_started(self, event: TaskStarted) -> None:
        """Start the task's span in this (the task's) thread and make it current here."""
        parent = self._root_context
        if parent is None and event.trace_id:
            parent = self._remote_run(event.run_id, event.trace_id)
        span = self.tracer.start_span(
            f"task {event.task}",
            context=parent,
            start_time=_ns(event.time) or time.time_ns(),
            attributes={
                f"{_PREFIX}.task.name": event.task,
                f"{_PREFIX}.task.worker": event.worker,
                "thread.name": threading.current_thread().name,
                f"{_PREFIX}.task.started": True,
            },
        )
        with self._lock:
            self._spans[event.task] = span
            self._task_span_ids.add(span.get_span_context().span_id)
        self._tokens[event.task] = self._context.attach(self._trace.set_span_in_context(span))

    def _remote_run(self, run_id: str, trace_id: str) -> Any:
        """The context of a run whose root span lives elsewhere (an orchestrator's run): its trace, a span id from its run id."""
        import hashlib

        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        span_id = int(hashlib.sha256(f"{trace_id} {run_id}".encode()).hexdigest()[:16], 16) or 1
        remote = SpanContext(int(trace_id, 16), span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return self._trace.set_span_in_context(NonRecordingSpan(remote))

    def on_attempt_started(self, event: AttemptStarted) -> None:
        """Mark the attempt on the task's span."""
        span = self._span(event.task)
        if span is not None:
            span.add_event("attempt", {"attempt": event.attempt, "max_attempts": event.max_attempts})

    def on_attempt_failed(self, event: AttemptFailed) -> None:
        """Record the attempt's error as an event."""
        span = self._span(event.task)
        if span is not None:
            span.add_event("attempt failed", {"attempt": event.attempt, **self._error(event.error)})

    def on_retry_scheduled(self, event: RetryScheduled) -> None:
        """One `retry` event per retry, with its delay."""
        span = self._span(event.task)
        if span is not None:
            span.add_event(
                "retry",
                {
                    "next_attempt": event.next_attempt,
                    "max_attempts": event.max_attempts,
                    "delay_seconds": event.delay,
                    "reason": self.redact(event.reason),
                    **self._error(event.error),
                },
            )

    def on_wait_started(self, event: WaitStarted) -> None:
        """A `<reason> wait started` event (rate_limit, resource, retry)."""
        span = self._span(event.task)
        if span is not None:
            attributes: dict[str, Any] = {"key": self.redact(event.key), "message": self.redact(event.message)}
            if event.seconds is not None:
                attributes["expected_seconds"] = event.seconds
            span.add_event(f"{event.reason} wait started", attributes)

    def on_wait_finished(self, event: WaitFinished) -> None:
        """A `<reason> wait` event with how long the task waited and whether the wait succeeded."""
        span = self._span(event.task)
        if span is not None:
            span.add_event(
                f"{event.reason} wait", {"key": self.redact(event.key), "seconds": event.seconds, "ok": event.ok}
            )

    def on_task_finished(self, event: TaskFinished) -> None:
        """Set the final attributes, end the task's span and restore this thread's context."""
        result = event.result
        span = self._span(event.task)
        if span is None:
            return
        span.set_attributes({f"{_PREFIX}.task.attempts": result.attempts, f"{_PREFIX}.task.state": result.state.value})
        if result.duration is not None:
            span.set_attribute(f"{_PREFIX}.task.duration_seconds", result.duration)
        for reason, seconds in result.waits.items():
            span.set_attribute(f"{_PREFIX}.task.waited.{reason}", seconds)
        if result.state is TaskState.SKIPPED:
            span.add_event("skip", {"reason": self.redact(result.reason), **self._error(result.error)})
        elif result.state is TaskState.FAILED:
            from opentelemetry.trace import Status, StatusCode

            span.add_event("exception", self._error(result.error))
            span.set_status(
                Status(StatusCode.ERROR, self.redact(f"{type(result.error).__name__}: {error_text(result.error)}"))
            )
        span.end(end_time=_ns(result.end) or time.time_ns())
        token = self._tokens.pop(event.task, None)
        if token is not None:
            try:
                self._context.detach(token)
            except Exception:  # noqa: BLE001 - a foreign thread: nothing of ours is attached there
                pass

    def _error(self, error: BaseException | None) -> dict[str, str]:
        if error is None:
            return {}
        return {"exception.type": type(error).__name__, "exception.message": self.redact(error_text(error))}

    # -- logs -----------------------------------------------------------------------------------
    def _start_log_capture(self) -> None:
        self._handler = _TaskLogHandler(self)
        root = logging.getLogger()
        if self.log_level is not None:
            self._handler.setLevel(self.log_level)
            if root.level == logging.NOTSET or root.level > self.log_level:
                # let task records at log_level reach the handler; restored when the run ends
                self._saved_root_level = root.level
                root.setLevel(self.log_level)
        root.addHandler(self._handler)

    def _stop_log_capture(self) -> None:
        if self._handler is None:
            return
        root = logging.getLogger()
        root.removeHandler(self._handler)
        self._handler = None
        if self._saved_root_level is not None:
            root.setLevel(self._saved_root_level)
            self._saved_root_level = None

    def is_task_span(self, span_id: int) -> bool:
        """True when `span_id` belongs to a task of the current run."""
        return span_id in self._task_span_ids


class _TaskLogHandler(logging.Handler):
    """Exports records logged while a task span is current, carrying that span's ids."""

    def __init__(self, listener: TracingListener) -> None:
        super().__init__()
        self.listener = listener
        from opentelemetry._logs import LogRecord

        self._record_type = LogRecord

    def emit(self, record: logging.LogRecord) -> None:
        """Translate `record` into an OpenTelemetry log record of the current task span."""
        if record.name.startswith("opentelemetry"):
            return  # the SDK's own warnings must not loop back into it
        listener = self.listener
        span_context = listener._trace.get_current_span().get_span_context()
        if not span_context.is_valid or not listener.is_task_span(span_context.span_id):
            return
        try:
            number, text = next((n, t) for level, n, t in _SEVERITY if record.levelno >= level)
            from opentelemetry._logs import SeverityNumber

            attributes: dict[str, Any] = {
                "code.filepath": record.pathname,
                "code.lineno": record.lineno,
                "code.function": record.funcName,
                "thread.name": record.threadName or "",
                "logger.name": record.name,
            }
            if record.exc_info and record.exc_info[1] is not None:
                attributes["exception.type"] = type(record.exc_info[1]).__name__
                attributes["exception.message"] = listener.redact(str(record.exc_info[1]))
            fields: dict[str, Any] = {
                "timestamp": int(record.created * 1e9),
                "observed_timestamp": time.time_ns(),
                "severity_text": text,
                "severity_number": SeverityNumber(number),
                "body": listener.redact(record.getMessage()),
                "attributes": attributes,
            }
            try:
                otel_record = self._record_type(context=listener._context.get_current(), **fields)
            except TypeError:  # SDKs before the `context` argument take the ids one by one
                otel_record = self._record_type(
                    trace_id=span_context.trace_id,
                    span_id=span_context.span_id,
                    trace_flags=span_context.trace_flags,
                    **fields,
                )
            listener.logger_provider.get_logger(record.name).emit(otel_record)
        except Exception:  # noqa: BLE001 - logging must never break a task
            self.handleError(record)
