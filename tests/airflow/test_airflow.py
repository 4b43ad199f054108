"""task_engine.airflow: how a pipeline's tasks, policies, priorities, pools and context map onto Airflow."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from airflow_harness import DATABASE, load_dag_bag, marked_not_run, run_dag_test

from task_engine.airflow import AirflowAdapterError, _attempt_number, _CoreRetryDelay, priority_weights, to_airflow_dag
from task_engine_core import Backoff, Pipeline, rate_limit, retries


def compile_in_folder(folder: Path, dag_id: str, source: str):
    """Write a DAG file (pipeline + to_airflow_dag) into `folder`, parse it, return the DAG."""
    (folder / f"{dag_id}.py").write_text("# Airflow DAG file\n" + textwrap.dedent(source))
    bag = load_dag_bag(folder)
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def test_each_task_becomes_one_python_operator_with_its_dependencies() -> None:
    pipeline = Pipeline("shape")

    @pipeline.register
    def first():
        pass

    @pipeline.register(depends_on=first)
    def second():
        pass

    @pipeline.register(depends_on=[first, "second"])
    def third():
        pass

    dag = to_airflow_dag(pipeline)

    assert dag.dag_id == "shape"
    assert {task.task_id: set(task.upstream_task_ids) for task in dag.tasks} == {
        "first": set(),
        "second": {"first"},
        "third": {"first", "second"},
    }
    assert {type(task).__name__ for task in dag.tasks} == {"PythonOperator"}
    assert {task.trigger_rule.value for task in dag.tasks} == {"none_failed"}


def test_dag_arguments_pass_through() -> None:
    pipeline = Pipeline("arguments")
    pipeline.register(lambda: None, name="only")

    dag = to_airflow_dag(
        pipeline, dag_id="renamed", schedule="@daily", tags=["nightly"], default_args={"owner": "data"}
    )

    assert (dag.dag_id, sorted(dag.tags), dag.task_dict["only"].owner) == ("renamed", ["nightly"], "data")
    assert dag.timetable.expression == "0 0 * * *"


def test_retries_and_backoff_map_to_airflow_retry_settings() -> None:
    pipeline = Pipeline("retrying")

    @pipeline.register
    @retries(4, backoff=Backoff.exponential(initial=2, multiplier=3, maximum=30))
    def flaky():
        pass

    @pipeline.register
    def once():
        pass

    tasks = to_airflow_dag(pipeline).task_dict

    flaky_task = tasks["flaky"]
    assert (flaky_task.retries, flaky_task.retry_delay, flaky_task.retry_exponential_backoff) == (
        3,
        timedelta(seconds=2),
        3,
    )
    assert flaky_task.max_retry_delay == timedelta(seconds=30)
    assert isinstance(flaky_task.retry_policy, _CoreRetryDelay)
    # One attempt: retries pinned to 0 so Airflow's default_task_retries cannot add tries.
    assert (tasks["once"].retries, tasks["once"].retry_policy) == (0, None)


def test_priority_follows_the_core_start_order_as_absolute_weights() -> None:
    pipeline = Pipeline("priorities")
    for name in ("a", "b", "c"):
        pipeline.register(lambda: None, name=name)
    pipeline.register(lambda: None, name="urgent", priority=10)

    dag = to_airflow_dag(pipeline)

    assert priority_weights(pipeline.validate()) == {"urgent": 4, "a": 3, "b": 2, "c": 1}
    assert {task.task_id: (task.priority_weight, str(task.weight_rule)) for task in dag.tasks} == {
        "urgent": (4, "absolute"),
        "a": (3, "absolute"),
        "b": (2, "absolute"),
        "c": (1, "absolute"),
    }


def test_rate_limit_keys_map_to_pools() -> None:
    pipeline = Pipeline("pooled")

    @pipeline.register
    @rate_limit(key="/jobs/runs/get")
    def calls_api():
        pass

    pipeline.register(lambda: None, name="local")

    tasks = to_airflow_dag(pipeline, pools={"/jobs/runs/get": "jobs_api"}).task_dict

    assert (tasks["calls_api"].pool, tasks["local"].pool) == ("jobs_api", "default_pool")


def test_a_task_cannot_be_put_in_two_pools() -> None:
    pipeline = Pipeline("two_pools")

    @pipeline.register
    @rate_limit(key="a")
    @rate_limit(key="b")
    def greedy():
        pass

    with pytest.raises(AirflowAdapterError) as caught:
        to_airflow_dag(pipeline, pools={"a": "pool_a", "b": "pool_b"})
    assert str(caught.value) == (
        "task 'greedy' uses rate-limit keys mapped to several Airflow pools (pool_a, pool_b); "
        "an Airflow task has one pool: map at most one of its keys in pools="
    )


def test_fail_fast_is_refused_with_the_reason() -> None:
    pipeline = Pipeline("fast")
    pipeline.register(lambda: None, name="only")

    with pytest.raises(AirflowAdapterError) as caught:
        to_airflow_dag(pipeline, fail_fast=True)
    assert str(caught.value) == (
        "to_airflow_dag(fail_fast=True) for pipeline 'fast': Airflow's fail_fast needs the all_success "
        "trigger rule, which would also skip the children of a skipped task; drop fail_fast (Task Engine "
        "DAGs are fail-fast already unless keep_going=True)"
    )


def test_a_task_name_airflow_rejects_names_the_task() -> None:
    pipeline = Pipeline("names")
    pipeline.register(lambda: None, name="has space")

    with pytest.raises(AirflowAdapterError) as caught:
        to_airflow_dag(pipeline)
    assert str(caught.value).startswith("cannot turn task 'has space' of pipeline 'names' into an Airflow task: ")


@pytest.mark.parametrize(
    ("try_number", "max_tries", "retries", "attempt"),
    [(1, 2, 2, 1), (3, 2, 2, 3), (4, 5, 2, 1), (6, 5, 2, 3), (1, None, 0, 1)],
)
def test_attempt_number_restarts_after_airflow_clears_a_task(try_number, max_tries, retries, attempt) -> None:
    assert _attempt_number(try_number, max_tries, retries) == attempt


def test_retry_handler_seconds_become_airflows_retry_delay(dags_folder: Path) -> None:
    dag = compile_in_folder(
        dags_folder,
        "retry_after",
        """
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Backoff, Pipeline, Task, retries

        pipeline = Pipeline("retry_after")

        @pipeline.register
        class RateLimited(Task):
            @retries(2, backoff=Backoff.constant(0))
            def perform_task(self):
                if self.attempt_state.attempt == 1:
                    raise RuntimeError("429 Too Many Requests")

            def retry_handler(self, error):
                return 0.25  # seconds, as a Retry-After header would say

        dag = to_airflow_dag(pipeline)
    """,
    )

    assert run_dag_test(dag) == {"RateLimited": ("success", 2)}

    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session

    with create_session() as session:
        first_try = session.query(TaskInstanceHistory).filter_by(dag_id="retry_after", try_number=1).one()
        # Without the adapter's retry policy Airflow would have used retry_delay (0 s) and no override.
        assert first_try.retry_delay_override == 0.25


def test_context_goes_through_the_core_chain_with_variable_params_and_conf(
    dags_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.variable import Variable

    Variable.set(
        "task_engine_context",
        json.dumps({"db": {"host": "variable-host", "port": 5432, "password": "from-variable"}, "mode": "variable"}),
    )
    monkeypatch.setenv("TASK_ENGINE__REGION", "eu")
    seen = dags_folder.parent / "seen-context.json"
    dag = compile_in_folder(
        dags_folder,
        "contextual",
        f"""
        import json
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline

        pipeline = Pipeline("contextual")

        @pipeline.register
        def show(context):
            with open({str(seen)!r}, "w") as out:
                json.dump({{"host": context["db"]["host"], "port": context["db"]["port"],
                           "password": [repr(context["db"]["password"]), context["db"]["password"].reveal()],
                           "mode": context["mode"], "day": context["day"], "region": context["region"],
                           "sources": list(context.sources)}}, out)

        dag = to_airflow_dag(pipeline, params={{"mode": "params", "day": "monday"}})
    """,
    )

    assert run_dag_test(dag, conf={"db": {"host": "conf-host"}, "day": "tuesday"}) == {"show": ("success", 1)}
    seen_context = json.loads(seen.read_text())
    sources = seen_context.pop("sources")
    assert seen_context == {
        "host": "conf-host",
        "port": 5432,
        "password": ["Secret('***')", "from-variable"],
        "mode": "params",
        "day": "tuesday",
        "region": "eu",
    }
    assert sources[0].startswith("yaml file ") and sources[0].endswith("task_engine.yml (not found)")
    assert sources[1:] == [
        "airflow Variable 'task_engine_context'",
        "environment TASK_ENGINE__*",
        "airflow params and dag_run.conf",
    ]


def test_the_airflow_hydrators_add_nothing_to_a_standalone_run() -> None:
    from task_engine_core._hydrators import hydrate

    context = hydrate(environ={})
    assert dict(context) == {}
    assert [source.split(" ")[0] for source in context.sources] == ["yaml", "airflow", "environment", "airflow"]


def test_a_variable_that_is_not_an_object_fails_the_task_with_the_fix(
    dags_folder: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.models.variable import Variable

    Variable.set("task_engine_context", json.dumps([1, 2]))
    dag = compile_in_folder(
        dags_folder,
        "bad_variable",
        """
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Backoff, Pipeline, retries

        pipeline = Pipeline("bad_variable")
        pipeline.register(retries(3, backoff=Backoff.constant(0))(lambda: None), name="only")
        dag = to_airflow_dag(pipeline)
    """,
    )

    # One try only: a context that cannot be built is not retried.
    assert run_dag_test(dag) == {"only": ("failed", 1)}
    output = "".join(capfd.readouterr())
    assert (
        "Task Engine: task 'only' did not start: Airflow Variable 'task_engine_context' must hold a JSON "
        "object of context keys, not list; fix it with: airflow variables set task_engine_context '{...}'"
    ) in output


def test_skip_task_inside_a_task_skips_it_and_children_still_run(dags_folder: Path) -> None:
    dag = compile_in_folder(
        dags_folder,
        "self_skip",
        """
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline, SkipTask

        pipeline = Pipeline("self_skip")

        @pipeline.register
        def nothing_to_do():
            raise SkipTask("no new files")

        @pipeline.register(depends_on=nothing_to_do)
        def after():
            pass

        dag = to_airflow_dag(pipeline)
    """,
    )

    assert run_dag_test(dag) == {"nothing_to_do": ("skipped", 1), "after": ("success", 1)}


def test_fail_fast_marks_unstarted_tasks_not_run_unlike_a_real_skip(
    dags_folder: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dag = compile_in_folder(
        dags_folder,
        "fail_fast",
        """
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline, SkipTask

        pipeline = Pipeline("fail_fast")

        @pipeline.register
        def nothing_to_do():
            raise SkipTask("no new files")

        @pipeline.register
        def broken():
            raise RuntimeError("broken on purpose")

        # After nothing_to_do, so it becomes ready only once broken has run: dag.test() starts
        # ready tasks in no fixed order, and Airflow's start order is not the core's.
        @pipeline.register(depends_on=nothing_to_do)
        def independent():
            print("independent ran")

        @pipeline.register(depends_on=independent)
        def after_independent():
            print("after independent ran")

        dag = to_airflow_dag(pipeline)
    """,
    )

    dag_run = dag.test()
    airflow_states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    output = "".join(capfd.readouterr())

    # Airflow shows all three skipped; only the two fail-fast kept from running carry the mark.
    assert airflow_states == {
        "nothing_to_do": "skipped",
        "broken": "failed",
        "independent": "skipped",
        "after_independent": "skipped",
    }
    # dag.test() starts ready roots in no fixed order: when broken ran first, nothing_to_do was kept
    # from running too (and says so); a real skip is never marked.
    kept_root = "Task Engine did not run 'nothing_to_do'" in output
    assert marked_not_run(DATABASE, "fail_fast", dag_run.run_id) == (
        {"independent", "after_independent"} | ({"nothing_to_do"} if kept_root else set())
    )
    for name in ("independent", "after_independent"):
        assert (
            f"Task Engine did not run {name!r}: task 'broken' of this dag run failed and the DAG is fail-fast "
            f"(to_airflow_dag(keep_going=True) runs independent branches on)"
        ) in output
    assert "independent ran" not in output


def test_airflow_without_the_standard_provider_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    from task_engine_core.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "airflow.providers.standard.operators.python", None)
    monkeypatch.delitem(sys.modules, "task_engine.airflow")

    with pytest.raises(MissingExtraError) as caught:
        importlib.import_module("task_engine.airflow")
    assert str(caught.value) == (
        "task_engine.airflow needs the 'apache-airflow-providers-standard' package, which is not installed; "
        "install it with: pip install 'task-engine[airflow]'"
    )


def test_rate_limits_come_from_the_tasks_context_on_a_worker(dags_folder: Path) -> None:
    # No executor runs on an Airflow worker: the limit of a key is read from the try's context.
    dag = compile_in_folder(
        dags_folder,
        "limited",
        """
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline, rate_limit, rate_limited

        pipeline = Pipeline("limited")

        @pipeline.register
        @rate_limit(key="airflow-test-api")
        def call_api():
            for _ in range(3):
                with rate_limited("airflow-test-api"):
                    pass

        dag = to_airflow_dag(pipeline)
    """,
    )

    assert run_dag_test(dag, conf={"rate_limits": {"airflow-test-api": 1000}}) == {"call_api": ("success", 1)}


def test_a_hanging_attempt_times_out_inside_the_try(dags_folder: Path) -> None:
    dag = compile_in_folder(
        dags_folder,
        "hanging",
        """
        import threading
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Backoff, Pipeline, retries, timeout

        pipeline = Pipeline("hanging")
        never = threading.Event()

        @pipeline.register
        @retries(2, backoff=Backoff.constant(0))
        @timeout(0.2)
        def hangs():
            never.wait(30)

        @pipeline.register(depends_on=hangs)
        def after():
            pass

        dag = to_airflow_dag(pipeline)
    """,
    )

    assert run_dag_test(dag) == {"hangs": ("failed", 2), "after": ("upstream_failed", 0)}


def test_statistics_are_read_only_from_an_explicit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from task_engine.airflow import expected_durations

    # The dag-processor's working directory is arbitrary: its default statistics file is never read
    # (nor created) while parsing.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASK_ENGINE_STATS", raising=False)
    assert expected_durations(None, "any") is None
    assert not (tmp_path / ".task_engine").exists()
    assert expected_durations(False, "any") is None
    monkeypatch.setenv("TASK_ENGINE_STATS", "off")
    assert expected_durations(None, "any") is None
    monkeypatch.setenv("TASK_ENGINE_STATS", str(tmp_path / "empty.sqlite3"))
    assert expected_durations(None, "any") is None


def test_priority_weights_honour_task_engine_stats_path_and_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_stats_location import record

    def weights() -> dict[str, int]:
        pipeline = Pipeline("located")
        for name in ("a", "b", "c"):
            pipeline.register(lambda: None, name=name)
        return {task.task_id: task.priority_weight for task in to_airflow_dag(pipeline).tasks}

    # The configured file orders c, b, a; a decoy in the working directory orders b, a, c.
    record(tmp_path / "configured.sqlite3", {"a": 1.0, "b": 2.0, "c": 5.0}, "located")
    record(tmp_path / ".task_engine" / "stats.sqlite3", {"a": 5.0, "b": 9.0, "c": 1.0}, "located")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASK_ENGINE_STATS", str(tmp_path / "configured.sqlite3"))
    assert weights() == {"c": 3, "b": 2, "a": 1}
    monkeypatch.setenv("TASK_ENGINE_STATS", "off")
    assert weights() == {"a": 3, "b": 2, "c": 1}  # registration order
    monkeypatch.delenv("TASK_ENGINE_STATS")
    assert weights() == {"a": 3, "b": 2, "c": 1}  # parsing never reads the working directory's file


def test_recorded_durations_become_priority_weights(tmp_path: Path) -> None:
    from task_engine_core import PipelineExecutor
    from task_engine_core._stats import StatsStore

    pipeline = Pipeline("weighted")
    # Registration order says short_first, long_branch; recorded durations say the opposite.
    for name, parents in (("short_first", ()), ("long_branch", ()), ("long_child", ("long_branch",))):
        pipeline.register(lambda: None, name=name, depends_on=list(parents))
    store = StatsStore(tmp_path / "stats.sqlite3")
    executor = PipelineExecutor(pipeline, stats=store, reporters=[])
    executor.run()
    from dataclasses import replace

    durations = {"short_first": 0.1, "long_branch": 5.0, "long_child": 5.0}
    result = executor.result
    result.tasks.update({name: replace(r, duration=durations[name]) for name, r in result.tasks.items()})
    store.record(replace(result, run_id=result.run_id + "-b"))

    weights = {task.task_id: task.priority_weight for task in to_airflow_dag(pipeline, stats=store.path).tasks}
    assert weights["long_branch"] > weights["short_first"]


def test_airflow_messages_mask_revealed_secrets(dags_folder: Path, capfd: pytest.CaptureFixture[str]) -> None:
    dag = compile_in_folder(
        dags_folder,
        "leaky",
        """
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Pipeline, skippable

        pipeline = Pipeline("leaky")

        @pipeline.register
        @skippable
        def leaky(context):
            raise PermissionError(f"rejected token {context['api']['token'].reveal()}")

        dag = to_airflow_dag(pipeline)
    """,
    )

    assert run_dag_test(dag, conf={"api": {"token": "s3cr3t-value"}}) == {"leaky": ("skipped", 1)}
    output = "".join(capfd.readouterr())
    assert "Task Engine skipped 'leaky': no retries configured: rejected token ***" in output
    assert "s3cr3t-value" not in output


def test_a_started_task_finishes_its_retries_after_a_neighbour_failed(dags_folder: Path) -> None:
    dag = compile_in_folder(
        dags_folder,
        "retries_after_failure",
        """
        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Backoff, Pipeline, Task, retries

        pipeline = Pipeline("retries_after_failure")

        @pipeline.register
        class Flaky(Task):
            @retries(3, backoff=Backoff.constant(0))
            def perform_task(self):
                if self.attempt_state.attempt < 3:
                    raise RuntimeError("not yet")

            def retry_handler(self, error):
                return True

        @pipeline.register
        def first():
            pass

        # Ready in dag.test()'s second round, with Flaky's second try: it has failed before
        # Flaky's third try, which must still run (Flaky started in round one).
        @pipeline.register(depends_on=first)
        def broken():
            raise RuntimeError("broken on purpose")

        dag = to_airflow_dag(pipeline)
    """,
    )

    dag_run = dag.test()
    outcomes = {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}

    assert outcomes == {"Flaky": ("success", 3), "first": ("success", 1), "broken": ("failed", 1)}
    assert marked_not_run(DATABASE, "retries_after_failure", dag_run.run_id) == set()


def test_airflow_runs_record_statistics_that_later_set_priority_weights(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    stats = tmp_path / "stats.sqlite3"
    monkeypatch.setenv("TASK_ENGINE_STATS", str(stats))
    source = """
        import time

        from task_engine.airflow import to_airflow_dag
        from task_engine_core import Backoff, Pipeline, retries

        pipeline = Pipeline("recorded")

        @pipeline.register
        def quick():
            pass

        @pipeline.register
        def slow():
            time.sleep(0.3)

        @pipeline.register
        @retries(2, backoff=Backoff.constant(0))
        def flaky(context):
            flaky.calls = getattr(flaky, "calls", 0) + 1
            if flaky.calls == 1:
                raise RuntimeError("first try fails")

        @pipeline.register(depends_on=["quick", "slow", "flaky"])
        def last():
            pass

        dag = to_airflow_dag(pipeline)
    """
    dag = compile_in_folder(dags_folder, "recorded", source)
    # Registration order first, before anything is recorded.
    assert {t.task_id: t.priority_weight for t in dag.tasks}["quick"] > {
        t.task_id: t.priority_weight for t in dag.tasks
    }["slow"]
    dag_run = dag.test()

    with sqlite3.connect(stats) as connection:
        runs = connection.execute("SELECT run_id, pipeline, tasks, outcome FROM runs").fetchall()
        tasks = dict(
            (task, (state, attempts, waited > 0))
            for task, state, attempts, waited in connection.execute(
                "SELECT task, state, attempts, waited FROM task_runs"
            )
        )
    assert runs == [(dag_run.run_id, "recorded", 4, "success")]
    assert tasks == {
        "quick": ("success", 1, False),
        "slow": ("success", 1, False),
        "flaky": ("success", 2, True),  # the retry wait Airflow did, measured in this process
        "last": ("success", 1, False),
    }
    # A later compile reads the recorded durations: the slow task now outweighs the quick one.
    weights = {t.task_id: t.priority_weight for t in compile_in_folder(dags_folder, "recorded", source).tasks}
    assert weights["slow"] > weights["quick"]


def test_importing_the_adapter_registers_no_hydrator_and_building_a_dag_does() -> None:
    import subprocess
    import sys

    code = (
        "from task_engine_core import Pipeline\n"
        "from task_engine_core._hydrators import registered_hydrators\n"
        "import task_engine.airflow as adapter\n"
        "print(sorted(dict(registered_hydrators())))\n"
        "pipeline = Pipeline('p')\n"
        "pipeline.register(lambda: None, name='t')\n"
        "adapter.to_airflow_dag(pipeline)\n"
        "print(sorted(dict(registered_hydrators())))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.strip().splitlines()
    assert before == "['environment', 'yaml file']"
    assert after == "['airflow params', 'airflow variable', 'environment', 'yaml file']"
