"""End to end on Airflow's CeleryExecutor: PostgreSQL metadata, Redis broker, two Celery workers, one rate.

Everything runs on 127.0.0.1 and is started and stopped here: PostgreSQL 15 (initdb in a temporary
folder) holds Airflow's metadata and the engine's statistics, one redis-server is Celery's broker
and the shared rate-limit store, and two `airflow celery worker` processes run the tasks. Every task
of the pipeline calls a local HTTP server under one `@rate_limit` key; the server's request log
shows the rate held across both workers.
"""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_harness import REPO_ROOT, AirflowServices

from tests._rate_limit_worker import worst_excess
from tests._services import PostgresServer, RedisServer

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed in .venvs/airflow (tests/airflow/requirements.txt)"
)
pytest.importorskip(
    "airflow.providers.celery", reason="apache-airflow-providers-celery is not installed in .venvs/airflow"
)

RATE, BURST, TASKS, CALLS = 4.0, 1.0, 4, 12

PIPELINE_DAG = f"""
import os
import urllib.request

from task_engine.airflow import to_airflow_dag
from task_engine_core import Pipeline, RateLimit, rate_limited, set_rate_limit

set_rate_limit(RateLimit("local-api", rate={RATE}, burst={BURST}))
pipeline = Pipeline("celery_rate")


def make(number):
    def call():
        for _ in range({CALLS}):
            with rate_limited("local-api"):
                url = f"{{os.environ['TE_API']}}/?task={{number}}&worker={{os.environ['TE_WORKER']}}"
                urllib.request.urlopen(url, timeout=30).read()

    call.__name__ = f"call_{{number}}"
    return call


for number in range({TASKS}):
    pipeline.register(make(number), name=f"call_{{number}}")

dag = to_airflow_dag(pipeline, dag_id="celery_rate")
"""


class RequestLog(http.server.ThreadingHTTPServer):
    """A local API that notes the moment (monotonic) and query of every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        log = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with log.lock:
                    log.requests.append((time.monotonic(), self.path))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class CeleryServices(AirflowServices):
    """AirflowServices on CeleryExecutor with PostgreSQL metadata, a Redis broker and two workers."""

    def __init__(self, home: Path, dags_folder: Path, postgres: PostgresServer, redis: RedisServer) -> None:
        super().__init__(home, dags_folder)
        self.metadata = postgres.create_database("airflow")
        self.database_url = self.metadata.replace("postgresql://", "postgresql+psycopg://")
        self.env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
                # psycopg 3 is async too: without this Airflow would derive an asyncpg URL.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.database_url,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis.port}/1",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.database_url}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                # A loaded CI machine answers the execution API slowly; a timeout there is no test result.
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
                "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
            }
        )

    def start(self) -> None:
        """The Airflow services, then two Celery workers as separate processes."""
        super().start()
        import subprocess
        import sys

        for number in (1, 2):
            log = open(self.home / f"worker-{number}.log", "wb")
            self.processes[f"worker-{number}"] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "airflow",
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"w{number}@%h",
                    "--concurrency",
                    "2",
                    "--without-mingle",
                    "--without-gossip",
                ],
                env={**self.env, "TE_WORKER": f"w{number}"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()

    def query(self, sql: str, *params: object) -> list[tuple]:
        """Read Airflow's metadata database (PostgreSQL here)."""
        with psycopg.connect(self.metadata) as connection:
            return connection.execute(sql.replace("?", "%s"), params).fetchall()

    def logs(self) -> str:
        """The base logs plus both workers'."""
        parts = [super().logs()]
        for number in (1, 2):
            path = self.home / f"worker-{number}.log"
            if path.exists():
                parts.append(f"--- worker-{number} ---\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[tuple[CeleryServices, RequestLog, str]]:
    if not PostgresServer.available() or shutil.which("redis-server") is None:
        pytest.skip("PostgreSQL 15 and redis-server are needed (tests/run_all.sh installs them with apt-get)")
    postgres, redis, api = PostgresServer(), RedisServer(tmp_path / "redis"), RequestLog()
    (tmp_path / "redis").mkdir()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "celery_rate.py").write_text(PIPELINE_DAG)
    services = None
    try:
        postgres.start()
        redis.start()
        stats = postgres.create_database("stats")
        services = CeleryServices(tmp_path / "home", dags, postgres, redis)
        services.env.update(
            {
                "PYTHONPATH": str(REPO_ROOT),
                "TE_API": api.url,
                "TASK_ENGINE_RATE_LIMIT_STORE": f"redis://127.0.0.1:{redis.port}/2",
                "TASK_ENGINE_STATS": stats,
            }
        )
        services.start()
        yield services, api, stats
    finally:
        if services is not None:
            services.stop()
        api.shutdown()
        redis.stop()
        postgres.stop()


@pytest.mark.slow
def test_two_celery_workers_hold_one_rate_limit(stack: tuple[CeleryServices, RequestLog, str]) -> None:
    services, api, stats = stack
    services.wait_for_dag("celery_rate", timeout=240)
    run_id = services.trigger("celery_rate")
    assert services.wait_for_run("celery_rate", run_id, timeout=600) == "success", services.logs()

    outcomes = services.task_outcomes("celery_rate", run_id)
    assert outcomes == {f"call_{n}": ("success", 1) for n in range(TASKS)}, services.logs()
    with api.lock:
        requests = sorted(api.requests)
    assert len(requests) == TASKS * CALLS
    workers = {path.rsplit("worker=", 1)[1] for _, path in requests}
    assert workers == {"w1", "w2"}, f"the requests came from {workers}, not from both workers"
    moments = [moment for moment, _ in requests]
    # The request log is the truth: never above burst + rate * window (one token of tolerance for
    # the request's travel time), across both workers and every task process.
    assert worst_excess(moments, RATE, BURST) <= 1.0
    # While tasks overlap, the shared bucket is the bottleneck: the rate is reached, not undershot.
    span = moments[-1] - moments[0]
    achieved = (len(moments) - BURST) / span
    assert achieved >= 0.8 * RATE, f"{achieved:.2f}/s of {RATE:g}/s over {span:.1f} s"
    # Both workers recorded into the one shared PostgreSQL statistics store: one run row for the dag
    # run, one task row per task, and estimates a later DAG build reads its priority weights from.
    with psycopg.connect(stats) as connection:
        recorded = connection.execute("SELECT run_id, pipeline, tasks, outcome, duration FROM runs").fetchall()
        task_rows = connection.execute("SELECT run_id, task, state, attempts FROM task_runs").fetchall()
    assert [row[:4] for row in recorded] == [(run_id, "celery_rate", TASKS, "success")], services.logs()
    # The run's duration spans its tasks, so it holds every request the API saw (wall clock vs monotonic: 0.5 s).
    assert recorded[0][4] is not None and recorded[0][4] >= span - 0.5, (recorded, span)
    assert sorted(task_rows) == [(run_id, f"call_{n}", "success", 1) for n in range(TASKS)]
    from task_engine.airflow import expected_durations

    assert set(expected_durations(stats, "celery_rate") or {}) == {f"call_{n}" for n in range(TASKS)}
    print(
        f"celery e2e: {len(moments)} requests from {sorted(workers)} at {achieved:.2f}/s of {RATE:g}/s, "
        f"{worst_excess(moments, RATE, BURST):.2f} above burst + rate * window"
    )
