"""End to end on a real Airflow: api-server, scheduler (LocalExecutor) and dag-processor on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_harness import AirflowServices
from test_harness import PLAIN_DAG


@pytest.fixture()
def airflow_services(tmp_path: Path) -> Iterator[AirflowServices]:
    dags = tmp_path / "dags"
    dags.mkdir()
    services = AirflowServices(tmp_path / "home", dags)
    try:
        services.start()
        yield services
    finally:
        services.stop()


@pytest.mark.slow
def test_scheduler_runs_a_dropped_dag_file(airflow_services: AirflowServices) -> None:
    (airflow_services.dags_folder / "plain.py").write_text(PLAIN_DAG)
    airflow_services.wait_for_dag("plain")

    run_id = airflow_services.trigger("plain")

    assert airflow_services.wait_for_run("plain", run_id) == "failed"
    assert airflow_services.task_outcomes("plain", run_id) == {
        "flaky": ("success", 2),
        "skipped": ("skipped", 1),
        "after_skip": ("success", 1),
        "failing": ("failed", 1),
        "after_failure": ("upstream_failed", 0),
    }, airflow_services.logs()
