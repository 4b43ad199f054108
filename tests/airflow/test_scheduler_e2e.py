"""End to end on a real Airflow: api-server, scheduler (LocalExecutor) and dag-processor on 127.0.0.1.

The project's DAG-folder entry file is dropped into a fresh dags folder, configured with two
conformance scenarios; the real dag-processor parses it, each DAG is triggered, and every task
ends in the state and try number of the standalone run.
"""

from __future__ import annotations

import shutil
import sqlite3
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


@pytest.fixture()
def airflow_services(tmp_path: Path) -> Iterator[AirflowServices]:
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
    try:
        services.start()
        yield services
    finally:
        services.stop()


@pytest.mark.slow
def test_scheduler_runs_the_dropped_entry_file_like_the_standalone_run(airflow_services: AirflowServices) -> None:
    for name in SCENARIOS:
        airflow_services.wait_for_dag(name)
    runs = {name: airflow_services.trigger(name) for name in SCENARIOS}

    states = {name: airflow_services.wait_for_run(name, run_id) for name, run_id in runs.items()}

    assert states == {"seed_tasks_run1": "success", "seed_tasks_run2": "failed"}
    for name, run_id in runs.items():
        observed = airflow_services.engine_outcomes(name, run_id)
        assert mismatches(load(name), observed) == [], airflow_services.logs()

    # The statistics the tries wrote: one run row per dag run, a row per task that started.
    with sqlite3.connect(airflow_services.env["TASK_ENGINE_STATS"]) as connection:
        recorded = connection.execute("SELECT run_id, pipeline, tasks, outcome FROM runs ORDER BY pipeline").fetchall()
        task_rows = connection.execute("SELECT run_id, task, state, attempts FROM task_runs").fetchall()
    assert recorded == [
        (runs["seed_tasks_run1"], "seed_tasks_run1", 4, "success"),
        (runs["seed_tasks_run2"], "seed_tasks_run2", 4, "failed"),
    ]
    for name, run_id in runs.items():
        started = {task: value for task, value in airflow_services.engine_outcomes(name, run_id).items() if value[1]}
        assert {task: (state, attempts) for rid, task, state, attempts in task_rows if rid == run_id} == started
    # A later compile derives its priority weights from those runs.
    from task_engine.airflow import expected_durations

    assert set(expected_durations(airflow_services.env["TASK_ENGINE_STATS"], "seed_tasks_run1") or {}) == {
        task for task, value in airflow_services.engine_outcomes("seed_tasks_run1", runs["seed_tasks_run1"]).items()
        if value[1]
    }

    # The secret reached the task only through dag_run.conf; Airflow's task logs must not show it.
    leaky_run = airflow_services.trigger("leaky_pipeline", {"api": {"token": SECRET}})
    assert airflow_services.wait_for_run("leaky_pipeline", leaky_run) == "failed"
    logs = [path for path in (airflow_services.home / "logs").rglob("*") if path.is_file()]
    task_logs = "\n".join(path.read_text(errors="replace") for path in logs if "leaky" in str(path))
    assert "rejected token ***" in task_logs
    assert SECRET not in task_logs
