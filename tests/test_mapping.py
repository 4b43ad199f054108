"""Fan-out decided at run time (`map_over=`): instances, roll-up, fail-fast, priority, threads, reports."""

from __future__ import annotations

import io
import json
import threading
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from task_engine_core import (
    Pipeline,
    PipelineExecutor,
    RateLimit,
    SkipTask,
    Task,
    TaskState,
    rate_limit,
    set_rate_limit,
    skippable,
)
from task_engine_core._mapping import roll_up_state
from task_engine_core._stats import StatsStore
from task_engine_core.errors import InvalidArgumentError, MapOverError, UnknownDependencyError
from task_engine_core.events import TaskFinished, TaskStarted, WaitFinished
from task_engine_core.reporters import JsonRunSummary


def executor(pipeline: Pipeline, **options) -> PipelineExecutor:
    options.setdefault("reporters", [])
    options.setdefault("stats", False)
    return PipelineExecutor(pipeline, sleep=lambda s: None, **options)


def fan_out(items, *, fail=(), name="fan"):
    pipeline = Pipeline(name)

    @pipeline.register
    def source():
        return items

    @pipeline.register(depends_on=source, map_over=source)
    def poll(source):
        if source in fail:
            raise RuntimeError(f"item {source} failed")
        return source * 2

    @pipeline.register(depends_on=poll)
    def total(poll):
        return len(poll)

    return pipeline


def states(result) -> dict:
    return {name: (r.state, r.attempts) for name, r in result.tasks.items()}


def test_instances_are_named_and_listed_right_after_their_task():
    result = executor(fan_out((1, 2, 3))).run()
    assert list(result.tasks) == ["source", "poll", "poll[0]", "poll[1]", "poll[2]", "total"]
    assert result.tasks["poll"].output == [2, 4, 6]
    assert result.tasks["total"].output == 3
    assert result.tasks["poll[1]"].output == 4


def test_a_generator_output_is_mapped_and_map_over_implies_the_dependency():
    pipeline = Pipeline("generator")

    @pipeline.register
    def numbers():
        return (n for n in range(3))

    @pipeline.register(map_over=numbers)  # no depends_on: mapping over a task depends on it
    def square(numbers):
        return numbers * numbers

    assert pipeline.validate().upstream["square"] == ("numbers",)
    assert executor(pipeline).run().tasks["square"].output == [0, 1, 4]


def test_each_instance_has_its_own_events():
    events: list = []
    executor(fan_out([5, 6]), listeners=[events.append]).run()
    started = [e.task for e in events if isinstance(e, TaskStarted)]
    finished = [e.task for e in events if isinstance(e, TaskFinished)]
    assert started == ["source", "poll", "poll[0]", "poll[1]", "total"]
    assert finished == ["source", "poll[0]", "poll[1]", "poll", "total"]


def test_fail_fast_an_instance_failure_fails_the_task_and_stops_new_starts():
    runner = executor(fan_out([1, 2, 3, 4], fail=(2,)))
    with pytest.raises(RuntimeError, match="item 2 failed") as caught:
        runner.run()
    assert "Task Engine: task 'poll[1]' failed on attempt 1 (no retries configured)" in caught.value.__notes__
    assert states(runner.result) == {
        "source": (TaskState.SUCCESS, 1),
        "poll": (TaskState.FAILED, 2),
        "poll[0]": (TaskState.SUCCESS, 1),
        "poll[1]": (TaskState.FAILED, 1),
        "poll[2]": (TaskState.NOT_RUN, 0),
        "poll[3]": (TaskState.NOT_RUN, 0),
        "total": (TaskState.UPSTREAM_FAILED, 0),
    }
    assert runner.result.tasks["poll"].reason == "1 of 4 instances failed, first poll[1]"
    assert runner.result.tasks["poll"].error is runner.result.tasks["poll[1]"].error


def test_keep_going_runs_every_instance():
    runner = executor(fan_out([1, 2, 3], fail=(1, 3)), keep_going=True)
    with pytest.raises(RuntimeError, match="item 1 failed"):
        runner.run()
    assert [r.state for r in runner.result.tasks.values()] == [
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.FAILED,
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.UPSTREAM_FAILED,
    ]
    assert runner.result.tasks["poll"].reason == "2 of 3 instances failed, first poll[0]"


def test_empty_list_runs_no_instance_and_succeeds_with_an_empty_list():
    events: list = []
    result = executor(fan_out([]), listeners=[events.append]).run()
    assert states(result) == {
        "source": (TaskState.SUCCESS, 1),
        "poll": (TaskState.SUCCESS, 0),
        "total": (TaskState.SUCCESS, 1),
    }
    assert result.tasks["poll"].output == []
    assert [e.task for e in events if isinstance(e, TaskFinished)] == ["source", "poll", "total"]


@pytest.mark.parametrize(("value", "type_name"), [(None, "NoneType"), (42, "int"), ("abc", "str"), ({"a": 1}, "dict")])
def test_an_output_that_is_not_a_list_fails_the_mapped_task_naming_it_and_the_type(value, type_name):
    runner = executor(fan_out(value))
    with pytest.raises(MapOverError) as caught:
        runner.run()
    assert str(caught.value) == (
        f"task 'poll' maps over the output of 'source', which returned {type_name}, not a list: make 'source' "
        f"return a list (or tuple, or another iterable) of the items to fan out over"
    )
    assert states(runner.result) == {
        "source": (TaskState.SUCCESS, 1),
        "poll": (TaskState.FAILED, 0),
        "total": (TaskState.UPSTREAM_FAILED, 0),
    }


def test_a_skipped_upstream_skips_the_mapped_task_and_its_downstream_still_runs():
    pipeline = Pipeline("skipped_source")

    @pipeline.register
    def source():
        raise SkipTask("no runs today")

    @pipeline.register(map_over=source)
    def poll(source):
        return source

    @pipeline.register(depends_on=poll)
    def total(poll):
        return poll

    result = executor(pipeline).run()
    assert states(result) == {
        "source": (TaskState.SKIPPED, 1),
        "poll": (TaskState.SKIPPED, 0),
        "total": (TaskState.SUCCESS, 1),
    }
    assert result.tasks["poll"].reason == "upstream 'source' was skipped: nothing to map over"


def test_skippable_instances_roll_up():
    pipeline = Pipeline("skippable_instances")

    @pipeline.register
    def source():
        return [1, 2]

    @pipeline.register(map_over=source)
    @skippable
    def poll(source):
        raise ValueError(f"item {source}")

    result = executor(pipeline).run()
    assert states(result)["poll"] == (TaskState.SKIPPED, 2)
    assert result.tasks["poll"].reason == "all 2 instances were skipped"
    assert result.tasks["poll"].output is None


def test_roll_up_rules():
    S, F, K, N = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.NOT_RUN
    assert roll_up_state([]) is S
    assert roll_up_state([S, K]) is S
    assert roll_up_state([K, K]) is K
    assert roll_up_state([S, N]) is N
    assert roll_up_state([N, F, S]) is F


def test_instances_keep_their_task_priority():
    pipeline = Pipeline("priority")
    order: list[str] = []

    @pipeline.register
    def source():
        return [0, 1, 2]

    @pipeline.register(map_over=source, priority=10)
    class Poll(Task):
        def perform_task(self):
            order.append(f"Poll {self.inputs['source']}")

    @pipeline.register(depends_on=source, priority=1)
    def other():
        order.append("other")

    executor(pipeline).run()
    assert order == ["Poll 0", "Poll 1", "Poll 2", "other"]


def test_instances_run_in_parallel_on_several_workers():
    barrier = threading.Barrier(3, timeout=10)
    pipeline = Pipeline("parallel")

    @pipeline.register
    def source():
        return ["a", "b", "c"]

    @pipeline.register(map_over=source)
    def wait_for_the_others(source):
        barrier.wait()  # breaks (and fails the instance) unless all three run at the same time
        return threading.current_thread().name

    result = executor(pipeline, workers=3).run()
    assert len(set(result.tasks["wait_for_the_others"].output)) == 3


def test_each_instance_takes_its_own_rate_limit_token():
    set_rate_limit(RateLimit(key="test/mapping/poll", rate=20.0, burst=1))
    pipeline = Pipeline("rate_limited")
    events: list = []

    @pipeline.register
    def source():
        return list(range(4))

    @pipeline.register(map_over=source)
    @rate_limit(key="test/mapping/poll")
    def poll(source):
        return source

    result = executor(pipeline, listeners=[events.append]).run()
    waited = sorted({e.task for e in events if isinstance(e, WaitFinished) and e.reason == "rate_limit"})
    # Burst 1: the first instance takes the one token at once, each later one waits for its own.
    assert waited == ["poll[1]", "poll[2]", "poll[3]"]
    assert all(result.tasks[name].waits.get("rate_limit", 0) > 0 for name in waited)


def test_console_summary_and_statistics_name_the_instances(tmp_path: Path):
    store = StatsStore(tmp_path / "stats.sqlite3")
    path = tmp_path / "run.json"
    out = io.StringIO()
    with redirect_stdout(out):
        PipelineExecutor(fan_out(["x", "y"]), reporters=None, listeners=[JsonRunSummary(path)], stats=store).run()
    assert "Executing poll[0]\nExecuting poll[1]\n" in out.getvalue()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [(t["name"], t["output"]) for t in data["tasks"]] == [
        ("source", "['x', 'y']"),
        ("poll", "['xx', 'yy']"),
        ("poll[0]", "'xx'"),
        ("poll[1]", "'yy'"),
        ("total", "2"),
    ]
    assert data["critical_path"][:2] == ["source", "poll"]
    recorded = {summary.task for summary in store.summaries("fan")}
    assert {"poll", "poll[0]", "poll[1]"} <= recorded


def test_map_over_errors_name_the_task():
    pipeline = Pipeline("bad_map")
    with pytest.raises(InvalidArgumentError, match=r"names one upstream task to fan out over, not \['a', 'b'\]"):
        pipeline.register(map_over=["a", "b"])

    @pipeline.register(map_over="sourse")
    def poll(sourse):
        return sourse

    @pipeline.register
    def source():
        return []

    with pytest.raises(
        UnknownDependencyError, match="task 'poll' depends on unknown task 'sourse'; did you mean 'source'"
    ):
        pipeline.validate()
