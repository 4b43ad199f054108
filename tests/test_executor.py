"""Running: order, retries, skip, fail-fast, keep-going, results and the re-raised failure."""

from __future__ import annotations

import io
import sys
import threading
from datetime import datetime

import pytest

from task_engine_core import Backoff, Pipeline, PipelineExecutor, RunResult, Task, TaskState, retries, skippable
from task_engine_core.errors import InvalidArgumentError
from task_engine_core.events import RetryScheduled, RunFinished, RunStarted, TaskFinished, TaskStarted, WaitFinished


def run(pipeline, **kwargs):
    kwargs.setdefault("reporters", [])
    kwargs.setdefault("sleep", lambda s: None)
    executor = PipelineExecutor(pipeline, **kwargs)
    return executor, executor.run()


def states(result: RunResult):
    return {name: (r.state, r.attempts) for name, r in result.tasks.items()}


def test_tasks_start_after_their_dependencies_in_registration_order():
    p, log = Pipeline("order"), []
    for name, deps in [("a", []), ("c", ["b"]), ("b", []), ("d", ["a", "c"]), ("e", [])]:
        p.register(depends_on=deps, name=name)(lambda name=name: log.append(name))
    _, result = run(p)
    assert log == ["a", "b", "c", "d", "e"]
    assert list(result.tasks) == ["a", "b", "c", "d", "e"]


def test_seed_always_fails_task_runs_three_times_then_is_skipped(no_sleep):
    p, calls = Pipeline("seed"), []

    @p.register
    class AlwaysFailsTask(Task):
        @skippable
        @retries(3)
        def perform_task(self):
            calls.append(1)
            raise Exception("AlwaysFailsTask failed")

        def retry_handler(self, error):
            return True

    @p.register(depends_on=AlwaysFailsTask)
    def after():
        calls.append("after")

    _, result = run(p, sleep=no_sleep)
    assert calls == [1, 1, 1, "after"]
    assert no_sleep.delays == [1.0, 1.0]  # the default backoff is the seed's 1 s
    assert states(result) == {"AlwaysFailsTask": (TaskState.SKIPPED, 3), "after": (TaskState.SUCCESS, 1)}
    assert str(result.tasks["AlwaysFailsTask"].error) == "AlwaysFailsTask failed"


def test_handler_decides_and_its_number_is_the_delay(no_sleep):
    p, answers = Pipeline("handler"), [4.5, True, False]

    @p.register
    class Decides(Task):
        @retries(5, backoff=Backoff.exponential(initial=2))
        def perform_task(self):
            raise RuntimeError("nope")

        def retry_handler(self, error):
            return answers.pop(0)

    executor = PipelineExecutor(p, reporters=[], sleep=no_sleep)
    with pytest.raises(RuntimeError):
        executor.run()
    assert no_sleep.delays == [4.5, 4.0]  # seconds from the handler, then backoff for retry 2
    assert states(executor.result) == {"Decides": (TaskState.FAILED, 3)}


def test_function_tasks_retry_on_any_error(no_sleep):
    p, calls = Pipeline("fn"), []

    @p.register
    @retries(3, backoff=0.5)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("try again")

    _, result = run(p, sleep=no_sleep)
    assert states(result) == {"flaky": (TaskState.SUCCESS, 3)} and no_sleep.delays == [0.5, 0.5]


@pytest.mark.parametrize("outer", ["skippable", "retries"])
def test_skip_in_either_stacking_order_lets_dependents_run(outer, no_sleep):
    p = Pipeline(f"skip-{outer}")

    def perform_task(self):
        raise ValueError("optional failed")

    decorated = skippable(retries(2)(perform_task)) if outer == "skippable" else retries(2)(skippable(perform_task))
    Optional = type("Optional", (Task,), {"perform_task": decorated, "retry_handler": lambda self, e: True})
    p.add(Optional)
    p.add(lambda: None, depends_on=["Optional"], name="after")
    _, result = run(p, sleep=no_sleep)
    assert result.tasks["Optional"].state is TaskState.SKIPPED and result.tasks["Optional"].attempts == 2
    assert result.tasks["after"].state is TaskState.SUCCESS
    assert result.succeeded


def make_failing_pipeline(name):
    p = Pipeline(name)

    @p.register
    class Broken(Task):
        def perform_task(self):
            raise KeyError("Error 401")

    p.add(lambda: None, depends_on=[Broken], name="below")
    p.add(lambda: None, depends_on=["below"], name="further_below")
    p.add(lambda: None, name="independent")
    p.add(lambda: None, depends_on=["independent"], name="after_independent")
    return p


def test_fail_fast_marks_downstream_upstream_failed_and_the_rest_not_run():
    executor = PipelineExecutor(make_failing_pipeline("ff"), reporters=[])
    with pytest.raises(KeyError) as info:
        executor.run()
    assert states(executor.result) == {
        "Broken": (TaskState.FAILED, 1),
        "below": (TaskState.UPSTREAM_FAILED, 0),
        "further_below": (TaskState.UPSTREAM_FAILED, 0),
        "independent": (TaskState.NOT_RUN, 0),
        "after_independent": (TaskState.NOT_RUN, 0),
    }
    assert info.value is executor.result.tasks["Broken"].error
    assert not executor.result.succeeded and executor.result.interrupted is None


def test_keep_going_runs_independent_branches():
    executor = PipelineExecutor(make_failing_pipeline("kg"), reporters=[], keep_going=True)
    with pytest.raises(KeyError):
        executor.run()
    assert states(executor.result) == {
        "Broken": (TaskState.FAILED, 1),
        "below": (TaskState.UPSTREAM_FAILED, 0),
        "further_below": (TaskState.UPSTREAM_FAILED, 0),
        "independent": (TaskState.SUCCESS, 1),
        "after_independent": (TaskState.SUCCESS, 1),
    }


def test_the_raised_exception_is_the_tasks_own_with_a_note(no_sleep):
    p = Pipeline("own")

    class Error401(Exception):
        pass

    @p.register
    class Task1(Task):
        @retries(3)
        def perform_task(self):
            raise Error401("Error 401")

        def retry_handler(self, error):
            return False

    executor = PipelineExecutor(p, reporters=[], sleep=no_sleep)
    with pytest.raises(Error401) as info:
        executor.run()
    assert str(info.value) == "Error 401"  # message unchanged
    assert info.value.__notes__ == ["Task Engine: task 'Task1' failed on attempt 1 (retry_handler declined to retry)"]


def test_fail_fast_on_threads_lets_running_tasks_finish():
    p = Pipeline("threads-ff")
    slow_started, release = threading.Event(), threading.Event()

    @p.register
    def slow():
        slow_started.set()
        assert release.wait(5)

    @p.register
    def breaks():
        assert slow_started.wait(5)
        release.set()
        raise RuntimeError("broken")

    p.add(lambda: None, name="later")
    executor = PipelineExecutor(p, workers=2, reporters=[])
    with pytest.raises(RuntimeError):
        executor.run()
    assert states(executor.result) == {
        "slow": (TaskState.SUCCESS, 1),
        "breaks": (TaskState.FAILED, 1),
        "later": (TaskState.NOT_RUN, 0),
    }


def test_result_records_attempts_times_duration_error_and_waits(no_sleep):
    p = Pipeline("timing")
    ticks = iter(range(100))

    @p.register
    class Twice(Task):
        attempts = 0

        @retries(2, backoff=3)
        def perform_task(self):
            type(self).attempts += 1
            if type(self).attempts == 1:
                raise OSError("first")

        def retry_handler(self, error):
            return True

    executor, result = run(p, sleep=no_sleep, clock=lambda: float(next(ticks)))
    task = result.tasks["Twice"]
    assert (task.state, task.attempts, task.error) == (TaskState.SUCCESS, 2, None)
    assert isinstance(task.start, datetime) and isinstance(task.end, datetime) and task.start <= task.end
    assert task.duration == 3.0  # injected clock: start tick 1, retry wait ticks 2-3, end tick 4
    assert task.waits == {"retry": 1.0}
    assert result.duration is not None and result.run_id and executor.result is result


def test_events_in_order(recorder, no_sleep):
    p = Pipeline("events")

    @p.register
    class Once(Task):
        tries = 0

        @retries(2, backoff=0)
        def perform_task(self):
            type(self).tries += 1
            if type(self).tries == 1:
                raise OSError("again")

        def retry_handler(self, error):
            return True

    run(p, listeners=[recorder], sleep=no_sleep)
    kinds = [type(e).__name__ for e in recorder.events]
    assert kinds == [
        "RunStarted",
        "TaskStarted",
        "AttemptStarted",
        "AttemptFailed",
        "RetryScheduled",
        "WaitStarted",
        "WaitFinished",
        "AttemptStarted",
        "TaskFinished",
        "RunFinished",
    ]
    retry = recorder.of(RetryScheduled)[0]
    assert (retry.task, retry.next_attempt, retry.max_attempts, retry.delay) == ("Once", 2, 2, 0.0)
    assert recorder.of(RunStarted)[0].plan == ("Once",)
    assert recorder.of(TaskStarted)[0].worker == threading.current_thread().name
    assert recorder.of(WaitFinished)[0].reason == "retry"
    assert recorder.of(TaskFinished)[0].result.state is TaskState.SUCCESS
    assert recorder.of(RunFinished)[0].result.succeeded


def test_a_listener_that_raises_never_breaks_the_run(caplog):
    p = Pipeline("bad-listener")
    p.add(lambda: None, name="fine")

    def explode(event):
        raise RuntimeError("listener bug")

    _, result = run(p, listeners=[explode])
    assert result.succeeded
    assert "listener" in caplog.text and "failed on RunStarted; the run goes on" in caplog.text


def test_console_output_follows_a_redirected_stdout(monkeypatch):
    p = Pipeline("stdout")
    p.add(lambda: None, name="Hello")
    executor = PipelineExecutor(p)  # default reporters: the console reporter
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buffer)
    executor.run()
    assert buffer.getvalue() == "Executing Hello\n"


def test_task_instances_are_fresh_per_run_and_see_the_context():
    p, seen = Pipeline("ctx"), []

    @p.register
    class Reads(Task):
        def perform_task(self):
            seen.append((self, self.context["tenant_info"]["url"]))

    run(p, context={"tenant_info": {"url": "https://example.invalid"}})
    run(p, context={"tenant_info": {"url": "https://example.invalid"}})
    assert [url for _, url in seen] == ["https://example.invalid"] * 2
    assert seen[0][0] is not seen[1][0]


@pytest.mark.parametrize("workers", [0, -2, 1.5, True, "4"])
def test_workers_must_be_a_positive_integer(workers):
    with pytest.raises(InvalidArgumentError) as info:
        PipelineExecutor(Pipeline("w"), workers=workers)
    assert str(info.value) == f"workers={workers!r}: the number of workers must be an integer >= 1"


def test_default_pipeline_is_used_when_none_is_given(monkeypatch):
    from task_engine_core import register
    from task_engine_core._pipeline import collecting_pipeline

    ran = []
    try:

        @register
        def only():
            ran.append(1)

        PipelineExecutor(reporters=[]).run()
    finally:
        collecting_pipeline().clear()
    assert ran == [1]


def test_explicit_priority_wins_over_registration_order():
    p, log = Pipeline("prio"), []
    p.register(name="first")(lambda: log.append("first"))
    p.register(name="urgent", priority=10)(lambda: log.append("urgent"))
    run(p)
    assert log == ["urgent", "first"]


def test_a_task_raising_keyboard_interrupt_fails_and_stops_new_starts():
    p = Pipeline("kbi")

    @p.register
    def interrupts():
        raise KeyboardInterrupt

    p.add(lambda: None, name="next", depends_on=[])
    executor = PipelineExecutor(p, reporters=[], keep_going=True)
    with pytest.raises(KeyboardInterrupt):
        executor.run()
    assert states(executor.result) == {"interrupts": (TaskState.FAILED, 1), "next": (TaskState.NOT_RUN, 0)}


def test_raise_on_failure_false_returns_the_result_of_a_failed_run():
    p = Pipeline("quiet_failure")

    @p.register
    def breaks():
        raise LookupError("missing row")

    @p.register(depends_on=breaks)
    def after():
        pass

    executor = PipelineExecutor(p, reporters=[], stats=False, raise_on_failure=False)
    result = executor.run()
    assert result is executor.result and not result.succeeded
    assert result.states() == {"breaks": TaskState.FAILED, "after": TaskState.UPSTREAM_FAILED}
    assert str(result.tasks["breaks"].error) == "missing row"
