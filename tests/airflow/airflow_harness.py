"""Helpers of the Airflow tests; importing this sets Airflow's configuration, so import it first."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Airflow reads its configuration when it is first imported, so everything it needs is
# set here, before any test module (or fixture) can import it.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="task-engine-airflow-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DATABASE = AIRFLOW_HOME / "airflow.db"
TEMPLATE_DATABASE = AIRFLOW_HOME / "migrated.db"
DAGS_FOLDER.mkdir()

AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{DATABASE}",
}
os.environ.update(AIRFLOW_ENV)

REPO_ROOT = Path(__file__).resolve().parents[2]


def airflow_command(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run the `airflow` CLI of this virtualenv and return its standard output; fail loudly."""
    completed = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"airflow {' '.join(args)} exited {completed.returncode}\n"
            f"--- stdout ---\n{completed.stdout[-4000:]}\n--- stderr ---\n{completed.stderr[-4000:]}"
        )
    return completed.stdout


def load_dag_bag(folder: Path):
    """Parse `folder` the way the DAG processor does; return the DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def run_dag_test(dag, conf: dict | None = None) -> dict[str, tuple[str | None, int]]:
    """Run `dag` once with dag.test() and return {task_id: (final state, try number)}."""
    dag_run = dag.test(run_conf=conf)
    return {
        ti.task_id: (None if ti.state is None else str(ti.state), ti.try_number)
        for ti in dag_run.get_task_instances()
    }
