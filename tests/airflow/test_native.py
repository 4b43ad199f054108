"""What an Airflow user expects to see: robust dags/ entry, per-pipeline YAML, params, groups, docs, Connections, sensors."""

from __future__ import annotations

import json
import shutil
import sqlite3
import textwrap
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from airflow_harness import DATABASE, REPO_ROOT, load_dag_bag, run_dag_test, run_dag_test_as_engine

from task_engine.airflow import EXECUTION_TIMEOUT_GRACE, AirflowAdapterError, to_airflow_dag
from task_engine.airflow_dags import DagsConfigError, read_dags_config
from task_engine_core import Pipeline, timeout
from task_engine_core._hydrators import registered_hydrators, unregister_hydrator

ENTRY_FILE = REPO_ROOT / "dags" / "task_engine_dags.py"
ERRORS_FILE = REPO_ROOT / "dags" / "task_engine_import_errors.py"

GOOD_PIPELINE = '''
from task_engine_core import register


@register
def Extract():
    """Pull the **raw** rows."""


@register(depends_on=Extract)
def Load():
    pass
'''


@pytest.fixture(autouse=True)
def _hydrators_as_before() -> Iterator[None]:
    """Drop the hydrators a test's DAGs registered (Connections, secrets): later tests pin their context sources."""
    before = {name for name, _ in registered_hydrators()}
    yield
    for name, _ in registered_hydrators():
        if name not in before:
            unregister_hydrator(name)


@pytest.fixture()
def entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The entry file copied into a fresh folder, no TASK_ENGINE_PIPELINES, one good pipeline beside it."""
    monkeypatch.delenv("TASK_ENGINE_PIPELINES", raising=False)
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(ENTRY_FILE, folder)
    shutil.copy(ERRORS_FILE, folder)
    (tmp_path / "good_pipeline.py").write_text(GOOD_PIPELINE)
    return folder


def write_config(folder: Path, text: str) -> Path:
    path = folder / "task_engine_dags.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_broken_target_does_not_hide_the_others_and_is_an_import_error_naming_it(entry: Path) -> None:
    (entry.parent / "broken_pipeline.py").write_text("import no_such_module_anywhere\n")
    write_config(
        entry,
        """
        pipelines:
          good: ../good_pipeline.py
          broken: ../broken_pipeline.py
          missing: ../missing.py
    """,
    )

    bag = load_dag_bag(entry)

    assert sorted(bag.dags) == ["good"]
    # The error is the companion file's: Airflow 3 marks every DAG of a file with an import error stale.
    [(path, error)] = bag.import_errors.items()
    assert path.endswith("task_engine_import_errors.py")
    assert "2 Task Engine pipeline(s) could not be compiled; the others are scheduled as usual" in error
    assert "pipeline 'broken' (target" in error and "broken_pipeline.py" in error
    assert "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in error
    assert "pipeline 'missing'" in error and "no such file or folder" in error


def test_the_yaml_file_sets_each_pipelines_dag_settings(entry: Path) -> None:
    (entry.parent / "context.yml").write_text("greeting: hello\n")
    write_config(
        entry,
        """
        pipelines:
          nightly:
            target: ../good_pipeline.py
            schedule: "@daily"
            tags: [nightly, etl]
            keep_going: true
            context_file: ../context.yml
            params:
              region: {type: string, default: eu, description: Which region to load}
              batch: 500
              dry: {type: boolean, default: false}
          second:
            target: ../good_pipeline.py
    """,
    )

    bag = load_dag_bag(entry)

    assert bag.import_errors == {}
    nightly = bag.dags["nightly"]
    assert (nightly.timetable.expression, sorted(nightly.tags)) == ("0 0 * * *", ["etl", "nightly"])
    # keep_going: no fail-fast check in the callable.
    assert nightly.task_dict["Load"].python_callable.fail_fast is False
    assert bag.dags["second"].task_dict["Load"].python_callable.fail_fast is True
    assert nightly.task_dict["Load"].python_callable.context_source.context_file == str(entry.parent / "context.yml")
    params = nightly.params
    # The run options' field first (empty: every task runs), then the declared context keys.
    assert params.dump() == {"task_engine": None, "region": "eu", "batch": 500, "dry": False}
    assert params.get_param("region").schema == {"type": "string"}
    assert params.get_param("region").description == "Which region to load"
    assert params.get_param("batch").schema == {"type": "integer"}


def test_the_trigger_form_has_a_run_options_field_and_a_selection_given_there_runs(dags_folder: Path) -> None:
    seen = dags_folder.parent / "context.json"
    (dags_folder / "selected.py").write_text(
        textwrap.dedent(f"""
        import json
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline

        pipeline = Pipeline("selected")

        def extract(context):
            with open({str(seen)!r}, "w") as out:
                json.dump(sorted(context.to_dict()), out)

        pipeline.register(extract, name="Extract")
        pipeline.register(lambda: None, name="Report", depends_on="Extract")
        dag = to_airflow_dag(pipeline, params={{"region": "eu"}})
    """)
    )
    dag = load_dag_bag(dags_folder).dags["selected"]
    field = dag.params.get_param("task_engine")
    assert (field.value, field.schema["type"], field.schema["title"]) == (
        None,
        ["object", "null"],
        "Task Engine run options",
    )
    assert set(field.schema["properties"]) == {"only", "from", "to", "tags", "with_upstream", "resume"}
    # As the form sends it: the field's value in dag_run.conf; the run options are not context.
    observed = run_dag_test_as_engine(dag, {"task_engine": {"only": ["Extract"]}})
    assert observed == {"Extract": ("success", 1), "Report": ("not_run", 0)}
    assert json.loads(seen.read_text()) == ["region"]
    # The form refuses a wrong type before any task starts.
    with pytest.raises(Exception, match="task_engine"):
        dag.test(run_conf={"task_engine": {"with_upstream": "yes"}})


def test_a_params_key_named_like_the_run_options_field_is_refused() -> None:
    pipeline = Pipeline("clash")
    pipeline.register(lambda: None, name="use")
    with pytest.raises(AirflowAdapterError) as caught:
        to_airflow_dag(pipeline, params={"task_engine": 1})
    assert str(caught.value) == (
        "to_airflow_dag(params=...) for pipeline 'clash': 'task_engine' is the param of the run options "
        "(selection, resume); give your context key another name"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "pipelines:\n  nightly: {target: x.py, schedul: '@daily'}\n",
            "pipeline 'nightly': unknown key 'schedul'; did you mean 'schedule'?",
        ),
        (
            "pipelines:\n  nightly: {target: x.py, keep_going: 'yes'}\n",
            "pipeline 'nightly', key 'keep_going': expected bool, got 'yes'",
        ),
        (
            "pipelines:\n  nightly: {target: x.py, min_reschedule_seconds: true}\n",
            "pipeline 'nightly', key 'min_reschedule_seconds': expected int or float, got True",
        ),
        ("pipelines:\n  nightly: {schedule: '@daily'}\n", "pipeline 'nightly': key 'target' is missing"),
        (
            "pipelines:\n  nightly: {target: x.py, tags: [1]}\n",
            "pipeline 'nightly', key 'tags': expected a list of strings, got [1]",
        ),
        (
            "pipelines:\n  nightly: {target: x.py, pools: {api: 3}}\n",
            "pipeline 'nightly', key 'pools.api': expected a string, got 3",
        ),
        (
            "pipelines:\n  nightly: {target: x.py, params: {n: {type: int}}}\n",
            "pipeline 'nightly', key 'params.n.type': 'int' is not a JSON-schema type",
        ),
        (
            "pipelines:\n  nightly: {target: x.py, params: {n: {type: integer, default: nope}}}\n",
            "pipeline 'nightly', key 'params.n':",
        ),
        ("nightly: x.py\n", "the file holds one key, 'pipelines:'"),
    ],
)
def test_the_yaml_file_is_validated_naming_pipeline_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "task_engine_dags.yml"
    path.write_text(text)
    with pytest.raises(DagsConfigError) as caught:
        read_dags_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_the_yaml_file_passes_min_reschedule_seconds_on(tmp_path: Path) -> None:
    path = tmp_path / "task_engine_dags.yml"
    path.write_text("pipelines:\n  nightly: {target: x.py, min_reschedule_seconds: 60}\n")
    [settings] = read_dags_config(path)
    assert settings.options == {"min_reschedule_seconds": 60}


def test_a_bad_yaml_file_is_an_import_error_of_the_entry(entry: Path) -> None:
    write_config(entry, "pipelines:\n  nightly: {target: ../good_pipeline.py, retries: 3}\n")
    bag = load_dag_bag(entry)
    assert bag.dags == {}
    [error] = bag.import_errors.values()
    assert "pipeline 'nightly': unknown key 'retries'" in error


def test_a_bad_setting_of_one_pipeline_leaves_the_others(entry: Path) -> None:
    write_config(
        entry,
        """
        pipelines:
          good: ../good_pipeline.py
          unscheduled: {target: ../good_pipeline.py, schedule: "every tuesday-ish"}
    """,
    )
    bag = load_dag_bag(entry)
    assert sorted(bag.dags) == ["good"]
    [error] = bag.import_errors.values()
    assert "pipeline 'unscheduled' (target" in error
    assert "Airflow refuses DAG 'unscheduled': AirflowTimetableInvalid: Exactly 5, 6 or 7 columns" in error


def test_tasks_of_each_module_form_a_task_group_and_docstrings_become_doc_md(entry: Path) -> None:
    write_config(
        entry,
        f"""
        pipelines:
          jobs: {REPO_ROOT / "examples" / "jobs"}
          good: ../good_pipeline.py
    """,
    )
    bag = load_dag_bag(entry)
    assert bag.import_errors == {}
    jobs = bag.dags["jobs"]
    groups = {task.task_id: task.task_group.group_id for task in jobs.tasks}
    assert groups == {"Job1Task1": "job1", "Job1Task2": "job1", "Job2Task1": "job2", "Job2Task2": "job2"}
    # Task ids stay the engine's names (no group prefix): states and XComs keep their keys.
    assert jobs.task_group_dict["job1"].tooltip.startswith("Job 1: its first task depends on a task of Job 2")
    # One module: no group around everything; a function's docstring is its doc_md.
    good = bag.dags["good"]
    assert {task.task_group.group_id for task in good.tasks} == {None}
    assert (good.task_dict["Extract"].doc_md, good.task_dict["Load"].doc_md) == ("Pull the **raw** rows.", None)


def test_groups_units_sit_in_their_module_task_group_or_at_the_top_level(entry: Path) -> None:
    # One rule: `groups` decides what runs as one Airflow task, module TaskGroups only arrange them.
    jobs = REPO_ROOT / "examples" / "jobs"
    write_config(
        entry,
        f"""
        pipelines:
          inside: {{target: {jobs}, groups: {{first: [Job2Task1, Job2Task2]}}}}
          across: {{target: {jobs}, groups: {{bridge: [Job2Task2, Job1Task1]}}}}
          named_like_a_module: {{target: {jobs}, groups: {{job1: [Job1Task1, Job1Task2]}}}}
    """,
    )
    bag = load_dag_bag(entry)
    assert bag.import_errors == {}

    def folders(dag_id: str) -> dict[str, str | None]:
        return {task.task_id: task.task_group.group_id for task in bag.dags[dag_id].tasks}

    assert folders("inside") == {"first": "job2", "Job1Task1": "job1", "Job1Task2": "job1"}
    # A group spanning two modules belongs to neither.
    assert folders("across") == {"Job2Task1": "job2", "bridge": None, "Job1Task2": "job1"}
    # Airflow keeps task and TaskGroup ids in one namespace: the module's TaskGroup yields.
    assert folders("named_like_a_module") == {"Job2Task1": "job2", "Job2Task2": "job2", "job1": "job1_tasks"}
    assert bag.dags["inside"].task_dict["first"].doc_md == (
        "Task Engine task group `first`, run by the standalone executor inside one Airflow try:\n\n"
        "- `Job2Task1`\n- `Job2Task2`"
    )
    assert [task.execution_timeout for task in bag.dags["inside"].tasks] == [None, None, None]


def test_a_task_class_without_a_docstring_has_no_doc_md_not_tasks_docstring() -> None:
    pipeline = Pipeline("docs")

    from task_engine_core import Task

    @pipeline.register
    class Plain(Task):
        def perform_task(self):
            pass

    @pipeline.register
    class Documented(Task):
        """Documented task.

        Second paragraph.
        """

        def perform_task(self):
            pass

    tasks = to_airflow_dag(pipeline).task_dict
    assert (tasks["Plain"].doc_md, tasks["Documented"].doc_md) == (None, "Documented task.\n\nSecond paragraph.")


def test_timeout_also_sets_execution_timeout() -> None:
    pipeline = Pipeline("timed")

    @pipeline.register
    @timeout(30)
    def slow():
        pass

    @pipeline.register
    def untimed():
        pass

    tasks = to_airflow_dag(pipeline).task_dict
    assert tasks["slow"].execution_timeout == timedelta(seconds=30) + EXECUTION_TIMEOUT_GRACE
    assert tasks["untimed"].execution_timeout is None


def test_connections_and_secrets_reach_the_context_masked(dags_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment is one of Airflow's secrets backends, for Connections and Variables alike.
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DB", "postgres://loader:pg-s3cret@db.internal:5433/sales")
    monkeypatch.setenv("AIRFLOW_VAR_API_TOKEN", "tok-s3cret")
    seen = dags_folder.parent / "seen.json"
    (dags_folder / "secretive.py").write_text(
        textwrap.dedent(f"""
        import json
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline

        pipeline = Pipeline("secretive")

        @pipeline.register
        def use(context):
            db, token = context["warehouse"], context["api"]["token"]
            print("password is", db["password"].reveal(), "token is", token.reveal())
            with open({str(seen)!r}, "w") as out:
                json.dump({{"host": db["host"], "port": db["port"], "login": db["login"], "schema": db["schema"],
                           "password": [repr(db["password"]), db["password"].reveal()],
                           "token": [repr(token), token.reveal()], "sources": list(context.sources)}}, out)

        dag = to_airflow_dag(pipeline, connections={{"warehouse": "warehouse_db"}},
                             secrets={{"api.token": "api_token"}})
    """)
    )
    bag = load_dag_bag(dags_folder)
    assert bag.import_errors == {}

    assert run_dag_test(bag.dags["secretive"]) == {"use": ("success", 1)}
    seen_context = json.loads(seen.read_text())
    sources = seen_context.pop("sources")
    assert sources[sources.index("airflow connections 'warehouse_db'") + 1] == "airflow secrets 'api_token'"
    assert seen_context == {
        "host": "db.internal",
        "port": 5433,
        "login": "loader",
        "schema": "sales",
        "password": ["Secret('***')", "pg-s3cret"],
        "token": ["Secret('***')", "tok-s3cret"],
    }


def test_a_missing_connection_fails_the_try_naming_key_and_conn_id(dags_folder: Path) -> None:
    (dags_folder / "unconnected.py").write_text(
        textwrap.dedent("""
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline

        pipeline = Pipeline("unconnected")
        pipeline.register(lambda: None, name="use")
        dag = to_airflow_dag(pipeline, connections={"warehouse": "no_such_conn"})
    """)
    )
    bag = load_dag_bag(dags_folder)
    # No retry: a context that cannot be built fails at once, as standalone.
    assert run_dag_test(bag.dags["unconnected"]) == {"use": ("failed", 1)}


def test_importing_the_adapter_registers_no_hydrator_building_a_dag_does() -> None:
    import subprocess
    import sys

    code = (
        "from task_engine_core._hydrators import registered_hydrators as r\n"
        "import task_engine.airflow as a\n"
        "before = [n for n, _ in r()]\n"
        "from task_engine_core import Pipeline\n"
        "p = Pipeline('p'); p.register(lambda: None, name='t')\n"
        "a.to_airflow_dag(p)\n"
        "print(before, [n for n, _ in r()])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == (
        "['yaml file', 'environment'] ['yaml file', 'airflow variable', 'environment', 'airflow params']"
    )


def test_a_resource_wait_reschedules_and_keeps_one_deadline_across_tries(
    dags_folder: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    polls = dags_folder.parent / "polls.txt"
    (dags_folder / "waiting.py").write_text(
        textwrap.dedent(f"""
        import time
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Backoff, Pipeline, retries, wait_for_resource

        pipeline = Pipeline("waiting")

        def never_ready(context):
            with open({str(polls)!r}, "a") as out:
                out.write(f"{{time.time()}}\\n")
            return False

        @pipeline.register
        @retries(3, backoff=Backoff.constant(0.1))
        @wait_for_resource(never_ready, timeout=2, interval=0.5, name="warehouse")
        def load():
            pass

        # dag.test() runs every poll in this process, where no scheduler can race a reschedule.
        dag = to_airflow_dag(pipeline, min_reschedule_seconds=0)
    """)
    )
    bag = load_dag_bag(dags_folder)

    dag_run = bag.dags["waiting"].test()

    [ti] = dag_run.get_task_instances()
    assert (str(ti.state), ti.try_number) == ("failed", 3)
    times = [float(line) for line in polls.read_text().split()]
    deadline = times[0] + 2
    # Each pause of try 1 handed the worker back: the execution API saw the task rescheduled.
    assert "new_state=up_for_reschedule" in capfd.readouterr().out
    # Try 1 polled until its deadline (its last poll at or after it); tries 2 and 3 poll once
    # each and time out at once: the deadline did not restart with them.
    assert len(times) - 2 >= 2, times
    assert len([t for t in times if t >= deadline]) == 3, times


def test_a_resource_wait_reschedules_at_least_min_reschedule_seconds_ahead(dags_folder: Path) -> None:
    # A 1-second reschedule lost a real scheduler's race (the end of one poll seen after the next
    # was queued: "finished with state success, but ... running") and failed the task.
    (dags_folder / "waiting.py").write_text(
        textwrap.dedent("""
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline, wait_for_resource

        pipeline = Pipeline("floored")

        @pipeline.register
        @wait_for_resource(lambda: False, timeout=1, interval=0.1, name="warehouse")
        def load():
            pass

        dag = to_airflow_dag(pipeline, min_reschedule_seconds=3)
    """)
    )
    bag = load_dag_bag(dags_folder)
    dag_run = bag.dags["floored"].test()
    # closing(): a connection left open would outlive this test's database, which the next test replaces.
    with closing(sqlite3.connect(DATABASE, timeout=30)) as database:
        rows = database.execute(
            "select r.start_date, r.reschedule_date from task_reschedule r join task_instance ti on ti.id = r.ti_id "
            "where ti.dag_id = 'floored' and ti.run_id = ?",
            (dag_run.run_id,),
        ).fetchall()
    # The 0.1 s pause (cut to the 1 s left) asked Airflow for a reschedule 3 s ahead; the poll
    # after it found the deadline passed.
    assert [(ti.task_id, str(ti.state)) for ti in dag_run.get_task_instances()] == [("load", "failed")]
    assert len(rows) == 1, rows
    [(started, reschedule_at)] = rows
    ahead = datetime.fromisoformat(reschedule_at) - datetime.fromisoformat(started)
    # The row's start is stamped by the API server a moment after the task computed the date.
    assert ahead >= timedelta(seconds=2.5), rows


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), True, "15"])
def test_min_reschedule_seconds_must_be_a_number_of_seconds(value: object) -> None:
    pipeline = Pipeline("floored")
    pipeline.register(lambda: None, name="use")
    with pytest.raises(AirflowAdapterError) as raised:
        to_airflow_dag(pipeline, min_reschedule_seconds=value)  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"to_airflow_dag(min_reschedule_seconds={value!r}) for pipeline 'floored': give the shortest pause "
        f"between two resource polls in seconds, a number >= 0 (default 15)"
    )


def test_params_given_as_a_params_dict_keep_their_types() -> None:
    from airflow.sdk import Param
    from airflow.sdk.definitions.param import ParamsDict

    pipeline = Pipeline("typed")
    pipeline.register(lambda: None, name="use")
    dag = to_airflow_dag(pipeline, params=ParamsDict({"batch": Param(5, type="integer", description="rows")}))
    batch = dag.params.get_param("batch")
    assert (batch.value, batch.schema, batch.description) == (5, {"type": "integer"}, "rows")
    assert list(dag.params) == ["task_engine", "batch"]
