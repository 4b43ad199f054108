"""What a Prefect user expects to see and use: run logs, every task in the UI, typed parameters,
per-task options, result persistence, Variables and Secret blocks, serve() and deploy()."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.blocks.system import Secret as SecretBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.exceptions import ParameterTypeError
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, get_current_settings, temporary_settings
from prefect.variables import Variable

from task_engine.prefect import (
    NOT_RUN_STATE_NAME,
    PREFECT_SOURCES_HYDRATOR,
    TIMEOUT_GRACE_SECONDS,
    UPSTREAM_FAILED_STATE_NAME,
    PrefectContextError,
    _TaskOptions,
    last_result,
    to_prefect_flow,
)
from task_engine_core import Pipeline, PipelineExecutor, Task, TaskState
from task_engine_core._policies import timeout
from task_engine_core.backend import Secret, validated_pipeline
from task_engine_core.errors import InvalidArgumentError

ROOT = Path(__file__).resolve().parents[2]


def flow_run_logs(flow_run_id: UUID, expected: str, timeout: float = 30.0) -> list[Any]:
    """The flow run's logs (flow and task run loggers) as Prefect's API stores them, once `expected` is in one."""

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            if any(expected in log.message for log in logs) or time.monotonic() > deadline:
                return logs
            time.sleep(0.2)


# -- logs ------------------------------------------------------------------------------------------


def test_engine_lines_and_task_prints_go_to_prefect_run_logs_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = Pipeline("logs")

    @pipeline.register
    class Extract(Task):
        def perform_task(self) -> None:
            print(f"calling the API with token {self.context.get_path('api.token').reveal()}")

    flow = to_prefect_flow(pipeline, context={"api": {"token": Secret("tok-9f8e7d6c5b")}}, reporters=None)
    state = flow(return_state=True)
    assert state.is_completed()
    logs = flow_run_logs(state.state_details.flow_run_id, "calling the API")
    by_message = {log.message: log for log in logs}
    # The engine's line on the flow run's logger, the print on the task run's.
    assert by_message["Executing Extract"].task_run_id is None
    printed = by_message["calling the API with token ***"]
    assert printed.task_run_id is not None
    assert not any("tok-9f8e7d6c5b" in log.message for log in logs)
    out = capsys.readouterr().out
    assert "tok-9f8e7d6c5b" not in out
    assert (
        "Executing Extract" not in out
    )  # not on plain standard output any more (Prefect's console handler writes stderr)


def test_prints_of_a_task_under_timeout_reach_its_task_run_log(capsys: pytest.CaptureFixture[str]) -> None:
    # @timeout runs the attempt in a thread of its own; Prefect finds the run logger in the context.
    pipeline = Pipeline("timed-logs")

    @pipeline.register
    @timeout(60)
    def timed() -> None:
        print("printed inside the timeout thread")

    state = to_prefect_flow(pipeline)(return_state=True)
    assert state.is_completed()
    logs = flow_run_logs(state.state_details.flow_run_id, "printed inside the timeout thread")
    printed = [log for log in logs if log.message == "printed inside the timeout thread"]
    assert len(printed) == 1 and printed[0].task_run_id is not None, [log.message for log in logs]
    assert "printed inside the timeout thread" not in capsys.readouterr().out


def test_prefect_logs_false_keeps_the_console(capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = Pipeline("console-logs")

    @pipeline.register
    def hello() -> None:
        print("hello from the task")

    state = to_prefect_flow(pipeline, prefect_logs=False)(return_state=True)
    assert state.is_completed()
    out = capsys.readouterr().out
    assert "Executing hello" in out and "hello from the task" in out
    logs = flow_run_logs(state.state_details.flow_run_id, "Finished in state")
    assert not any(log.message in ("Executing hello", "hello from the task") for log in logs)


# -- every task has a task run -----------------------------------------------------------------------


def test_tasks_that_never_started_get_a_final_task_run_saying_why(task_runs: Any) -> None:
    pipeline = Pipeline("never-ran")

    @pipeline.register
    def extract() -> None:
        raise RuntimeError("source down")

    @pipeline.register(depends_on=extract)
    def load() -> None:
        pass

    @pipeline.register(depends_on=load)
    def report() -> None:
        pass

    @pipeline.register
    def unrelated() -> None:
        pass

    flow = to_prefect_flow(pipeline, max_workers=1, reporters=[])
    state = flow(return_state=True)
    assert state.is_failed()
    result = last_result(flow)
    assert result is not None and result.tasks["unrelated"].state is TaskState.NOT_RUN
    runs = task_runs(state.state_details.flow_run_id, 4)
    assert {name: (run.state.type.value, run.state.name) for name, run in runs.items()} == {
        "extract": ("FAILED", "Failed"),
        "load": ("CANCELLED", UPSTREAM_FAILED_STATE_NAME),
        "report": ("CANCELLED", UPSTREAM_FAILED_STATE_NAME),
        "unrelated": ("CANCELLED", NOT_RUN_STATE_NAME),
    }
    assert runs["load"].state.message == "Not run: upstream 'extract' failed"
    assert runs["report"].state.message == "Not run: upstream 'load' did not run"
    assert runs["unrelated"].state.message == (
        "Not run: fail-fast: the run stopped after 'extract' failed (keep_going=False)"
    )
    # The edges are recorded, so the UI's graph draws load after extract.
    assert [i.id for i in runs["load"].task_inputs["wait_for"]] == [runs["extract"].id]
    assert [i.id for i in runs["report"].task_inputs["wait_for"]] == [runs["load"].id]


# -- typed parameters --------------------------------------------------------------------------------


def test_flow_parameters_are_typed_with_defaults() -> None:
    pipeline = Pipeline("typed")
    seen: dict[str, Any] = {}

    @pipeline.register
    class Read(Task):
        def perform_task(self) -> None:
            seen.update(env=self.context["env"], batch=self.context.get_path("load.batch_size"))

    flow = to_prefect_flow(
        pipeline,
        context={"env": "from-context", "load": {"batch_size": 1}},
        context_parameters={"env": None, "load.batch_size": 100},
        reporters=[],
    )
    properties = flow.parameters.properties
    assert list(properties) == [
        "env",
        "load_batch_size",
        "only",
        "from_tasks",
        "to",
        "tags",
        "with_upstream",
        "resume",
        "params",
    ]
    assert properties["load_batch_size"]["default"] == 100
    assert {"type": "integer"} in properties["load_batch_size"]["anyOf"]
    assert properties["with_upstream"] == {"default": False, "position": 6, "title": "with_upstream", "type": "boolean"}
    assert {"items": {"type": "string"}, "type": "array"} in properties["only"]["anyOf"]
    assert flow.parameters.required == []

    flow(load_batch_size="7")  # Prefect validates and casts, as for a deployment's parameters
    assert seen == {"env": "from-context", "batch": 7}  # None keeps the context's value
    flow(env="prod", params={"load": {"batch_size": 3}})
    assert seen == {"env": "prod", "batch": 100}  # a declared key wins over `params`
    with pytest.raises(ParameterTypeError, match="load_batch_size"):
        flow(load_batch_size="many")


def test_declared_context_parameters_are_checked() -> None:
    pipeline = Pipeline("typed-bad")

    @pipeline.register
    def noop() -> None:
        pass

    with pytest.raises(InvalidArgumentError) as error:
        to_prefect_flow(pipeline, context_parameters={"api-url": "x"})
    assert str(error.value) == (
        "context_parameters key 'api-url': give a context key of identifiers joined by dots, e.g. 'api.url'"
    )
    with pytest.raises(InvalidArgumentError) as error:
        to_prefect_flow(pipeline, context_parameters={"api.url": "x", "api_url": "y"})
    assert str(error.value) == (
        "context_parameters key 'api_url' would be the flow parameter 'api_url', which is already context key "
        "'api.url'; rename the context key"
    )
    with pytest.raises(InvalidArgumentError, match="'only', which is already a flow parameter of the adapter"):
        to_prefect_flow(pipeline, context_parameters={"only": "x"})


def test_selection_parameters_run_part_of_the_pipeline(two_task_chain: Callable[[str], Pipeline]) -> None:
    pipeline = two_task_chain("select-params")

    flow = to_prefect_flow(pipeline, reporters=[])
    if "select" not in inspect.signature(PipelineExecutor).parameters:
        # Until the core has selection (issue 16), asking for it says so instead of running everything.
        with pytest.raises(InvalidArgumentError) as error:
            flow(only=["second"])
        assert str(error.value) == (
            "flow parameter(s) 'select' need a Task Engine whose PipelineExecutor accepts select=; upgrade "
            "task-engine, or leave them at their defaults"
        )
        return
    result = flow(only=["second"])
    assert result.tasks["first"].state is TaskState.NOT_RUN
    assert result.tasks["second"].state is TaskState.SUCCESS


# -- per-task options --------------------------------------------------------------------------------


def test_task_runs_are_named_after_the_tasks_and_timeouts_become_timeout_seconds(task_runs: Any) -> None:
    pipeline = Pipeline("options")

    @pipeline.register(name="Load {weekly}")
    class Load(Task):
        @timeout(30)
        def perform_task(self) -> None:
            pass

    @pipeline.register
    def untimed() -> None:
        pass

    state = to_prefect_flow(pipeline, reporters=[])(return_state=True)
    runs = task_runs(state.state_details.flow_run_id, 2)
    assert sorted(run.name for run in runs.values()) == ["Load {weekly}", "untimed"]
    options = _TaskOptions(validated_pipeline(pipeline), persist_outputs=False)
    assert options.for_task("Load {weekly}")["timeout_seconds"] == 30 + TIMEOUT_GRACE_SECONDS
    assert "timeout_seconds" not in options.for_task("untimed")


def test_register_tags_become_task_run_tags(task_runs: Any) -> None:
    pipeline = Pipeline("tags")

    @pipeline.register(tags=["nightly", "warehouse"])
    def tagged() -> None:
        pass

    state = to_prefect_flow(pipeline, reporters=[])(return_state=True)
    # Prefect keeps a task run's tags as a set: their order is not kept.
    assert sorted(task_runs(state.state_details.flow_run_id, 1)["tagged"].tags) == ["nightly", "warehouse"]


def test_persist_outputs_uses_prefect_result_persistence(tmp_path: Path) -> None:
    pipeline = Pipeline("persisted")

    @pipeline.register
    def produce() -> int:
        return 42

    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: tmp_path / "results"}):
        plain = to_prefect_flow(pipeline, reporters=[])(return_state=True)
        assert plain.is_completed() and not (tmp_path / "results").exists()
        flow = to_prefect_flow(pipeline, reporters=[], persist_outputs=True)
        state = flow(return_state=True)
        assert state.is_completed()
    with get_client(sync_client=True) as client:
        (run,) = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
        stored = list((tmp_path / "results").iterdir())
        assert len(stored) == 1
        # The API's state points at the stored record; reading it back gives the task's output.
        output = getattr(last_result(flow).tasks["produce"], "output", None)  # outputs arrive with issue 17
        assert run.state.result() == output


# -- Prefect Variables and Secret blocks -------------------------------------------------------------


def test_variables_and_secret_blocks_hydrate_the_context_masked() -> None:
    Variable.set("warehouse-url", "postgresql://127.0.0.1/dw", overwrite=True)
    SecretBlock(value="pw-0a1b2c3d4e").save("warehouse-password", overwrite=True)
    pipeline = Pipeline("prefect-sources")
    seen: dict[str, Any] = {}

    @pipeline.register
    class Connect(Task):
        def perform_task(self) -> None:
            password = self.context.get_path("warehouse.password")
            seen.update(url=self.context.get_path("warehouse.url"), password=password, sources=self.context.sources)
            print(f"connecting with {password.reveal()}")

    flow = to_prefect_flow(
        pipeline,
        prefect_variables={"warehouse.url": "warehouse-url"},
        prefect_secrets={"warehouse.password": "warehouse-password"},
    )
    state = flow(return_state=True)
    assert state.is_completed()
    assert seen["url"] == "postgresql://127.0.0.1/dw"
    assert isinstance(seen["password"], Secret) and seen["password"].reveal() == "pw-0a1b2c3d4e"
    assert "Prefect (Variable 'warehouse-url', Secret 'warehouse-password')" in seen["sources"]
    logs = flow_run_logs(state.state_details.flow_run_id, "connecting with")
    assert "connecting with ***" in [log.message for log in logs]
    assert not any("pw-0a1b2c3d4e" in log.message for log in logs)


def test_a_missing_variable_names_the_variable_the_key_and_the_fix() -> None:
    pipeline = Pipeline("missing-variable")

    @pipeline.register
    def noop() -> None:
        pass

    flow = to_prefect_flow(pipeline, prefect_variables={"api.url": "no-such-variable"}, reporters=[])
    with pytest.raises(PrefectContextError) as error:
        flow()
    assert str(error.value) == (
        "Prefect Variable 'no-such-variable' (for context key 'api.url') does not exist; create it, "
        "e.g.: prefect variable set no-such-variable VALUE"
    )
    flow = to_prefect_flow(pipeline, prefect_secrets={"api.token": "no-such-secret"}, reporters=[])
    with pytest.raises(
        PrefectContextError, match=r"^Prefect Secret block 'no-such-secret' \(for context key 'api.token'\)"
    ):
        flow()


def test_hydrators_are_registered_when_a_flow_is_built_not_at_import() -> None:
    code = textwrap.dedent(
        """
        from task_engine_core._hydrators import registered_hydrators
        import task_engine.prefect as p
        from task_engine_core import Pipeline
        before = sorted(name for name, _ in registered_hydrators() if name.startswith("prefect"))
        pipeline = Pipeline("x")
        pipeline.register(lambda: None, name="noop")
        p.to_prefect_flow(pipeline)
        plain = sorted(name for name, _ in registered_hydrators() if name.startswith("prefect"))
        p.to_prefect_flow(pipeline, prefect_variables={"api.url": "api-url"})
        after = sorted(name for name, _ in registered_hydrators() if name.startswith("prefect"))
        print(before, plain, after)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"[] ['prefect flow parameters'] ['prefect flow parameters', {PREFECT_SOURCES_HYDRATOR!r}]"
    )


# -- serve() and deploy() ----------------------------------------------------------------------------


def test_an_unbound_flow_cannot_be_deployed_and_says_how_to_fix_it() -> None:
    pipeline = Pipeline("unbound")

    @pipeline.register
    def noop() -> None:
        pass

    with pytest.raises(InvalidArgumentError) as error:
        to_prefect_flow(pipeline).to_deployment(name="x")
    assert str(error.value) == (
        f"flow 'unbound' is not bound to a module-level name of {__name__!r}, so Prefect cannot import it in a "
        f"flow run's process; bind it at module level (e.g. `unbound_flow = to_prefect_flow(...)`) and serve "
        f"or deploy that"
    )


def test_flow_serve_runs_a_deployment_against_the_server(tmp_path: Path, task_runs: Any) -> None:
    script = tmp_path / "serve_jobs.py"
    script.write_text(
        textwrap.dedent(
            f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from task_engine.prefect import to_prefect_flow
        from task_engine_core._loader import load_pipeline

        jobs_flow = to_prefect_flow(load_pipeline("examples.jobs"), name="jobs")

        if __name__ == "__main__":
            jobs_flow.serve(name="served", limit=1)
        """
        )
    )
    env = dict(os.environ, PREFECT_API_URL=get_current_settings().api.url or "", PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deployment = wait_for_deployment("jobs/served", server)
        assert deployment.entrypoint == "serve_jobs.py:jobs_flow"
        assert {"only", "resume", "params"} <= set(deployment.parameter_openapi_schema["properties"])
        from prefect.deployments import run_deployment

        flow_run = run_deployment("jobs/served", timeout=120, parameters={"params": {"env": "served"}})
        assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
        runs = task_runs(flow_run.id, 4)
        assert sorted(runs) == ["Job1Task1", "Job1Task2", "Job2Task1", "Job2Task2"]
        assert all(run.state.is_completed() for run in runs.values())
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_for_deployment(name: str, server: subprocess.Popen[str], timeout: float = 120.0) -> Any:
    """The deployment `name` once the serving process has created it."""
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                if server.poll() is not None:
                    raise AssertionError(f"serve() exited early:\n{server.stdout.read() if server.stdout else ''}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"serve() did not create {name!r} in {timeout} s") from None
                time.sleep(0.5)
