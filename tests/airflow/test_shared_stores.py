"""The DAG build reads priority weights from a real PostgreSQL statistics store, and parses without one."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace

import pytest
from airflow_harness import free_port

from task_engine.airflow import to_airflow_dag
from task_engine_core import Pipeline, PipelineExecutor
from task_engine_core._stats import StatsWarning, open_stats_store
from tests._services import PostgresServer

pytest.importorskip("psycopg", reason="psycopg is not installed in .venvs/airflow (tests/airflow/requirements.txt)")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if not PostgresServer.available():
        pytest.skip("PostgreSQL 15 is not installed (tests/run_all.sh installs it with apt-get)")
    server = PostgresServer().start()
    yield server
    server.stop()


def weighted_pipeline() -> Pipeline:
    pipeline = Pipeline("weighted")
    # Registration order says short_first, long_branch; recorded durations say the opposite.
    for name, parents in (("short_first", ()), ("long_branch", ()), ("long_child", ("long_branch",))):
        pipeline.register(lambda: None, name=name, depends_on=list(parents))
    return pipeline


def test_priority_weights_come_from_the_postgresql_store(postgres: PostgresServer, monkeypatch) -> None:
    url = postgres.create_database("weights")
    pipeline = weighted_pipeline()
    executor = PipelineExecutor(pipeline, stats=url, reporters=[])
    executor.run()
    durations = {"short_first": 0.1, "long_branch": 5.0, "long_child": 5.0}
    result = executor.result
    result.tasks.update({name: replace(r, duration=durations[name]) for name, r in result.tasks.items()})
    open_stats_store(url).record(replace(result, run_id=result.run_id + "-b"))

    monkeypatch.setenv("TASK_ENGINE_STATS", url)  # how a deployment names the shared store
    weights = {task.task_id: task.priority_weight for task in to_airflow_dag(pipeline).tasks}
    assert weights["long_branch"] > weights["short_first"]


def test_an_unreachable_store_leaves_registration_order_and_one_warning(monkeypatch) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/stats"
    monkeypatch.setenv("TASK_ENGINE_STATS", url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dag = to_airflow_dag(weighted_pipeline())
    weights = {task.task_id: task.priority_weight for task in dag.tasks}
    assert weights["short_first"] > weights["long_branch"]  # registration order
    messages = [str(w.message) for w in caught if issubclass(w.category, StatsWarning)]
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"statistics database {url}: connection failed")
