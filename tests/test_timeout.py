"""@timeout: an attempt that never returns fails and the run moves on."""

from __future__ import annotations

import threading

import pytest

from task_engine_core import Pipeline, PipelineExecutor, Task, TaskState, retries, skippable, timeout
from task_engine_core.errors import InvalidArgumentError, TaskTimeoutError


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
    assert str(info.value).startswith(
        "task 'hangs' did not finish within 0.2 s (attempt 1); its thread was left running"
    )
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


def test_a_wait_a_timeout_abandons_ends_at_the_timeout_and_the_abandoned_thread_reports_nothing_later():
    from task_engine_core import wait_for_resource
    from task_engine_core.events import TaskFinished, WaitFinished, WaitStarted

    p = Pipeline("abandoned")
    ready = threading.Event()
    polled_after_abandon = threading.Event()

    def check():
        if ready.is_set():
            polled_after_abandon.set()
            return True
        return False

    @p.register
    @timeout(0.3)
    @wait_for_resource(check, timeout=60, interval=0.02)
    def needs_db():
        pass

    events = []
    executor = PipelineExecutor(p, reporters=[], listeners=[events.append])
    with pytest.raises(TaskTimeoutError):
        executor.run()
    ready.set()  # the abandoned attempt thread's wait now ends "ready": it must not be heard of
    assert polled_after_abandon.wait(10)
    for thread in threading.enumerate():  # let that thread leave its wait and try to report it
        if thread.name == "task-engine-needs_db-attempt-1":
            thread.join(10)
    waits = [
        (type(e).__name__, e.reason) + ((e.ok,) if isinstance(e, WaitFinished) else ())
        for e in events
        if isinstance(e, (WaitStarted, WaitFinished))
    ]
    assert waits == [("WaitStarted", "resource"), ("WaitFinished", "resource", False)]
    finished = next(i for i, e in enumerate(events) if isinstance(e, TaskFinished))
    assert [i for i, e in enumerate(events) if isinstance(e, WaitFinished)] < [finished]
    result = executor.result.tasks["needs_db"]
    assert result.state is TaskState.FAILED and result.waits["resource"] > 0


def test_an_async_task_under_a_timeout_leaves_no_event_loop_open():
    import asyncio
    import gc
    import warnings

    p = Pipeline("async-timed")
    loops = []

    @p.register
    @timeout(30)
    async def fetch():
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = PipelineExecutor(p, reporters=[], stats=False).run()
        for thread in threading.enumerate():
            if thread.name.startswith("task-engine-fetch-attempt-"):
                thread.join(10)
        gc.collect()  # an unclosed loop warns when it is collected
    assert result.tasks["fetch"].state is TaskState.SUCCESS
    assert len(loops) == 1 and loops[0].is_closed()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_timed_attempt_sees_the_callers_context_variables():
    import contextvars

    request_id = contextvars.ContextVar("request_id", default="unset")
    p = Pipeline("timed-context")
    seen = []

    @p.register
    @timeout(30)
    def read():
        seen.append(request_id.get())

    token = request_id.set("run-42")  # what an orchestrator's run context looks like to a task
    try:
        PipelineExecutor(p, reporters=[], stats=False).run()
    finally:
        request_id.reset(token)
    assert seen == ["run-42"]
