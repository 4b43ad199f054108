"""Outputs through XCom on Airflow: unserialisable values, the size limit and the output store, non-lists."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_harness import dag_test_as_engine, load_dag_bag, run_dag_test_with_outputs

DAG_FILE = """
from task_engine.airflow import FileOutputStore, to_airflow_dag
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
"""


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
    assert (
        "task 'weird' returned a object that Airflow XCom cannot carry: it cannot be serialised" in logs.out + logs.err
    )
    # Airflow checks what it expands over only when it pushes; the adapter fails the upstream first, naming both.
    assert states["not_a_list"] == ("failed", 1)
    assert "task 'poll' maps over the output of 'not_a_list', which returned dict, not a list" in logs.out + logs.err


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


RESUME_DAG_FILE = """
from pathlib import Path

from task_engine.airflow import to_airflow_dag
from task_engine_core import Pipeline

pipeline = Pipeline("resume_outputs")
BROKEN = Path({broken!r})


@pipeline.register
def extract():
    return [1, 2, 3]


@pipeline.register(depends_on=extract)
def load(extract):
    if BROKEN.exists():
        raise ConnectionError("warehouse down")
    return sum(extract)


dag = to_airflow_dag(pipeline, dag_id="resume_outputs")
"""


def test_a_resume_that_would_hand_a_task_a_kept_output_fails_it_with_the_core_message(
    dags_folder: Path, tmp_path: Path, capfd
):
    broken = tmp_path / "broken"
    broken.touch()
    (dags_folder / "resume_outputs.py").write_text(RESUME_DAG_FILE.format(broken=str(broken)))
    dag = load_dag_bag(dags_folder).dags["resume_outputs"]
    first, first_run = dag_test_as_engine(dag)
    assert first == {"extract": ("success", 1), "load": ("failed", 1)}
    broken.unlink()
    capfd.readouterr()
    observed, _ = dag_test_as_engine(dag, {"task_engine": {"resume": first_run}})
    logs = capfd.readouterr()
    # As standalone: extract is kept, and load refuses to start without its output (no retry).
    assert observed == {"extract": ("success", 0), "load": ("failed", 1)}
    assert (
        f"task 'load' reads the output of 'extract', which this run does not have: 'extract' was kept from run "
        f"{first_run} by --resume, and outputs are not kept between runs"
    ) in logs.out + logs.err


def test_data_that_would_cross_a_task_group_boundary_is_refused_when_the_dag_is_built() -> None:
    from task_engine.airflow import AirflowAdapterError, to_airflow_dag
    from tests.conformance import load

    pipeline = load("fan_out_rate_limited").pipeline  # list_runs -> get_run (mapped over it) -> summary
    with pytest.raises(AirflowAdapterError) as mapped_out:
        to_airflow_dag(pipeline, groups={"listing": ["list_runs"]})
    assert str(mapped_out.value) == (
        "cannot compile pipeline 'fan_out_rate_limited' for Airflow: task 'get_run' maps over the output of "
        "'list_runs', but only 'list_runs' is in the task group 'listing': put both in the group, or neither"
    )
    with pytest.raises(
        AirflowAdapterError, match="task 'get_run' maps over the output of 'list_runs', but only 'get_run' is in"
    ):
        to_airflow_dag(pipeline, groups={"polling": ["get_run"]})
    with pytest.raises(AirflowAdapterError) as read_out:
        to_airflow_dag(pipeline, groups={"both": ["list_runs", "get_run"]})
    assert str(read_out.value).startswith(
        "cannot compile pipeline 'fan_out_rate_limited' for Airflow: task 'summary' reads the output of 'get_run', "
        "which this run does not have: 'get_run' runs inside the Airflow task group 'both', whose outputs stay in it"
    )
    # All in one group: the group's standalone run maps and hands outputs on in memory.
    dag = to_airflow_dag(pipeline, dag_id="fan_out_grouped", groups={"all": ["list_runs", "get_run", "summary"]})
    assert dag.task_ids == ["all"]
