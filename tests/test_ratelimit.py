"""Token-bucket rate limits: exact arithmetic on a fake clock, task integration, one real-time stress test."""

from __future__ import annotations

import threading
import time

import pytest

from task_engine_core import (
    Pipeline,
    PipelineExecutor,
    RateLimit,
    RateLimiter,
    Task,
    rate_limit,
    rate_limited,
    retries,
    set_rate_limit,
)
from task_engine_core._policies import default_rate_limiter, resolve_policies
from task_engine_core._policies._rate_limit_config import parse_rate_limits
from task_engine_core.errors import (
    ContextError,
    InvalidArgumentError,
    RateLimitTimeoutError,
    UnknownRateLimitKeyError,
)
from task_engine_core.events import WaitFinished, WaitStarted

from .fakes import FakeClock

KEY = "/jobs/runs/get"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep)


@pytest.fixture(autouse=True)
def clean_default_registry():
    yield
    default_rate_limiter().clear()


# -- RateLimit -------------------------------------------------------------------------------------
def test_rate_limit_defaults_burst_to_rate_and_per_to_one_second():
    limit = RateLimit(KEY, 30)
    assert (limit.rate, limit.burst, limit.per, limit.tokens_per_second) == (30.0, 30.0, 1.0, 30.0)
    assert RateLimit(KEY, 0.5).burst == 1.0
    hourly = RateLimit(KEY, 1000, per="hour")
    assert hourly.per == 3600.0 and hourly.describe() == "1000/h (burst 1000)"
    assert RateLimit(KEY, 30, burst=5).describe() == "30/s (burst 5)"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate": 0}, "RateLimit('/jobs/runs/get', rate=0): rate must be a finite number > 0"),
        ({"rate": 1, "burst": 0.5}, "RateLimit('/jobs/runs/get', burst=0.5): burst must be a finite number >= 1"),
        (
            {"rate": 1, "per": "week"},
            "RateLimit('/jobs/runs/get', per='week'): per is a number of seconds > 0 or one of second, minute, hour, day",
        ),
        (  # an infinite period means no token ever arrives: refused, not a ZeroDivisionError in acquire
            {"rate": 1, "per": float("inf")},
            "RateLimit('/jobs/runs/get', per=inf): per is a number of seconds > 0 or one of second, minute, hour, day",
        ),
        (
            {"rate": 1, "per": True},
            "RateLimit('/jobs/runs/get', per=True): per is a number of seconds > 0 or one of second, minute, hour, day",
        ),
    ],
)
def test_rate_limit_rejects_bad_values(kwargs, message):
    with pytest.raises(InvalidArgumentError) as caught:
        RateLimit(KEY, **kwargs)
    assert str(caught.value) == message


# -- token arithmetic on a fake clock ---------------------------------------------------------------
def test_burst_is_free_then_tokens_arrive_at_the_rate(limiter, clock):
    limiter.set(RateLimit(KEY, rate=2, burst=3))
    assert [limiter.acquire(KEY) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert clock.sleeps == []
    assert limiter.acquire(KEY) == 0.5
    assert limiter.acquire(KEY) == 0.5
    assert clock.sleeps == [0.5, 0.5] and clock.now == 1.0
    clock.now += 10  # a long idle period refills only up to the burst
    assert limiter.available(KEY) == 3.0


def test_reservations_queue_callers_without_sleeping_inside_the_lock(limiter):
    limiter.set(RateLimit(KEY, rate=2, burst=3))
    assert [limiter.reserve(KEY) for _ in range(6)] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]
    assert limiter.available(KEY) == -3.0


def test_partial_refill_is_exact(limiter, clock):
    limiter.set(RateLimit(KEY, rate=4, burst=2))
    limiter.acquire(KEY, 2)
    clock.now = 0.125  # half a token
    assert limiter.available(KEY) == 0.5
    assert limiter.acquire(KEY) == 0.125
    assert clock.now == 0.25


def test_several_limits_on_one_key_all_apply(limiter, clock):
    limiter.set(RateLimit(KEY, rate=10, burst=10), RateLimit(KEY, rate=12, per="hour"))
    assert [limiter.acquire(KEY) for _ in range(10)] == [0.0] * 10
    assert limiter.acquire(KEY) == pytest.approx(0.1)  # the per-second bucket is empty
    assert limiter.acquire(KEY) == pytest.approx(0.1)
    # The hourly bucket (12 per hour = one per 300 s) is now the one that binds.
    assert limiter.acquire(KEY) == pytest.approx(300 - 0.2)
    assert [limit.describe() for limit in limiter.limits(KEY)] == ["10/s (burst 10)", "12/h (burst 12)"]


def test_setting_the_same_limit_again_does_not_refill_and_a_new_rate_keeps_spent_tokens(limiter, clock):
    limiter.set(RateLimit(KEY, rate=1, burst=5))
    limiter.acquire(KEY, 5)
    limiter.set(RateLimit(KEY, rate=1, burst=5))
    assert limiter.available(KEY) == 0.0
    limiter.set(RateLimit(KEY, rate=2, burst=5))
    assert limiter.available(KEY) == 0.0
    clock.now = 1.0
    assert limiter.available(KEY) == 2.0


def test_acquire_timeout_raises_its_own_error_and_takes_nothing(limiter, clock):
    limiter.set(RateLimit(KEY, rate=0.5, burst=1))
    limiter.acquire(KEY)
    with pytest.raises(RateLimitTimeoutError) as caught:
        limiter.acquire(KEY, timeout=1.5)
    assert str(caught.value) == (
        "rate limit '/jobs/runs/get': the next token is 2.00 s away, longer than the acquire timeout of 1.5 s; "
        "raise the timeout or lower the request rate"
    )
    assert isinstance(caught.value, TimeoutError)
    assert limiter.available(KEY) == 0.0 and clock.sleeps == []
    assert limiter.acquire(KEY, timeout=2.0) == 2.0


def test_try_acquire_never_waits(limiter, clock):
    limiter.set(RateLimit(KEY, rate=1, burst=1))
    assert limiter.try_acquire(KEY) is True
    assert limiter.try_acquire(KEY) is False
    assert clock.sleeps == []


def test_unknown_key_names_the_configured_keys(limiter):
    limiter.set(RateLimit(KEY, 30), RateLimit("/clusters/list", 20))
    with pytest.raises(UnknownRateLimitKeyError) as caught:
        limiter.acquire("/jobs/run/get")
    assert str(caught.value) == (
        "no rate limit is configured for key '/jobs/run/get' (did you mean '/jobs/runs/get'?); "
        "configured keys: '/clusters/list', '/jobs/runs/get'; call set_rate_limit(RateLimit('/jobs/run/get', "
        "rate=...)) or add it under rate_limits: in the context file"
    )


def test_more_tokens_than_the_burst_can_never_be_granted(limiter):
    limiter.set(RateLimit(KEY, rate=5, burst=2))
    with pytest.raises(InvalidArgumentError) as caught:
        limiter.acquire(KEY, 3)
    assert str(caught.value) == (
        "rate limit '/jobs/runs/get': 3 tokens at once exceed the burst of 5/s (burst 2); "
        "request fewer tokens or raise burst"
    )


def test_rate_limited_context_manager_yields_the_wait(limiter, clock):
    limiter.set(RateLimit(KEY, rate=4, burst=1))
    waits = []
    for _ in range(3):
        with rate_limited(KEY, limiter=limiter) as waited:
            waits.append(waited)
    assert waits == [0.0, 0.25, 0.25]


def test_set_rate_limit_uses_the_process_wide_registry():
    set_rate_limit(RateLimit(KEY, rate=30, burst=30))
    assert default_rate_limiter().limits(KEY) == (RateLimit(KEY, 30, 30),)
    with rate_limited(KEY) as waited:
        assert waited == 0.0


# -- decorator ------------------------------------------------------------------------------------
def test_rate_limit_decorator_attaches_a_guard_and_the_keys_in_any_stacking_order():
    @rate_limit(key="/a")
    @retries(2)
    @rate_limit(key="/b")
    def fetch():
        pass

    policies = resolve_policies(fetch)
    assert [guard.key for guard in policies.guards] == ["/a", "/b"]
    assert policies.rate_limit_keys == ("/a", "/b")
    assert policies.max_attempts == 2


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: rate_limit(lambda: None),
            "@rate_limit needs a key, e.g. @rate_limit(key='/jobs/runs/get'); it was used bare",
        ),
        (lambda: rate_limit(key=""), "rate_limit(key=''): the key must be a non-empty string"),
        (
            lambda: rate_limit(KEY, timeout=-1),
            "rate_limit('/jobs/runs/get', timeout=-1): timeout must be a finite number >= 0",
        ),
    ],
)
def test_rate_limit_decorator_rejects_bad_arguments(make, message):
    with pytest.raises(InvalidArgumentError) as caught:
        make()
    assert str(caught.value) == message


def _run(pipeline, clock, **kwargs):
    events = []
    executor = PipelineExecutor(
        pipeline, reporters=[], listeners=[events.append], clock=clock, sleep=clock.sleep, **kwargs
    )
    return executor, executor.run(), events


def test_waits_inside_tasks_are_reported_and_recorded(limiter, clock):
    limiter.set(RateLimit(KEY, rate=1, burst=1))
    pipeline = Pipeline("limited")

    @pipeline.register
    class First(Task):
        @rate_limit(key=KEY, limiter=limiter)
        def perform_task(self):
            pass

    @pipeline.register(depends_on=First)
    class second(Task):
        def perform_task(self):
            with rate_limited(KEY, limiter=limiter, attempt=self.attempt_state):
                pass
            with rate_limited(KEY, limiter=limiter, attempt=self.attempt_state):
                pass

    _, result, events = _run(pipeline, clock)
    started = [e for e in events if isinstance(e, WaitStarted)]
    finished = [e for e in events if isinstance(e, WaitFinished)]
    assert [(e.task, e.reason, e.key, e.seconds, e.message) for e in started] == [
        ("second", "rate_limit", KEY, 1.0, "waiting 1.0 s for '/jobs/runs/get'"),
        ("second", "rate_limit", KEY, 1.0, "waiting 1.0 s for '/jobs/runs/get'"),
    ]
    assert [(e.seconds, e.ok) for e in finished] == [(1.0, True), (1.0, True)]
    assert result.tasks["First"].waits == {}
    assert result.tasks["second"].waits == {"rate_limit": 2.0}


def test_acquire_timeout_in_a_guard_is_an_attempt_failure_that_retries(limiter, clock):
    limiter.set(RateLimit(KEY, rate=0.1, burst=1))
    limiter.acquire(KEY)  # the next token is 10 s away
    pipeline = Pipeline("timeout")
    calls = []

    @pipeline.register
    @retries(2, backoff=10)
    @rate_limit(key=KEY, timeout=5, limiter=limiter)
    def call():
        calls.append(clock.now)

    _, result, _ = _run(pipeline, clock)
    assert result.tasks["call"].attempts == 2
    assert calls == [10.0]  # the retry delay let the bucket refill


def test_limits_come_from_the_context_rate_limits_section(clock):
    pipeline = Pipeline("from-context")

    @pipeline.register
    @rate_limit(key=KEY)
    def call():
        pass

    context = {"rate_limits": {KEY: [{"rate": 30}, {"rate": "1000", "per": "hour", "burst": 100}]}}
    _run(pipeline, clock, context=context)
    assert default_rate_limiter().limits(KEY) == (RateLimit(KEY, 30), RateLimit(KEY, 1000, 100, per=3600))


def test_parse_rate_limits_accepts_a_bare_number_and_names_the_bad_entry():
    assert parse_rate_limits({KEY: 5}) == [RateLimit(KEY, 5)]
    with pytest.raises(InvalidArgumentError) as caught:
        parse_rate_limits({KEY: {"rate": 5, "every": 2}})
    assert str(caught.value) == (
        "rate_limits./jobs/runs/get: unknown field(s) every; a limit has rate, and optionally burst and per"
    )


def test_a_bad_rate_limits_section_stops_the_run_before_any_task(clock):
    pipeline = Pipeline("bad-section")
    ran = []
    pipeline.register(lambda: ran.append(1), name="task")
    executor = PipelineExecutor(pipeline, reporters=[], context={"rate_limits": {KEY: {"rate": "fast"}}})
    with pytest.raises(ContextError) as caught:
        executor.run()
    assert str(caught.value) == (
        "context key rate_limits./jobs/runs/get: RateLimit('/jobs/runs/get', rate='fast'): "
        "rate must be a finite number > 0"
    )
    assert ran == [] and executor.result is None


def test_an_unknown_decorator_key_stops_the_run_before_any_task(clock):
    set_rate_limit(RateLimit(KEY, 30))
    pipeline = Pipeline("unknown-key")

    @pipeline.register
    @rate_limit(key="/jobs/run/get")
    def call():
        raise AssertionError("must not run")

    executor = PipelineExecutor(pipeline, reporters=[])
    with pytest.raises(UnknownRateLimitKeyError) as caught:
        executor.run()
    assert str(caught.value).startswith(
        "task 'call': no rate limit is configured for key '/jobs/run/get' (did you mean '/jobs/runs/get'?)"
    )
    assert executor.result is None


# -- real time ------------------------------------------------------------------------------------
def test_sixteen_threads_never_exceed_rate_times_elapsed_plus_burst():
    rate, burst, threads, duration = 200.0, 20, 16, 2.0
    limiter = RateLimiter()
    limiter.set(RateLimit("stress", rate=rate, burst=burst))
    granted: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + duration

    def hammer() -> None:
        while time.monotonic() < stop_at:
            limiter.acquire("stress")
            now = time.monotonic()
            with lock:
                granted.append(now)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    granted.sort()
    # Every prefix of the grants respects the bound, not only the total.
    for count, moment in enumerate(granted, start=1):
        assert count <= rate * (moment - start) + burst + 1e-9, (count, moment - start)
    elapsed = granted[-1] - start
    ceiling = rate * elapsed + burst
    assert len(granted) >= 0.9 * ceiling, (len(granted), ceiling)


def test_console_reporter_prints_waits_above_its_threshold(limiter, clock):
    import io

    from task_engine_core.reporters import ConsoleReporter

    limiter.set(RateLimit(KEY, rate=2, burst=1))
    pipeline = Pipeline("console")

    @pipeline.register
    class poll(Task):
        def perform_task(self):
            for _ in range(3):
                with rate_limited(KEY, limiter=limiter, attempt=self.attempt_state):
                    pass

    out = io.StringIO()
    PipelineExecutor(
        pipeline, reporters=[ConsoleReporter(stream=out, wait_threshold=0.5)], clock=clock, sleep=clock.sleep
    ).run()
    assert out.getvalue().splitlines() == [
        "Executing poll",
        "poll: waiting 0.5 s for '/jobs/runs/get'",
        "poll: waiting 0.5 s for '/jobs/runs/get'",
    ]


def test_the_databricks_example_config_parses():
    from pathlib import Path

    from task_engine_core._context_file import load_context_file

    path = Path(__file__).resolve().parents[1] / "examples" / "databricks_rate_limits.yml"
    data = load_context_file(path, environ={"DATABRICKS_TOKEN": "dapi-example-token"})
    limits = parse_rate_limits(data["rate_limits"])
    assert RateLimit("/api/2.1/jobs/runs/get", 100) in limits
    assert RateLimit("/api/2.1/jobs/create", 10000, per="hour") in limits


def test_a_task_run_outside_the_executor_takes_limits_from_its_context(limiter, clock):
    # What an Airflow or Prefect worker does: run_attempt directly, with the hydrated context.
    from task_engine_core._runtime import OutcomeKind, TaskRun, run_attempt
    from task_engine_core.events import EventBus

    @rate_limit(key=KEY, limiter=limiter)
    def call():
        pass

    from task_engine_core._task import FunctionTask

    run = TaskRun("call", resolve_policies(call), FunctionTask(call), "run-1", EventBus(), clock, clock.sleep)
    context = {"rate_limits": {KEY: {"rate": 1, "burst": 1}}}
    assert run_attempt(run, 1, context).kind is OutcomeKind.SUCCESS
    assert run_attempt(run, 2, context).kind is OutcomeKind.SUCCESS
    assert limiter.limits(KEY) == (RateLimit(KEY, 1, 1),)
    assert run.waits == {"rate_limit": 1.0}


def test_keys_on_the_class_and_on_perform_task_both_apply():
    from task_engine_core._pipeline import Pipeline as _Pipeline

    pipeline = _Pipeline("both")

    @pipeline.register
    @rate_limit(key="/class")
    class Both(Task):
        @rate_limit(key="/method")
        def perform_task(self):
            pass

    policies = pipeline.validate().policies["Both"]
    assert policies.rate_limit_keys == ("/class", "/method")
    assert [guard.key for guard in policies.guards] == ["/class", "/method"]
