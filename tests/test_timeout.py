"""@timeout: an attempt that never returns fails and the run moves on."""

from __future__ import annotations

import threading

import pytest

from task_engine_core import InvalidArgumentError, Pipeline, PipelineExecutor, Task, TaskState, TaskTimeoutError, retries, skippable, timeout


def test_hanging_task_fails_with_its_own_error_and_others_keep_their_results():
    p = Pipeline("hang")
    release = threading.Event()
    seen = []

    @p.register
    def quick():
        seen.append("quick")

    @p.register(depends_on=quick)
    class hangs(Task):
        @timeout(0.2)
        def perform_task(self):
            seen.append(self.attempt_state.name)
            release.wait(30)

    p.add(lambda: None, name="after", depends_on=["hangs"])
    executor = PipelineExecutor(p, reporters=[])
    try:
        with pytest.raises(TaskTimeoutError) as info:
            executor.run()
    finally:
        release.set()
    assert str(info.value).startswith("task 'hangs' did not finish within 0.2 s (attempt 1); its thread was left running")
    assert seen == ["quick", "hangs"]
    states = {n: r.state for n, r in executor.result.tasks.items()}
    assert states == {"quick": TaskState.SUCCESS, "hangs": TaskState.FAILED, "after": TaskState.UPSTREAM_FAILED}


def test_timeout_composes_with_retries_and_skippable():
    p = Pipeline("hang-skip")
    release = threading.Event()

    @p.register
    class Slow(Task):
        @skippable
        @retries(2, backoff=0)
        @timeout(0.05)
        def perform_task(self):
            release.wait(30)

        def retry_handler(self, error):
            return isinstance(error, TaskTimeoutError)

    try:
        result = PipelineExecutor(p, reporters=[]).run()
    finally:
        release.set()
    assert (result.tasks["Slow"].state, result.tasks["Slow"].attempts) == (TaskState.SKIPPED, 2)


def test_errors_inside_a_timed_task_are_its_own():
    p = Pipeline("timed-error")

    @p.register
    @timeout(5)
    def breaks():
        raise LookupError("missing row")

    with pytest.raises(LookupError) as info:
        PipelineExecutor(p, reporters=[]).run()
    assert str(info.value) == "missing row"


@pytest.mark.parametrize("value", [0, -1, "5", True, float("nan"), float("inf"), float("-inf")])
def test_bad_timeout(value):
    with pytest.raises(InvalidArgumentError) as info:
        timeout(value)
    assert str(info.value) == f"timeout({value!r}): seconds must be a finite number > 0"


@pytest.mark.parametrize("check_returns", [False, True], ids=["check-never-returns", "check-blocks-then-true"])
def test_a_timeout_bounds_the_wait_for_resource_check_too(check_returns):
    from task_engine_core import wait_for_resource

    p = Pipeline("guarded")
    release = threading.Event()
    ran = []

    def blocking_check():
        release.wait(30)  # never returns within the test, or (unblocked) says "ready"
        return check_returns

    @p.register
    @timeout(0.2)
    @wait_for_resource(blocking_check, timeout=60, interval=1)
    def needs_db():
        ran.append("body")

    executor = PipelineExecutor(p, reporters=[])
    try:
        with pytest.raises(TaskTimeoutError):
            executor.run()
    finally:
        release.set()
    assert executor.result.tasks["needs_db"].state is TaskState.FAILED and ran == []
