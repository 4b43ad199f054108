"""Parse time of a 1,000-task pipeline compiled by task_engine.airflow vs a hand-written PythonOperator DAG.

Both DAG files have the same shape (task i depends on i - 1 and i // 2; the hand-written one sets
each edge with `>>`, as DAG authors usually do, the adapter one call per task) and are parsed the way
Airflow's dag-processor parses a file (a DagBag over it), alternately, several rounds. Prints the
best and median parse time of each and the ratio of the best ones (target: adapter / hand-written <= 1.2).

Run in the Airflow virtualenv: .venvs/airflow/bin/python bench/bench_airflow_parse.py [--tasks N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

SHAPE = """
def parents(i):
    return sorted({{i - 1, i // 2}} - {{i}}) if i else []
"""

ADAPTER_DAG = (
    SHAPE
    + """
# Airflow DAG file: a Task Engine pipeline compiled by task_engine.airflow.
from task_engine.airflow import to_airflow_dag
from task_engine_core import Pipeline

pipeline = Pipeline("bench_adapter")


def work():
    pass


for i in range({tasks}):
    pipeline.add(work, name=f"t{{i}}", depends_on=[f"t{{p}}" for p in parents(i)])

dag = to_airflow_dag(pipeline)
"""
)

HAND_WRITTEN_DAG = (
    SHAPE
    + """
# Airflow DAG file written by hand with the same shape and settings.
import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator


def work():
    pass


with DAG("bench_hand_written", schedule=None, start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
         catchup=False, tags=["task-engine"]) as dag:
    operators = []
    for i in range({tasks}):
        operator = PythonOperator(task_id=f"t{{i}}", python_callable=work, retries=0,
                                  retry_delay=datetime.timedelta(seconds=1), priority_weight={tasks} - i,
                                  weight_rule="absolute", trigger_rule="none_failed")
        for p in parents(i):
            operators[p] >> operator
        operators.append(operator)
"""
)


def parse_seconds(folder: Path) -> float:
    """Seconds to fill a DagBag from `folder` (one file, one DAG)."""
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(folder))
    elapsed = time.perf_counter() - started
    if bag.import_errors or len(bag.dags) != 1:
        raise SystemExit(f"parsing {folder} failed: {bag.import_errors or list(bag.dags)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    # Airflow reads its configuration on import: a private home, no examples.
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    folders = {}
    for label, template in (("adapter", ADAPTER_DAG), ("hand-written", HAND_WRITTEN_DAG)):
        folder = home / label
        folder.mkdir()
        (folder / "dag.py").write_text(template.format(tasks=args.tasks))
        folders[label] = folder

    # Warm up imports once, so neither side pays for importing Airflow.
    for folder in folders.values():
        parse_seconds(folder)
    timings: dict[str, list[float]] = {label: [] for label in folders}
    for _ in range(args.rounds):
        for label, folder in folders.items():
            timings[label].append(parse_seconds(folder))

    # The best round is the least disturbed by other work on the machine; the median is shown too.
    best = {label: min(values) for label, values in timings.items()}
    for label, values in timings.items():
        print(
            f"{label:>12}: best {best[label] * 1000:7.1f} ms, median {statistics.median(values) * 1000:7.1f} ms "
            f"over {args.rounds} rounds ({args.tasks} tasks)"
        )
    ratio = best["adapter"] / best["hand-written"]
    print(f"ratio adapter / hand-written (best rounds): {ratio:.2f} (target <= 1.20)")
    print("within target" if ratio <= 1.2 else "OVER TARGET")


if __name__ == "__main__":
    main()
