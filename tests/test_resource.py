"""wait_for_resource: polling, growing intervals, a timeout that survives retries, soft_fail, reporting."""

from __future__ import annotations

import io

import pytest

from task_engine_core import Pipeline, PipelineExecutor, Task, TaskState, retries, skippable, wait_for_resource
from task_engine_core.errors import DefinitionError, InvalidArgumentError, ResourceTimeoutError
from task_engine_core.events import WaitFinished, WaitStarted
from task_engine_core.reporters import ConsoleReporter

from .fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class ReadyAt:
    """A readiness check that turns true once the fake clock reaches `moment`; records each poll."""

    def __init__(self, clock: FakeClock, moment: float) -> None:
        self.clock = clock
        self.moment = moment
        self.polls: list[float] = []
        self.__name__ = "db_ready"

    def __call__(self) -> bool:
        self.polls.append(self.clock.now)
        return self.clock.now >= self.moment


def run(pipeline, clock, reporters=(), raise_errors=True):
    events = []
    executor = PipelineExecutor(
        pipeline, reporters=list(reporters), listeners=[events.append], clock=clock, sleep=clock.sleep
    )
    if raise_errors:
        return executor.run(), events
    try:
        executor.run()
    except Exception as error:  # the failed task's own exception, whatever its type
        assert error is executor.result.failed[0].error
    else:
        pytest.fail("the run should have raised the failed task's error")
    return executor.result, events


def single(check, clock, *decorators, body=None):
    pipeline = Pipeline("resource")
    performed = []

    def load():
        performed.append(clock.now)
        if body:
            body()

    target = wait_for_resource(check, **decorators[0])(load) if decorators else load
    for decorate in decorators[1:]:
        target = decorate(target)
    pipeline.register(target, name="load")
    return pipeline, performed


def test_a_ready_resource_costs_one_poll_and_no_wait(clock):
    check = ReadyAt(clock, 0)
    pipeline, performed = single(check, clock, {"interval": 2, "timeout": 10})
    result, events = run(pipeline, clock)
    assert check.polls == [0.0] and performed == [0.0]
    assert not [e for e in events if isinstance(e, WaitStarted)]
    assert result.tasks["load"].waits == {}


def test_polls_at_the_interval_until_ready_and_reports_the_wait(clock):
    check = ReadyAt(clock, 4)
    pipeline, performed = single(check, clock, {"interval": 2, "timeout": 10})
    result, events = run(pipeline, clock)
    assert check.polls == [0.0, 2.0, 4.0] and performed == [4.0]
    assert clock.sleeps == [2.0, 2.0]
    started = [e for e in events if isinstance(e, WaitStarted)]
    finished = [e for e in events if isinstance(e, WaitFinished)]
    assert [(e.reason, e.key, e.seconds, e.message) for e in started] == [
        ("resource", "db_ready", 10.0, "waiting up to 10.0 s for resource 'db_ready'")
    ]
    assert [(e.seconds, e.ok) for e in finished] == [(4.0, True)]
    assert result.tasks["load"].waits == {"resource": 4.0}


def test_the_interval_grows_by_backoff_up_to_the_cap(clock):
    check = ReadyAt(clock, 17)
    pipeline, _ = single(check, clock, {"interval": 1, "backoff": 2, "max_interval": 5, "timeout": 100})
    run(pipeline, clock)
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert check.polls == [0.0, 1.0, 3.0, 7.0, 12.0, 17.0]


def test_timing_out_raises_resource_timeout_error_after_a_last_poll_at_the_deadline(clock):
    check = ReadyAt(clock, 1000)
    pipeline, performed = single(check, clock, {"interval": 3, "timeout": 10})
    result, events = run(pipeline, clock, raise_errors=False)
    task = result.tasks["load"]
    assert task.state is TaskState.FAILED and performed == []
    assert isinstance(task.error, ResourceTimeoutError)
    assert str(task.error) == (
        "task 'load' gave up waiting for resource 'db_ready': not ready 10 s after the first poll (5 polls); "
        "raise timeout= or check the resource"
    )
    assert clock.sleeps == [3.0, 3.0, 3.0, 1.0] and check.polls == [0.0, 3.0, 6.0, 9.0, 10.0]
    assert [e.ok for e in events if isinstance(e, WaitFinished)] == [False]
    assert task.waits == {"resource": 10.0}


def test_the_timeout_counts_from_the_first_poll_and_is_not_reset_by_retries(clock):
    check = ReadyAt(clock, 1000)
    pipeline, _ = single(check, clock, {"interval": 3, "timeout": 10}, retries(3, backoff=4))
    result, _ = run(pipeline, clock, raise_errors=False)
    task = result.tasks["load"]
    assert task.attempts == 3 and task.state is TaskState.FAILED
    # Attempts 2 and 3 start after the deadline: one poll each, then the timeout, no new waiting.
    assert check.polls == [0.0, 3.0, 6.0, 9.0, 10.0, 14.0, 18.0]
    assert clock.sleeps == [3.0, 3.0, 3.0, 1.0, 4.0, 4.0]
    assert str(task.error).endswith(
        "not ready 10 s after the first poll (1 poll); raise timeout= or check the resource"
    )


def test_a_retry_after_the_deadline_still_succeeds_when_the_resource_is_ready(clock):
    check = ReadyAt(clock, 12)
    pipeline, performed = single(check, clock, {"interval": 3, "timeout": 10}, retries(2, backoff=4))
    result, _ = run(pipeline, clock)
    assert result.tasks["load"].state is TaskState.SUCCESS and result.tasks["load"].attempts == 2
    assert performed == [14.0]


def test_soft_fail_skips_on_timeout_and_the_console_says_why(clock):
    check = ReadyAt(clock, 1000)
    pipeline, _ = single(check, clock, {"interval": 5, "timeout": 5, "soft_fail": True})
    out = io.StringIO()
    result, _ = run(pipeline, clock, reporters=[ConsoleReporter(stream=out)])
    assert result.tasks["load"].state is TaskState.SKIPPED
    assert out.getvalue().splitlines() == [
        "Executing load",
        "load: waiting up to 5.0 s for resource 'db_ready'",
        "Skipping task due to error: task 'load' gave up waiting for resource 'db_ready': not ready 5 s after "
        "the first poll (2 polls); raise timeout= or check the resource",
    ]


def test_soft_fail_never_skips_an_error_raised_by_the_check(clock):
    def broken():
        raise ConnectionError("resource API down")

    pipeline, _ = single(broken, clock, {"interval": 1, "timeout": 5, "soft_fail": True})
    result, _ = run(pipeline, clock, raise_errors=False)
    task = result.tasks["load"]
    assert task.state is TaskState.FAILED and isinstance(task.error, ConnectionError)


def test_an_error_in_the_check_is_an_attempt_failure_that_retries_and_skippable_apply_to(clock):
    answers = iter([ConnectionError("flaky"), True])

    def flaky():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    pipeline, performed = single(flaky, clock, {"interval": 1, "timeout": 5}, retries(2, backoff=0))
    result, _ = run(pipeline, clock)
    assert result.tasks["load"].attempts == 2 and performed == [0.0]

    pipeline, _ = single(ReadyAt(clock, 1e9), clock, {"interval": 1, "timeout": 1}, skippable)
    result, _ = run(pipeline, clock)
    assert result.tasks["load"].state is TaskState.SKIPPED
    assert isinstance(result.tasks["load"].error, ResourceTimeoutError)


def test_the_task_hook_method_is_polled_when_no_check_is_given(clock):
    pipeline = Pipeline("hook")
    seen = []

    @pipeline.register
    @wait_for_resource(interval=1, timeout=5)
    class Warehouse(Task):
        def resource_ready(self):
            seen.append(clock.now)
            return clock.now >= 2

        def perform_task(self):
            seen.append("performed")

    @pipeline.register
    @wait_for_resource
    class Bare(Task):
        def resource_ready(self):
            return True

        def perform_task(self):
            seen.append("bare")

    run(pipeline, clock)
    assert seen == [0.0, 1.0, 2.0, "performed", "bare"]


def test_a_check_can_read_the_context(clock):
    pipeline = Pipeline("ctx")
    asked = []

    def cluster_up(context):
        asked.append(context["cluster"])
        return True

    pipeline.register(wait_for_resource(cluster_up, timeout=1)(lambda: None), name="t")
    PipelineExecutor(pipeline, reporters=[], context={"cluster": "c-1"}, clock=clock, sleep=clock.sleep).run()
    assert asked == ["c-1"]


def test_a_class_without_the_hook_method_is_rejected_when_decorated():
    with pytest.raises(InvalidArgumentError) as caught:

        @wait_for_resource(timeout=5)
        class NoHook(Task):
            def perform_task(self):
                pass

    assert str(caught.value) == (
        "@wait_for_resource without a check on 'NoHook' needs a resource_ready(self) -> bool method on that class; "
        "add one or pass the check as the first argument"
    )


def test_a_perform_task_guard_without_check_on_a_task_lacking_the_hook_fails_the_task(clock):
    pipeline = Pipeline("nohook")

    @pipeline.register
    class Plain(Task):
        @wait_for_resource(timeout=5)
        def perform_task(self):
            pass

    result, _ = run(pipeline, clock, raise_errors=False)
    error = result.tasks["Plain"].error
    assert isinstance(error, DefinitionError)
    assert str(error) == (
        "task 'Plain' uses @wait_for_resource without a check, so it needs a resource_ready(self) -> bool method; "
        "add one or pass check="
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"interval": 0}, "wait_for_resource('db_ready', interval=0): interval must be a finite number > 0"),
        ({"timeout": -1}, "wait_for_resource('db_ready', timeout=-1): timeout must be a finite number >= 0"),
        ({"backoff": 0.5}, "wait_for_resource('db_ready', backoff=0.5): backoff must be a finite number >= 1"),
        (
            {"interval": 5, "max_interval": 2},
            "wait_for_resource('db_ready', max_interval=2): max_interval must be a finite number >= 5",
        ),
    ],
)
def test_bad_arguments_are_rejected_at_decoration(kwargs, message):
    def db_ready():
        return True

    with pytest.raises(InvalidArgumentError) as caught:
        wait_for_resource(db_ready, **kwargs)
    assert str(caught.value) == message


def test_the_list_command_shows_resource_waits_and_rate_limit_keys(tmp_path, capsys):
    from task_engine_core._cli import main

    (tmp_path / "pipe.py").write_text(
        "from task_engine_core import register, rate_limit, wait_for_resource\n"
        "def db_ready():\n    return True\n"
        "@register\n@wait_for_resource(db_ready, timeout=30)\n@rate_limit(key='/jobs/runs/get')\n"
        "def load():\n    pass\n"
    )
    assert main(["list", str(tmp_path / "pipe.py")]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.split() == [
        "load",
        "depends",
        "on:",
        "-",
        "rate_limit=/jobs/runs/get",
        "wait_for_resource=db_ready(timeout",
        "30s)",
    ]


def test_a_capped_poll_backoff_never_overflows_however_long_the_wait(clock):
    # 3,600 polls at max_interval=1 s: the uncapped product overflowed a float after about 1,024.
    pipeline = Pipeline("long_wait")
    never = ReadyAt(clock, float("inf"))

    @pipeline.register
    @wait_for_resource(never, backoff=2, max_interval=1, timeout=3600, interval=1)
    def needs_db():
        pass

    result, _ = run(pipeline, clock, raise_errors=False)
    task = result.tasks["needs_db"]
    assert task.state is TaskState.FAILED and isinstance(task.error, ResourceTimeoutError) and task.attempts == 1
    assert len(never.polls) == 3601 and set(clock.sleeps) == {1.0}


@pytest.mark.parametrize("what", ["timeout", "interval", "backoff", "max_interval"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_wait_for_resource_rejects_nan_and_infinity(what, value):
    with pytest.raises(InvalidArgumentError) as info:
        wait_for_resource(lambda: True, name="db", **{what: value})
    minimum = {"timeout": ">= 0", "interval": "> 0", "backoff": ">= 1", "max_interval": ">= 5"}[what]
    assert str(info.value) == f"wait_for_resource('db', {what}={value!r}): {what} must be a finite number {minimum}"
