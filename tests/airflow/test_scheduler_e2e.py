"""End to end on a real Airflow: api-server, scheduler (LocalExecutor) and dag-processor on 127.0.0.1.

The project's DAG-folder entry file is dropped into a fresh dags folder, configured with two
conformance scenarios; the real dag-processor parses it, each DAG is triggered, and every task
ends in the state and try number of the standalone run. Tracing is on (OTLP over HTTP, the
standard OTEL_* variables), and a collector on 127.0.0.1 receives every task process's spans.
"""

from __future__ import annotations

import http.server
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_harness import REPO_ROOT, AirflowServices

from tests.conformance import load, mismatches

SCENARIOS = ("seed_tasks_run1", "seed_tasks_run2")
SECRET = "s3cr3t-token-value"

# A task that reveals a context secret (passed in dag_run.conf) and fails with it in the message.
LEAKY_PIPELINE = """
from task_engine_core import register


@register
def leaky(context):
    raise PermissionError(f"rejected token {context['api']['token'].reveal()}")
"""


class SpanCollector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver on 127.0.0.1: keeps (trace id, span name, attributes) of every span posted."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.spans: list[tuple[str, str, dict[str, object]]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
                with collector.lock:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            for span in scope.spans:
                                attributes = {
                                    a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes
                                }
                                collector.spans.append((span.trace_id.hex(), span.name, attributes))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def endpoint(self) -> str:
        """The OTLP/HTTP traces endpoint."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


@pytest.fixture()
def collector() -> Iterator[SpanCollector]:
    server = SpanCollector()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def airflow_services(tmp_path: Path, collector: SpanCollector) -> Iterator[AirflowServices]:
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO_ROOT / "dags" / "task_engine_dags.py", dags)
    (tmp_path / "leaky_pipeline.py").write_text(LEAKY_PIPELINE)
    services = AirflowServices(tmp_path / "home", dags)
    # Every task runs in a fresh process that parses the DAG file again: it must find the scenarios.
    services.env["PYTHONPATH"] = str(REPO_ROOT)
    targets = [f"tests.conformance.scenarios.{name}" for name in SCENARIOS] + [str(tmp_path / "leaky_pipeline.py")]
    services.env["TASK_ENGINE_PIPELINES"] = ",".join(targets)
    # Every try records its task here: one `runs` row per dag run, one `task_runs` row per task.
    services.env["TASK_ENGINE_STATS"] = str(tmp_path / "stats.sqlite3")
    # Tracing as an Airflow user turns it on: the standard variables, an OTLP collector.
    services.env.update(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.endpoint,
            "OTEL_SERVICE_NAME": "task-engine-e2e",
        }
    )
    try:
        services.start()
        yield services
    finally:
        services.stop()


@pytest.mark.slow
def test_scheduler_runs_the_dropped_entry_file_like_the_standalone_run(
    airflow_services: AirflowServices, collector: SpanCollector
) -> None:
    for name in SCENARIOS:
        airflow_services.wait_for_dag(name)
    runs = {name: airflow_services.trigger(name) for name in SCENARIOS}

    states = {name: airflow_services.wait_for_run(name, run_id) for name, run_id in runs.items()}

    assert states == {"seed_tasks_run1": "success", "seed_tasks_run2": "failed"}, airflow_services.logs()
    for name, run_id in runs.items():
        observed = airflow_services.engine_outcomes(name, run_id)
        assert mismatches(load(name), observed) == [], airflow_services.logs()

    # The statistics the tries wrote: one run row per dag run, a row per task that started.
    with sqlite3.connect(airflow_services.env["TASK_ENGINE_STATS"]) as connection:
        recorded = connection.execute(
            "SELECT run_id, pipeline, tasks, outcome, trace_id FROM runs ORDER BY pipeline"
        ).fetchall()
        task_rows = connection.execute("SELECT run_id, task, state, attempts FROM task_runs").fetchall()
    assert [row[:4] for row in recorded] == [
        (runs["seed_tasks_run1"], "seed_tasks_run1", 4, "success"),
        (runs["seed_tasks_run2"], "seed_tasks_run2", 4, "failed"),
    ]
    # One trace per dag run, across the task processes: every span a task of the run exported
    # carries the trace id its statistics row names, and no other run's tasks share it.
    trace_of = {pipeline: trace_id for _, pipeline, _, _, trace_id in recorded}
    assert len(set(trace_of.values())) == 2 and None not in trace_of.values(), recorded
    with collector.lock:
        task_spans = [
            (trace_id, attributes)
            for trace_id, name, attributes in collector.spans
            if name.startswith("task ") and "task_engine.task.name" in attributes
        ]
    for name, run_id in runs.items():
        started = {task for task, value in airflow_services.engine_outcomes(name, run_id).items() if value[1]}
        in_trace = {
            attributes["task_engine.task.name"] for trace_id, attributes in task_spans if trace_id == trace_of[name]
        }
        assert in_trace == started, (name, task_spans)
    assert {trace_id for trace_id, _ in task_spans} == set(trace_of.values()), task_spans
    for name, run_id in runs.items():
        started = {task: value for task, value in airflow_services.engine_outcomes(name, run_id).items() if value[1]}
        assert {task: (state, attempts) for rid, task, state, attempts in task_rows if rid == run_id} == started
    # A later compile derives its priority weights from those runs.
    from task_engine.airflow import expected_durations

    assert set(expected_durations(airflow_services.env["TASK_ENGINE_STATS"], "seed_tasks_run1") or {}) == {
        task
        for task, value in airflow_services.engine_outcomes("seed_tasks_run1", runs["seed_tasks_run1"]).items()
        if value[1]
    }

    # The secret reached the task only through dag_run.conf; Airflow's task logs must not show it.
    leaky_run = airflow_services.trigger("leaky_pipeline", {"api": {"token": SECRET}})
    assert airflow_services.wait_for_run("leaky_pipeline", leaky_run) == "failed"
    logs = [path for path in (airflow_services.home / "logs").rglob("*") if path.is_file()]
    task_logs = "\n".join(path.read_text(errors="replace") for path in logs if "leaky" in str(path))
    assert "rejected token ***" in task_logs
    assert SECRET not in task_logs
    with collector.lock:
        exported = repr(collector.spans)
    assert "leaky" in exported and SECRET not in exported  # nor do the spans its try exported
