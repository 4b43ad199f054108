"""OpenTelemetry tracing with the real SDK: in-memory exporters and the JSON-lines file exporter."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from task_engine_core import Backoff, Pipeline, PipelineExecutor, retries, skippable
from task_engine_core._policies._store import attach
from task_engine_core.errors import InvalidArgumentError
from task_engine_core.telemetry import (
    TracingListener,
    register_span_exporter,
    tracing_from_environment,
)

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("tests.telemetry")


def parallel_pipeline(width: int = 8, tasks: int = 16) -> Pipeline:
    """`tasks` independent tasks; the first `width` meet at a barrier so they run on `width` threads."""
    pipeline = Pipeline("traced")
    barrier = threading.Barrier(width, timeout=20)
    for i in range(tasks):

        def task(i: int = i) -> None:
            log.info("hello from task %d", i)
            if i < width:
                barrier.wait()

        task.__name__ = f"T{i:02d}"
        pipeline.register(task)
    return pipeline


def traced_run(
    pipeline: Pipeline, workers: int = 8, **options: object
) -> tuple[object, InMemorySpanExporter, InMemoryLogRecordExporter]:
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    listener = TracingListener([spans], [logs], use_registered=False)
    executor = PipelineExecutor(pipeline, workers=workers, reporters=[listener], **options)  # type: ignore[arg-type]
    try:
        executor.run()
    except Exception:
        pass
    listener.shutdown()
    return executor.result, spans, logs


def test_one_trace_across_eight_worker_threads() -> None:
    result, spans, logs = traced_run(parallel_pipeline())
    finished = spans.get_finished_spans()
    root = [s for s in finished if s.parent is None]
    tasks = [s for s in finished if s.parent is not None]
    assert len(root) == 1 and root[0].name == "run traced"
    assert sorted(s.name for s in tasks) == [f"task T{i:02d}" for i in range(16)]
    assert {s.context.trace_id for s in finished} == {root[0].context.trace_id}
    assert {s.parent.span_id for s in tasks} == {root[0].context.span_id}
    assert len({s.attributes["thread.name"] for s in tasks}) == 8
    assert result.trace_id == f"{root[0].context.trace_id:032x}"
    for span in tasks:
        assert span.attributes["task_engine.task.name"] == span.name.removeprefix("task ")
        assert span.attributes["task_engine.task.state"] == "success"
        assert span.attributes["task_engine.task.attempts"] == 1


def test_task_logs_carry_their_task_span() -> None:
    _, spans, logs = traced_run(parallel_pipeline())
    by_span = {s.context.span_id: s for s in spans.get_finished_spans()}
    records = [item.log_record for item in logs.get_finished_logs()]
    assert sorted(r.body for r in records) == sorted(f"hello from task {i}" for i in range(16))
    for record in records:
        span = by_span[record.span_id]
        assert span.name == f"task T{int(record.body.rsplit(' ', 1)[1]):02d}"
        assert record.trace_id == span.context.trace_id
        assert record.severity_text == "INFO"


def test_logs_outside_a_task_are_not_exported_and_logging_is_restored() -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    pipeline = Pipeline("quiet")

    @pipeline.register
    def Only() -> None:
        pass

    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    listener = TracingListener([spans], [logs], use_registered=False, batch=False)

    def outside(event: object) -> None:
        log.warning("outside any task: %s", type(event).__name__)

    PipelineExecutor(pipeline, reporters=[listener, outside]).run()
    # Only what is logged in the task's thread between its start and its end belongs to its span.
    exported = [item.log_record.body for item in logs.get_finished_logs()]
    assert exported == ["outside any task: TaskStarted", "outside any task: AttemptStarted"]
    assert (root.level, list(root.handlers)) == before


class _Guard:
    """Waits (without sleeping) on a rate limit and a resource before each attempt."""

    def before_attempt(self, run: object) -> None:
        with run.waiting("rate_limit", "/jobs/runs/get", 0.5, "rate limit '/jobs/runs/get'"):  # type: ignore[attr-defined]
            pass
        with run.waiting("resource", "warehouse", None):  # type: ignore[attr-defined]
            pass


def test_events_for_retry_skip_and_waits() -> None:
    pipeline = Pipeline("events")

    @pipeline.register
    @skippable
    @retries(3, backoff=Backoff.constant(0))
    def Flaky() -> None:
        raise ConnectionError("server said 503")

    attach(Flaky, guards=(_Guard(),))
    result, spans, _ = traced_run(pipeline, workers=1)
    span = next(s for s in spans.get_finished_spans() if s.name == "task Flaky")
    names = [e.name for e in span.events]
    assert names.count("retry") == 2
    assert names.count("rate_limit wait") == 3 and names.count("resource wait") == 3
    assert names[-1] == "skip"
    retry = next(e for e in span.events if e.name == "retry")
    assert dict(retry.attributes) == {
        "next_attempt": 2,
        "max_attempts": 3,
        "delay_seconds": 0.0,
        "reason": "retry_handler asked to retry",
        "exception.type": "ConnectionError",
        "exception.message": "server said 503",
    }
    wait = next(e for e in span.events if e.name == "rate_limit wait")
    assert wait.attributes["key"] == "/jobs/runs/get" and wait.attributes["ok"] is True
    assert span.attributes["task_engine.task.state"] == "skipped"
    assert span.attributes["task_engine.task.attempts"] == 3


def test_failed_and_unstarted_tasks_get_spans() -> None:
    pipeline = Pipeline("failing")

    @pipeline.register
    def Boom() -> None:
        raise RuntimeError("boom")

    @pipeline.register(depends_on=Boom)
    def After() -> None:
        pass

    result, spans, _ = traced_run(pipeline, workers=2)
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert finished["task Boom"].status.status_code is StatusCode.ERROR
    assert finished["task Boom"].status.description == "RuntimeError: boom"
    assert finished["task After"].attributes["task_engine.task.state"] == "upstream_failed"
    assert finished["task After"].attributes["task_engine.task.started"] is False
    assert finished["run failing"].status.status_code is StatusCode.ERROR
    assert result.trace_id is not None


def test_registered_exporters_are_used() -> None:
    spans = InMemorySpanExporter()
    unregister = register_span_exporter(spans)
    try:
        listener = TracingListener()
    finally:
        unregister()
    pipeline = Pipeline("registered")

    @pipeline.register
    def One() -> None:
        pass

    PipelineExecutor(pipeline, reporters=[listener]).run()
    listener.shutdown()
    assert [s.name for s in spans.get_finished_spans()] == ["task One", "run registered"]
    assert TracingListener(use_registered=True).span_exporters == []


def test_environment_turns_tracing_on() -> None:
    assert tracing_from_environment(None, {}) is None
    assert tracing_from_environment(None, {"OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracing_from_environment(None, {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) is None
    listener = tracing_from_environment(None, {"OTEL_TRACES_EXPORTER": "console"})
    assert [type(e) for e in listener.span_exporters] == [ConsoleSpanExporter]
    with pytest.raises(InvalidArgumentError) as caught:
        tracing_from_environment(None, {"OTEL_TRACES_EXPORTER": "zipkin"})
    assert str(caught.value) == (
        "OTEL_TRACES_EXPORTER='zipkin' is not supported here; use otlp, console or none "
        "(or pass --trace FILE for the JSON-lines file)"
    )


PIPELINE_FILE = """
import logging, threading
from task_engine_core import Pipeline
pipeline = Pipeline("filetrace")
barrier = threading.Barrier(8, timeout=20)
for i in range(8):
    def task(i=i):
        logging.getLogger("job").warning("task %d working", i)
        barrier.wait()
    task.__name__ = f"W{i}"
    pipeline.register(task)
"""


def test_cli_trace_file_holds_one_trace_and_correlated_logs(tmp_path: Path) -> None:
    (tmp_path / "filetrace.py").write_text(PIPELINE_FILE)
    trace, summary = tmp_path / "trace.jsonl", tmp_path / "summary.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "task_engine_core",
            "run",
            "filetrace.py",
            "--workers",
            "8",
            "--trace",
            str(trace),
            "--json",
            str(summary),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    printed = re.fullmatch(r"(?s).*trace id: ([0-9a-f]{32})\n", done.stderr)
    assert printed, done.stderr
    trace_id = printed.group(1)
    rows = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    spans = [r for r in rows if r["type"] == "span"]
    logs = [r for r in rows if r["type"] == "log"]
    assert sorted(s["name"] for s in spans) == ["run filetrace", *(f"task W{i}" for i in range(8))]
    assert {s["trace_id"] for s in spans} == {trace_id}
    root = next(s for s in spans if s["parent_span_id"] is None)
    task_spans = {s["span_id"]: s for s in spans if s["parent_span_id"] == root["span_id"]}
    assert len(task_spans) == 8
    assert len({s["attributes"]["thread.name"] for s in task_spans.values()}) == 8
    assert sorted(entry["body"] for entry in logs) == [f"task {i} working" for i in range(8)]
    for entry in logs:
        assert entry["trace_id"] == trace_id
        assert task_spans[entry["span_id"]]["name"] == f"task W{entry['body'].split()[1]}"
        assert entry["severity_text"] == "WARN" and entry["logger"] == "job"
    assert json.loads(summary.read_text())["trace_id"] == trace_id


BLOCK_OTEL = "import sys; sys.modules['opentelemetry'] = None; "


def test_without_the_sdk_tracing_names_the_extra(tmp_path: Path) -> None:
    script = BLOCK_OTEL + (
        "from task_engine_core.telemetry import TracingListener\n"
        "try:\n    TracingListener()\nexcept ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.stdout == (
        "MissingExtraError Tracing with OpenTelemetry needs the 'opentelemetry-sdk' package, which is not installed; "
        "install it with: pip install 'task-engine[otel]'\n"
    )
    cli = BLOCK_OTEL + "from task_engine_core._cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", cli, "run", "examples.jobs", "--trace", str(tmp_path / "t.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: Tracing (--trace FILE) needs the 'opentelemetry-sdk' package, which is not installed; "
        "install it with: pip install 'task-engine[otel]'\n"
    )


def test_core_imports_no_opentelemetry() -> None:
    script = (
        "import sys, task_engine_core, task_engine_core.telemetry, task_engine_core.reporters, task_engine_core._cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert done.stdout == "[]\n", done.stderr


def test_secrets_never_reach_spans_or_logs() -> None:
    from task_engine_core import Secret

    token = "tok-span-5e4d3c2b1a"
    pipeline = Pipeline("secret-trace")

    @pipeline.register
    @retries(2, backoff=Backoff.constant(0))
    def Call(context) -> None:
        log.warning("calling with %s", context["token"].reveal())
        raise PermissionError(f"token {context['token'].reveal()} refused")

    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    listener = TracingListener([spans], [logs], use_registered=False)
    with pytest.raises(PermissionError):
        PipelineExecutor(pipeline, context={"token": Secret(token)}, reporters=[listener]).run()
    listener.shutdown()
    span = next(s for s in spans.get_finished_spans() if s.name == "task Call")
    shown = [span.status.description, *(str(dict(e.attributes)) for e in span.events)]
    shown += [str(item.log_record.body) for item in logs.get_finished_logs()]
    assert not [text for text in shown if token in text]
    assert span.status.description == "PermissionError: token *** refused"
    assert [item.log_record.body for item in logs.get_finished_logs()] == ["calling with ***", "calling with ***"]


def test_the_trace_id_is_settled_before_the_run_and_tracing_may_listen_last(tmp_path: Path) -> None:
    from task_engine_core.events import RunStarted

    seen: list[RunStarted] = []

    def on_started(event: object) -> None:
        if isinstance(event, RunStarted):
            seen.append(event)

    spans = InMemorySpanExporter()
    listener = TracingListener([spans], use_registered=False)
    # Tracing after the statistics recorder and another listener: the order no longer matters.
    stats = tmp_path / "stats.sqlite3"
    executor = PipelineExecutor(parallel_pipeline(2, 3), workers=2, reporters=[on_started, listener], stats=stats)
    result = executor.run()
    listener.shutdown()
    assert seen[0].trace_id == result.trace_id and re.fullmatch(r"[0-9a-f]{32}", result.trace_id)
    assert {f"{span.context.trace_id:032x}" for span in spans.get_finished_spans()} == {result.trace_id}
    import sqlite3

    with sqlite3.connect(stats) as connection:
        assert connection.execute("SELECT trace_id FROM runs").fetchall() == [(result.trace_id,)]


def test_a_propagated_trace_id_is_the_runs_and_no_tracing_means_none() -> None:
    spans = InMemorySpanExporter()
    listener = TracingListener([spans], use_registered=False)
    given = "0af7651916cd43dd8448eb211c80319c"
    result = PipelineExecutor(parallel_pipeline(1, 2), reporters=[listener], stats=False, trace_id=given).run()
    listener.shutdown()
    assert result.trace_id == given
    assert {f"{span.context.trace_id:032x}" for span in spans.get_finished_spans()} == {given}
    assert PipelineExecutor(parallel_pipeline(1, 2), reporters=[], stats=False).run().trace_id is None
