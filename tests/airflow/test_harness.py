"""The harness itself: Airflow's own mapping of skip, fail and retry that the adapter relies on."""

from __future__ import annotations

from pathlib import Path

from airflow_harness import load_dag_bag, run_dag_test

PLAIN_DAG = """
import datetime
from airflow.sdk import DAG, TriggerRule, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.providers.standard.operators.python import PythonOperator


def flaky():
    if get_current_context()["ti"].try_number < 2:
        raise ValueError("first try fails")


def skip():
    raise AirflowSkipException("skipped")


def give_up():
    raise AirflowFailException("no more tries")


def ok():
    pass


with DAG("plain", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    flaky_task = PythonOperator(task_id="flaky", python_callable=flaky, retries=2,
                                retry_delay=datetime.timedelta(0))
    skipped = PythonOperator(task_id="skipped", python_callable=skip)
    after_skip = PythonOperator(task_id="after_skip", python_callable=ok,
                                trigger_rule=TriggerRule.NONE_FAILED)
    failing = PythonOperator(task_id="failing", python_callable=give_up, retries=3)
    after_failure = PythonOperator(task_id="after_failure", python_callable=ok,
                                   trigger_rule=TriggerRule.NONE_FAILED)
    flaky_task >> skipped >> after_skip
    failing >> after_failure
"""


def test_dag_test_reports_states_and_try_numbers(dags_folder: Path) -> None:
    (dags_folder / "plain.py").write_text(PLAIN_DAG)
    bag = load_dag_bag(dags_folder)
    assert bag.import_errors == {}

    outcome = run_dag_test(bag.dags["plain"])

    assert outcome == {
        "flaky": ("success", 2),
        "skipped": ("skipped", 1),
        "after_skip": ("success", 1),
        "failing": ("failed", 1),
        "after_failure": ("upstream_failed", 0),
    }


def test_each_test_gets_a_fresh_database(dags_folder: Path) -> None:
    from airflow.models.dagrun import DagRun

    assert DagRun.find(dag_id="plain") == []
