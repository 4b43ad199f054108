"""Task groups: a 200-task pipeline as one orchestrator task per engine task vs groups of 20.

The pipeline is 10 independent chains of 20 no-op function tasks; the 10th task of every chain
raises SkipTask, so the final states are not all alike. Ungrouped, Airflow gets 200 Airflow tasks
(Prefect 200 task runs); grouped, each chain is one group: 10 Airflow tasks (10 task runs), each
running its 20 tasks through the standalone executor. Both run in this process, alternately
(`--rounds`, default 3; Prefect gets one untimed warm-up run of each first), and the script
prints the median wall times, their ratio, and whether every task's final state and attempt
count are the same.

Run it in the adapter's virtualenv:
    .venvs/airflow/bin/python bench/bench_groups.py --backend airflow     (dag.test())
    .venvs/prefect/bin/python bench/bench_groups.py --backend prefect     (a temporary Prefect API)
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHAINS, LENGTH, SKIPPED_AT = 10, 20, 9

PIPELINE_MODULE = f'''
"""The bench pipeline: {CHAINS} chains of {LENGTH} no-op tasks; task {SKIPPED_AT} of each chain skips."""
from task_engine_core import Pipeline, SkipTask

pipeline = Pipeline("bench_groups")


def work():
    pass


def skips():
    raise SkipTask("skipped on purpose")


for chain in range({CHAINS}):
    for step in range({LENGTH}):
        pipeline.add(skips if step == {SKIPPED_AT} else work, name=f"c{{chain}}_t{{step}}",
                     depends_on=[f"c{{chain}}_t{{step - 1}}"] if step else [])

GROUPS = {{f"chain{{chain}}": [f"c{{chain}}_t{{step}}" for step in range({LENGTH})] for chain in range({CHAINS})}}
'''


def write_pipeline(folder: Path) -> None:
    (folder / "bench_groups_pipeline.py").write_text(PIPELINE_MODULE)
    sys.path.insert(0, str(folder))


def bench_airflow(home: Path, rounds: int) -> tuple[dict[str, float], dict[str, dict[str, tuple[str, int]]]]:
    dags = home / "dags"
    dags.mkdir()
    database = home / "airflow.db"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "TASK_ENGINE_STATS": "off",
            "PYTHONPATH": os.pathsep.join([str(home), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
    )
    write_pipeline(home)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    (dags / "bench_groups_dags.py").write_text(
        "from task_engine.airflow import to_airflow_dag\n"
        "from bench_groups_pipeline import GROUPS, pipeline\n\n"
        "per_task = to_airflow_dag(pipeline, dag_id='bench_per_task', keep_going=True)\n"
        "grouped = to_airflow_dag(pipeline, dag_id='bench_grouped', keep_going=True, groups=GROUPS)\n"
    )
    from airflow.dag_processing.dagbag import DagBag

    from task_engine.airflow import GROUP_STATES_XCOM_KEY

    bag = DagBag(dag_folder=str(dags))
    if bag.import_errors:
        raise SystemExit(f"the bench DAG file does not import: {bag.import_errors}")
    states: dict[str, dict[str, tuple[str, int]]] = {}
    dag_ids = {"per task": "bench_per_task", "groups of 20": "bench_grouped"}
    samples: dict[str, list[float]] = {label: [] for label in dag_ids}
    for round_number in range(rounds):
        order = list(dag_ids.items()) if round_number % 2 == 0 else list(reversed(dag_ids.items()))
        for label, dag_id in order:
            started = time.perf_counter()
            dag_run = bag.dags[dag_id].test()
            samples[label].append(time.perf_counter() - started)
            if label == "per task":
                states[label] = {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
                continue
            with closing(sqlite3.connect(database)) as connection:
                rows = connection.execute(
                    "select task_id, value from xcom where dag_id = ? and run_id = ? and key = ?",
                    (dag_id, dag_run.run_id, GROUP_STATES_XCOM_KEY),
                ).fetchall()
            states[label] = {
                task: (value["state"], value["attempts"]) for _, raw in rows for task, value in json.loads(raw).items()
            }
    times = {label: statistics.median(values) for label, values in samples.items()}
    return times, states


def bench_prefect(home: Path, rounds: int) -> tuple[dict[str, float], dict[str, dict[str, tuple[str, int]]]]:
    for key in [k for k in os.environ if k.startswith("PREFECT_")]:
        del os.environ[key]
    os.environ.update(
        PREFECT_HOME=str(home),
        PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_LOGGING_LEVEL="CRITICAL",
        TASK_ENGINE_STATS="off",
    )
    os.chdir(home)
    write_pipeline(home)
    from bench_groups_pipeline import GROUPS, pipeline
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from task_engine.prefect import last_result, to_prefect_flow

    states: dict[str, dict[str, tuple[str, int]]] = {}
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), prefect_test_harness(90):
        flows = {
            "per task": to_prefect_flow(pipeline, name="bench-per-task", reporters=[], keep_going=True),
            "groups of 20": to_prefect_flow(
                pipeline, name="bench-grouped", reporters=[], keep_going=True, groups=GROUPS
            ),
        }
        samples: dict[str, list[float]] = {label: [] for label in flows}
        # One untimed run each (imports, first flow run), then alternating rounds: a flow run leaves
        # Prefect work behind (state and event writes) that slows whatever runs right after it.
        for round_number in range(rounds + 1):
            order = list(flows.items()) if round_number % 2 else list(reversed(flows.items()))
            for label, built in order:
                started = time.perf_counter()
                built()
                if round_number:
                    samples[label].append(time.perf_counter() - started)
                result = last_result(built)
                assert result is not None
                states[label] = {name: (r.state.value, r.attempts) for name, r in result.tasks.items()}
        times = {label: statistics.median(values) for label, values in samples.items()}
    return times, states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("airflow", "prefect"), required=True)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each (the median is shown)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix=f"bench-groups-{args.backend}-"))
    times, states = (bench_airflow if args.backend == "airflow" else bench_prefect)(home, args.rounds)
    tasks = CHAINS * LENGTH
    print(
        f"{args.backend}: {tasks} tasks ({CHAINS} chains of {LENGTH}), median of {args.rounds} run(s) each, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.1f}"
    )
    for label, seconds in times.items():
        print(f"  {label:>13}: {seconds:8.2f} s  ({seconds / tasks * 1000:7.1f} ms per engine task)")
    print(f"  ratio per task / groups of 20: {times['per task'] / times['groups of 20']:.1f}x")
    per_task = {task: (state, tries) for task, (state, tries) in states["per task"].items()}
    same = per_task == states["groups of 20"]
    counts: dict[str, int] = {}
    for state, _ in states["groups of 20"].values():
        counts[state] = counts.get(state, 0) + 1
    print(f"  final states and attempts identical: {same} ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})")
    if not same:
        different = sorted(t for t in per_task if per_task[t] != states["groups of 20"].get(t))
        print(f"  differing: {different[:10]}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
