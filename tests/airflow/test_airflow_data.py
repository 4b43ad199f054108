"""Outputs through XCom on Airflow: unserialisable values, the size limit and the output store, non-lists."""

from __future__ import annotations

from pathlib import Path

from airflow_harness import load_dag_bag, run_dag_test_with_outputs

DAG_FILE = '''
from adapters.airflow import FileOutputStore, to_airflow_dag
from task_engine_core import Pipeline

pipeline = Pipeline("xcom_limits")


@pipeline.register
def big():
    return "x" * 500


@pipeline.register(depends_on=big)
def size(big):
    return len(big)


@pipeline.register
def weird():
    return object()


@pipeline.register
def not_a_list():
    return {{"run": 1}}


@pipeline.register(map_over=not_a_list)
def poll(not_a_list):
    return not_a_list


dag = to_airflow_dag(pipeline, dag_id="xcom_limits", keep_going=True, max_xcom_bytes=100,
                     output_store={store})
'''


def run(dags_folder: Path, store: str):
    (dags_folder / "xcom_limits.py").write_text(DAG_FILE.format(store=store))
    bag = load_dag_bag(dags_folder)
    assert bag.import_errors == {}
    return run_dag_test_with_outputs(bag.dags["xcom_limits"])


def test_large_output_goes_to_the_store_and_bad_values_fail_their_own_task(dags_folder: Path, tmp_path: Path, capfd):
    states, outputs = run(dags_folder, f"FileOutputStore({str(tmp_path / 'outputs')!r})")
    logs = capfd.readouterr()
    assert states["big"] == ("success", 1) and states["size"] == ("success", 1)
    assert outputs["size"] == 500  # read back from the store by the downstream task
    assert list((tmp_path / "outputs").glob("*big.pickle"))
    assert states["weird"] == ("failed", 1)
    assert "task 'weird' returned a object that Airflow XCom cannot carry: it cannot be serialised" in logs.out + logs.err
    # Airflow checks what it expands over only when it pushes; the adapter fails the upstream first, naming both.
    assert states["not_a_list"] == ("failed", 1)
    assert (
        "task 'poll' maps over the output of 'not_a_list', which returned dict, not a list" in logs.out + logs.err
    )


def test_large_output_without_a_store_is_an_error_saying_what_to_configure(dags_folder: Path, capfd):
    states, _ = run(dags_folder, "None")
    logs = capfd.readouterr()
    assert states["big"] == ("failed", 1)
    assert states["size"] == ("upstream_failed", 0)
    assert (
        "task 'big' returned a str that Airflow XCom cannot carry: its serialised form is 502 bytes, over "
        "max_xcom_bytes=100, and no output store is configured; pass "
        "to_airflow_dag(output_store=FileOutputStore('/shared/dir')) or raise max_xcom_bytes"
    ) in logs.out + logs.err
