"""task_engine.prefect: a pipeline compiled to a Prefect flow keeps the core's semantics."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.task_runners import ThreadPoolTaskRunner

from task_engine.prefect import (
    FLOW_PARAMETERS_HYDRATOR,
    FLOW_PARAMETERS_ORDER,
    SKIPPED_STATE_NAME,
    PrefectRateLimitError,
    last_result,
    to_prefect_flow,
)
from task_engine_core import (
    Backoff,
    Pipeline,
    PipelineExecutor,
    RateLimit,
    SkipTask,
    Task,
    TaskContext,
    TaskState,
    rate_limit,
    retries,
    set_rate_limit,
    skippable,
    wait_for_resource,
)
from task_engine_core._hydrators import hydrate, registered_hydrators
from task_engine_core._stats import StatsStore
from task_engine_core.errors import ContextKeyError, EmptyPipelineError, InvalidArgumentError, ResourceTimeoutError
from task_engine_core.events import (
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskStarted,
)


class Recorder:
    """A listener keeping every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def states(flow: Flow[..., Any]) -> dict[str, tuple[TaskState, int]]:
    result = last_result(flow)
    assert result is not None
    return {name: (r.state, r.attempts) for name, r in result.tasks.items()}


def test_the_flow_is_named_after_the_pipeline_and_runs_on_a_thread_pool() -> None:
    pipeline = Pipeline("nightly-load")
    pipeline.register(lambda: None, name="only")
    flow = to_prefect_flow(pipeline, max_workers=3)
    assert flow.name == "nightly-load"
    assert isinstance(flow.task_runner, ThreadPoolTaskRunner)
    assert flow.task_runner._max_workers == 3
    assert to_prefect_flow(pipeline, name="custom").name == "custom"


def test_the_default_registry_is_used_when_no_pipeline_is_given() -> None:
    pipeline = Pipeline("collected")
    with pipeline.collecting():
        from task_engine_core import register

        @register
        def hello() -> None:
            pass

        flow = to_prefect_flow()
    assert flow.name == "collected"
    assert flow(return_state=True).is_completed()
    assert states(flow) == {"hello": (TaskState.SUCCESS, 1)}


def test_bad_max_workers_is_a_definition_error() -> None:
    pipeline = Pipeline("p")
    pipeline.register(lambda: None, name="only")
    with pytest.raises(InvalidArgumentError) as caught:
        to_prefect_flow(pipeline, max_workers=0)
    assert str(caught.value) == ("to_prefect_flow(max_workers=0): the number of worker threads must be an integer >= 1")


def test_definition_errors_surface_when_the_flow_is_built() -> None:
    with pytest.raises(EmptyPipelineError):
        to_prefect_flow(Pipeline("empty"))


def test_a_skipped_task_is_a_completed_state_named_skipped_and_dependents_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = Pipeline("skips")

    @pipeline.register
    class Flaky(Task):
        @skippable
        @retries(2, backoff=Backoff.constant(0))
        def perform_task(self) -> None:
            raise RuntimeError("service down")

        def retry_handler(self, error: Exception) -> bool:
            return True

    @pipeline.register(depends_on=Flaky)
    def after() -> None:
        print("after ran")

    flow = to_prefect_flow(pipeline, max_workers=2, prefect_logs=False)  # the console, as standalone
    state = flow(return_state=True)
    assert (state.type.value, state.name) == ("COMPLETED", "Completed")
    assert states(flow) == {"Flaky": (TaskState.SKIPPED, 2), "after": (TaskState.SUCCESS, 1)}
    out = capsys.readouterr().out
    assert "Skipping task due to error: service down" in out
    assert "after ran" in out


def test_an_explicit_skip_is_a_skipped_state_too(task_runs: Any) -> None:
    pipeline = Pipeline("explicit-skip")

    @pipeline.register
    def nothing_to_do() -> None:
        raise SkipTask("no new files")

    flow = to_prefect_flow(pipeline, reporters=[])
    state = flow(return_state=True)
    assert state.is_completed()
    run = task_runs(state.state_details.flow_run_id, 1)["nothing_to_do"]
    assert (run.state.type.value, run.state.name) == ("COMPLETED", SKIPPED_STATE_NAME)
    assert run.state.message == "Skipping task due to error: no new files"


def test_a_failure_fails_the_flow_with_the_tasks_own_exception() -> None:
    pipeline = Pipeline("fails")

    @pipeline.register
    class Auth(Task):
        def perform_task(self) -> None:
            raise PermissionError("Error 401")

    @pipeline.register(depends_on=Auth)
    def downstream() -> None:
        raise AssertionError("must not start")

    flow = to_prefect_flow(pipeline, reporters=[])
    with pytest.raises(PermissionError) as caught:
        flow()
    assert str(caught.value) == "Error 401"
    assert caught.value.__notes__ == ["Task Engine: task 'Auth' failed on attempt 1 (no retries configured)"]
    assert states(flow) == {"Auth": (TaskState.FAILED, 1), "downstream": (TaskState.UPSTREAM_FAILED, 0)}
    state = flow(return_state=True)
    assert (state.type.value, state.message) == (
        "FAILED",
        "Flow run encountered an exception: PermissionError: Error 401",
    )


def test_keep_going_runs_branches_that_do_not_depend_on_the_failure() -> None:
    pipeline = Pipeline("keep-going")

    @pipeline.register
    def broken() -> None:
        raise RuntimeError("broken")

    @pipeline.register(depends_on=broken)
    def needs_broken() -> None:
        pass

    @pipeline.register
    def independent() -> None:
        pass

    flow = to_prefect_flow(pipeline, max_workers=1, keep_going=True, reporters=[])
    with pytest.raises(RuntimeError, match="^broken\n"):
        flow()
    assert states(flow) == {
        "broken": (TaskState.FAILED, 1),
        "needs_broken": (TaskState.UPSTREAM_FAILED, 0),
        "independent": (TaskState.SUCCESS, 1),
    }


def test_prefect_waits_the_delay_the_retry_handler_asked_for(task_runs: Any) -> None:
    pipeline = Pipeline("retry-after")

    @pipeline.register
    class RateLimited(Task):
        calls = 0

        @retries(2, backoff=Backoff.constant(30))
        def perform_task(self) -> None:
            type(self).calls += 1
            if type(self).calls == 1:
                raise RuntimeError("429 Too Many Requests")

        def retry_handler(self, error: Exception) -> float:
            return 0.25  # e.g. a Retry-After header; wins over the 30 s backoff

    recorder = Recorder()
    flow = to_prefect_flow(pipeline, listeners=[recorder], reporters=[])
    state = flow(return_state=True)
    assert state.is_completed()
    assert states(flow) == {"RateLimited": (TaskState.SUCCESS, 2)}
    assert [(e.next_attempt, e.delay) for e in recorder.of(RetryScheduled)] == [(2, 0.25)]
    assert last_result(flow).tasks["RateLimited"].waits["retry"] >= 0.25

    run = task_runs(state.state_details.flow_run_id, 1)["RateLimited"]
    with get_client(sync_client=True) as client:
        history = client.read_task_run_states(run.id)
    awaiting = [s for s in history if s.name == "AwaitingRetry"]
    assert len(awaiting) == 1
    scheduled_in = (awaiting[0].state_details.scheduled_time - awaiting[0].timestamp).total_seconds()
    assert scheduled_in == pytest.approx(0.25, abs=0.05)


def test_retries_map_to_prefect_retries_with_the_backoff_schedule(task_runs: Any) -> None:
    pipeline = Pipeline("backoff")

    @pipeline.register
    class Unlucky(Task):
        @retries(3, backoff=Backoff.exponential(initial=0.1, multiplier=2))
        def perform_task(self) -> None:
            raise RuntimeError("still down")

        def retry_handler(self, error: Exception) -> bool:
            return True

    flow = to_prefect_flow(pipeline, reporters=[])
    with pytest.raises(RuntimeError, match="^still down\n"):
        flow()
    assert states(flow) == {"Unlucky": (TaskState.FAILED, 3)}
    flow_run_id = last_flow_run_id(flow)
    run = task_runs(flow_run_id, 1)["Unlucky"]
    assert run.run_count == 3
    assert (run.state.type.value, run.state.name) == ("FAILED", "Failed")
    with get_client(sync_client=True) as client:
        history = client.read_task_run_states(run.id)
    delays = [
        round((s.state_details.scheduled_time - s.timestamp).total_seconds(), 1)
        for s in history
        if s.name == "AwaitingRetry"
    ]
    assert delays == [0.1, 0.2]


def last_flow_run_id(flow: Flow[..., Any]) -> Any:
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName
        from prefect.client.schemas.sorting import FlowRunSort

        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow.name])), sort=FlowRunSort.START_TIME_DESC, limit=1
        )
    return runs[0].id


def test_the_context_reaches_every_task_with_flow_parameters_on_top() -> None:
    pipeline = Pipeline("context")
    seen: dict[str, Any] = {}

    @pipeline.register
    class Reads(Task):
        def perform_task(self) -> None:
            seen["url"] = self.context["api"]["url"]
            seen["timeout"] = self.context.get_path("api.timeout")
            seen["sources"] = self.context.sources
            seen["context"] = self.context

    @pipeline.register(depends_on=Reads)
    def reads_too(context: TaskContext) -> None:
        seen["env"] = context["env"]

    flow = to_prefect_flow(
        pipeline, context={"api": {"url": "http://127.0.0.1:1", "timeout": 5}, "env": "dev"}, reporters=[]
    )
    flow(params={"api": {"url": "http://127.0.0.1:2"}})
    assert (seen["url"], seen["timeout"], seen["env"]) == ("http://127.0.0.1:2", 5, "dev")
    assert seen["sources"][0] == "executor argument"
    assert seen["sources"][1].startswith("Prefect flow run parameters")
    with pytest.raises(TypeError):
        seen["context"]["env"] = "prod"  # type: ignore[index]

    flow()
    assert seen["url"] == "http://127.0.0.1:1"


def test_the_hydrator_chain_runs_at_flow_start_with_flow_parameters_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "task_engine.yml").write_text("api:\n  url: from-file\n  timeout: 5\nenv: from-file\nteam: data\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASK_ENGINE__ENV", "from-environment")
    monkeypatch.setenv("TASK_ENGINE__API__URL", "from-environment")
    pipeline = Pipeline("hydrated")
    seen: list[TaskContext] = []
    pipeline.register(lambda context: seen.append(context), name="reads")
    flow = to_prefect_flow(pipeline, reporters=[])

    flow(params={"api": {"url": "from-flow-run"}})
    context = seen[-1]
    assert context.to_dict() == {
        "api": {"url": "from-flow-run", "timeout": 5},
        "env": "from-environment",
        "team": "data",
    }
    # (the Prefect Variables hydrator sits between the two once a flow that uses it was built)
    assert context.sources[0] == f"yaml file {tmp_path / 'task_engine.yml'}"
    assert context.sources[-2] == "environment TASK_ENGINE__*"
    assert context.sources[-1].startswith("Prefect flow run parameters (")
    assert (FLOW_PARAMETERS_HYDRATOR, FLOW_PARAMETERS_ORDER) in registered_hydrators()

    flow()  # no parameters: the chain alone
    assert seen[-1]["api"]["url"] == "from-environment"
    assert seen[-1].sources[-1] == FLOW_PARAMETERS_HYDRATOR  # consulted, nothing to add

    with pytest.raises(ContextKeyError) as caught:
        seen[-1]["missing"]
    assert "missing" in str(caught.value) and "environment TASK_ENGINE__*" in str(caught.value)


def test_the_flow_parameters_hydrator_adds_nothing_outside_a_flow_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert hydrate().to_dict() == {}


def test_flow_parameters_are_validated_by_prefect() -> None:
    pipeline = Pipeline("validated")
    pipeline.register(lambda: None, name="only")
    flow = to_prefect_flow(pipeline, reporters=[])
    state = flow(params="not a mapping", return_state=True)  # type: ignore[arg-type]
    assert state.is_failed()
    assert "Validation of flow parameters failed" in state.message


def test_no_more_than_max_workers_tasks_run_at_once() -> None:
    pipeline = Pipeline("wide")
    lock = threading.Lock()
    running = {"now": 0, "most": 0}
    pair = threading.Barrier(2, timeout=30)

    def make(index: int) -> None:
        def work() -> None:
            with lock:
                running["now"] += 1
                running["most"] = max(running["most"], running["now"])
            pair.wait()  # two tasks must be inside together
            with lock:
                running["now"] -= 1

        pipeline.register(work, name=f"t{index}")

    for index in range(6):
        make(index)
    flow = to_prefect_flow(pipeline, max_workers=2, reporters=[])
    assert flow(return_state=True).is_completed()
    assert running["most"] == 2


def test_ready_tasks_start_by_priority_then_registration_order() -> None:
    pipeline = Pipeline("priority")
    for name, priority in [("low", None), ("high", 10), ("middle", 5), ("also_low", None)]:
        pipeline.register(lambda: None, name=name, priority=priority)
    recorder = Recorder()
    flow = to_prefect_flow(pipeline, max_workers=1, listeners=[recorder], reporters=[])
    flow()
    assert [e.task for e in recorder.of(TaskStarted)] == ["high", "middle", "low", "also_low"]


def test_listeners_see_the_run_from_start_to_finish(two_task_chain: Callable[[str], Pipeline]) -> None:
    pipeline = two_task_chain("events")

    recorder = Recorder()
    flow = to_prefect_flow(pipeline, listeners=[recorder], reporters=[])
    result = flow()
    kinds = [type(e) for e in recorder.events if isinstance(e, (RunStarted, TaskStarted, TaskFinished, RunFinished))]
    assert kinds == [RunStarted, TaskStarted, TaskFinished, TaskStarted, TaskFinished, RunFinished]
    assert recorder.of(RunFinished)[0].result is result
    assert {e.run_id for e in recorder.events} == {result.run_id}
    assert all(r.worker != threading.current_thread().name for r in result.tasks.values())


def test_importing_the_core_does_not_import_prefect_even_where_it_is_installed() -> None:
    code = "import sys, task_engine_core; print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def rate_limited_pipeline(name: str, key: str, tasks: int) -> Pipeline:
    set_rate_limit(RateLimit(key, rate=1000))  # the in-process bucket: generous, never the bottleneck
    pipeline = Pipeline(name)
    for index in range(tasks):
        pipeline.register(rate_limit(key=key)(lambda: None), name=f"call{index}")
    return pipeline


def test_a_rate_limit_key_mapped_to_a_prefect_limit_takes_its_slots() -> None:
    with get_client(sync_client=True) as client:
        # A slow decay, so the slots taken are still visible when the flow has finished.
        client.upsert_global_concurrency_limit_by_name("te-items", limit=10, slot_decay_per_second=0.01)
    pipeline = rate_limited_pipeline("prefect-limited", "/api/items", tasks=3)
    flow = to_prefect_flow(pipeline, prefect_rate_limits={"/api/items": "te-items"}, reporters=[])
    result = flow()
    assert all("rate_limit" in r.waits for r in result.tasks.values())
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("te-items").active_slots == 3


def test_a_missing_prefect_limit_stops_the_flow_before_any_task() -> None:
    pipeline = rate_limited_pipeline("prefect-missing-limit", "/api/missing", tasks=1)
    flow = to_prefect_flow(pipeline, prefect_rate_limits={"/api/missing": "te-missing"}, reporters=[])
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name("te-missing", limit=5, slot_decay_per_second=5)
    flow()
    assert last_result(flow) is not None
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name("te-missing")
    with pytest.raises(PrefectRateLimitError) as caught:
        flow()
    assert str(caught.value) == (
        "Prefect global concurrency limit 'te-missing' (for rate-limit key '/api/missing') does not exist; "
        "create it, e.g.: prefect gcl create te-missing --limit 30 --slot-decay-per-second 30"
    )
    assert last_result(flow) is None


def test_a_prefect_limit_without_decay_is_refused() -> None:
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name("te-concurrency-only", limit=4)
        client.update_global_concurrency_limit(
            "te-concurrency-only", GlobalConcurrencyLimitUpdate(slot_decay_per_second=0)
        )
    pipeline = rate_limited_pipeline("prefect-no-decay", "/api/no-decay", tasks=1)
    flow = to_prefect_flow(pipeline, prefect_rate_limits={"/api/no-decay": "te-concurrency-only"}, reporters=[])
    with pytest.raises(PrefectRateLimitError) as caught:
        flow()
    assert str(caught.value) == (
        "Prefect global concurrency limit 'te-concurrency-only' (for rate-limit key '/api/no-decay') has no "
        "slot decay, so it limits concurrency, not a rate; set one: prefect gcl update te-concurrency-only "
        "--slot-decay-per-second 4"
    )


def test_mapping_a_key_no_task_uses_is_a_definition_error() -> None:
    pipeline = rate_limited_pipeline("prefect-unused-key", "/api/used", tasks=1)
    with pytest.raises(InvalidArgumentError) as caught:
        to_prefect_flow(pipeline, prefect_rate_limits={"/api/unused": "te-unused"})
    assert str(caught.value) == (
        "prefect_rate_limits maps '/api/unused', which no task of pipeline 'prefect-unused-key' uses with "
        "@rate_limit (keys in use: '/api/used')"
    )
    with pytest.raises(InvalidArgumentError) as caught:
        to_prefect_flow(pipeline, prefect_rate_limits={"/api/used": "has/slash"})
    assert str(caught.value) == (
        "prefect_rate_limits['/api/used'] = 'has/slash': a Prefect global concurrency limit name is a "
        "non-empty string without '/' or '%', e.g. 'databricks-runs-get'"
    )


def test_a_resource_wait_timeout_is_not_reset_by_prefect_retries() -> None:
    pipeline = Pipeline("resource")
    polls: dict[int, int] = {}

    @pipeline.register
    @wait_for_resource(timeout=0.3, interval=0.05)
    class NeedsCluster(Task):
        def resource_ready(self) -> bool:
            attempt = self.attempt_state.attempt
            polls[attempt] = polls.get(attempt, 0) + 1
            return False

        @retries(3, backoff=Backoff.constant(0))
        def perform_task(self) -> None:
            raise AssertionError("the resource is never ready")

        def retry_handler(self, error: Exception) -> bool:
            return True

    flow = to_prefect_flow(pipeline, reporters=[])
    with pytest.raises(ResourceTimeoutError):
        flow()
    assert states(flow) == {"NeedsCluster": (TaskState.FAILED, 3)}
    # The deadline counts from the first poll of the first Prefect try: later tries poll once.
    assert polls[1] > 1
    assert (polls[2], polls[3]) == (1, 1)


def test_with_recorded_statistics_the_longest_critical_path_is_submitted_first(tmp_path: Path) -> None:
    pipeline = Pipeline("critical-path")
    pipeline.register(lambda: None, name="short")
    pipeline.register(lambda: time.sleep(0.5), name="slow_root")
    pipeline.register(lambda: None, name="after_slow", depends_on="slow_root")
    stats = str(tmp_path / "stats.sqlite3")
    recorder = Recorder()
    flow = to_prefect_flow(pipeline, max_workers=1, listeners=[recorder], reporters=[], stats=stats)

    flow()  # no statistics yet: registration order
    assert [e.task for e in recorder.of(TaskStarted)] == ["short", "slow_root", "after_slow"]
    assert StatsStore(stats).run_count("critical-path") == 1  # the flow run was recorded

    # Durations measured inside Prefect include its per-task overhead (the first task of a flow
    # run pays the most), so the history that decides here comes from standalone runs.
    for _ in range(4):
        PipelineExecutor(pipeline, reporters=[], stats=stats).run()
    recorder.events.clear()
    flow()  # slow_root's recorded 0.5 s puts its path first
    started = [e.task for e in recorder.of(TaskStarted)]
    assert started[0] == "slow_root" and sorted(started) == ["after_slow", "short", "slow_root"]

    recorder.events.clear()
    to_prefect_flow(pipeline, max_workers=1, listeners=[recorder], reporters=[], stats=stats, priority=False)()
    assert [e.task for e in recorder.of(TaskStarted)] == ["short", "slow_root", "after_slow"]


def test_a_task_run_that_crashes_fails_its_task_as_standalone_does() -> None:
    pipeline = Pipeline("crash")

    @pipeline.register
    def exits() -> None:
        raise SystemExit(3)  # Prefect crashes the task run; the core never sees a final outcome

    @pipeline.register
    def later() -> None:
        pass

    flow = to_prefect_flow(pipeline, max_workers=1, reporters=[])
    with pytest.raises(SystemExit) as caught:
        flow()
    assert caught.value.code == 3
    assert caught.value.__notes__ == ["Task Engine: task 'exits' failed on attempt 1 (SystemExit escaped the task)"]
    result = last_result(flow)
    assert result is not None
    assert states(flow) == {"exits": (TaskState.FAILED, 1), "later": (TaskState.NOT_RUN, 0)}


def test_secrets_reach_no_prefect_state_message(task_runs: Any) -> None:
    secret = "tok-PREFECT-SECRET-4242"
    pipeline = Pipeline("secret-messages")

    @pipeline.register
    class SkipsWithSecret(Task):
        @skippable
        def perform_task(self) -> None:
            raise RuntimeError(f"skip token {self.context['api']['token'].reveal()}")

    @pipeline.register(depends_on=SkipsWithSecret)
    class FailsWithSecret(Task):
        @retries(2, backoff=Backoff.constant(0))
        def perform_task(self) -> None:
            raise PermissionError(f"rejected token {self.context['api']['token'].reveal()}")

        def retry_handler(self, error: Exception) -> bool:
            return True

    from task_engine_core import Secret

    flow = to_prefect_flow(pipeline, reporters=[], context=TaskContext({"api": {"token": Secret(secret)}}))
    state = flow(return_state=True)
    assert state.is_failed()
    runs = task_runs(state.state_details.flow_run_id, 2)
    messages = [state.message or "", *(run.state.message or "" for run in runs.values())]
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        history = [s.message or "" for run in runs.values() for s in client.read_task_run_states(run.id)]
    messages += [flow_run.state.message or "", *history]
    assert not [m for m in messages if secret in m], messages
    assert runs["SkipsWithSecret"].state.message == "Skipping task due to error: skip token ***"
    assert "rejected token ***" in runs["FailsWithSecret"].state.message
    # The run's own record keeps the real error for the caller.
    result = last_result(flow)
    assert str(result.tasks["FailsWithSecret"].error) == f"rejected token {secret}"
    assert states(flow) == {"SkipsWithSecret": (TaskState.SKIPPED, 1), "FailsWithSecret": (TaskState.FAILED, 2)}


def test_each_flow_keeps_its_own_last_result() -> None:
    pipeline = Pipeline("prefect-own-result")
    pipeline.register(lambda: 7, name="seven")
    # Before: results lived in a module dict keyed by flow name and pipeline id, so a second flow
    # built from the same pipeline answered for the first one too (and no result was ever freed).
    first = to_prefect_flow(pipeline, reporters=[])
    second = to_prefect_flow(pipeline, reporters=[])
    second()
    assert last_result(first) is None
    assert last_result(second).tasks["seven"].state is TaskState.SUCCESS
