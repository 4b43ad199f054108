"""Rate-limit stores: memory, a SQLite file and a real redis-server shared by threads and processes."""

from __future__ import annotations

import re
import sys
import time

import pytest

from task_engine_core import Pipeline, PipelineExecutor, RateLimit, RateLimiter, Task, TaskState, rate_limit, retries
from task_engine_core._policies import _bucket_stores
from task_engine_core._policies._bucket_stores import MEMORY, bucket_store
from task_engine_core.errors import (
    ContextError,
    InvalidArgumentError,
    MissingExtraError,
    RateLimitStoreError,
    RateLimitTimeoutError,
)
from task_engine_core.events import AttemptFailed, WaitStarted

from ._rate_limit_worker import run_processes, worst_excess
from ._services import RedisServer


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer()
    if server.binary is None:
        pytest.skip("redis-server is not installed (tests/run_all.sh installs it with apt-get)")
    pytest.importorskip("redis", reason="the redis client is not installed: pip install -e '.[test]'")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'buckets.sqlite3'}"


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'buckets.sqlite3'}"
    return request.getfixturevalue("redis_server").url


def _limiter(url: str, *limits: RateLimit, **kwargs) -> RateLimiter:
    limiter = RateLimiter(store=url, **kwargs)
    limiter.set(*limits)
    return limiter


# -- semantics: the same on every store --------------------------------------------------------
def test_burst_is_free_then_callers_reserve_future_tokens(store_url):
    key = f"burst-{time.monotonic_ns()}"
    limiter = _limiter(store_url, RateLimit(key, rate=10, burst=3))
    waits = [limiter.reserve(key) for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    # Reservations queue: the 4th caller waits one token (0.1 s), the 5th two.
    assert 0.05 < waits[3] <= 0.1 and 0.15 < waits[4] <= 0.2
    assert limiter.available(key) < -1.5


def test_every_limit_of_a_key_applies(store_url):
    key = f"two-{time.monotonic_ns()}"
    limiter = _limiter(store_url, RateLimit(key, rate=100, burst=100), RateLimit(key, rate=2, per="minute"))
    assert [limiter.reserve(key) for _ in range(2)] == [0.0, 0.0]
    # The per-minute bucket is empty: the next token is ~30 s away although the per-second one has 98.
    assert 29 < limiter.reserve(key) <= 30


def test_a_timeout_takes_nothing_and_try_acquire_never_waits(store_url):
    key = f"timeout-{time.monotonic_ns()}"
    limiter = _limiter(store_url, RateLimit(key, rate=1, burst=1))
    assert limiter.try_acquire(key) is True
    assert limiter.try_acquire(key) is False
    with pytest.raises(RateLimitTimeoutError, match=rf"rate limit '{key}': the next token is (0\.9\d|1\.00) s away"):
        limiter.reserve(key, timeout=0.01)
    # Nothing was taken by the refusals: the bucket is short of exactly the one granted token.
    assert -0.05 < limiter.available(key) <= 0.05


def test_more_tokens_than_the_burst_are_refused_before_the_store_is_asked(store_url):
    limiter = _limiter(store_url, RateLimit("big", rate=5, burst=2))
    with pytest.raises(InvalidArgumentError, match=r"3 tokens at once exceed the burst of 5/s \(burst 2\)"):
        limiter.reserve("big", 3)
    assert limiter.available("big") == 2.0


def test_two_limiters_on_one_store_share_one_bucket(store_url):
    # Two limiters stand for two processes: the second finds the first one's tokens spent.
    key = f"shared-{time.monotonic_ns()}"
    first = _limiter(store_url, RateLimit(key, rate=1, burst=2))
    second = _limiter(store_url, RateLimit(key, rate=1, burst=2))
    assert first.reserve(key) == 0.0 and second.reserve(key) == 0.0
    assert 0.9 < first.reserve(key) <= 1.0
    assert 1.9 < second.reserve(key) <= 2.0


def test_waits_are_reported_and_recorded_with_the_store_named(sqlite_url, recorder, no_sleep):
    pipeline = Pipeline("store waits")
    limiter = _limiter(sqlite_url, RateLimit("api", rate=1, burst=1), sleep=no_sleep)

    @pipeline.register
    @rate_limit("api", limiter=limiter)
    def first():
        pass

    @pipeline.register(depends_on=first)
    @rate_limit("api", limiter=limiter)
    def second():
        pass

    result = PipelineExecutor(pipeline, reporters=[], listeners=[recorder]).run()
    [wait] = recorder.of(WaitStarted)
    assert wait.task == "second" and wait.reason == "rate_limit" and wait.key == "api"
    assert re.fullmatch(rf"waiting (0\.9|1\.0) s for 'api' in {re.escape(sqlite_url)}", wait.message)
    assert result.tasks["second"].waits["rate_limit"] >= 0.0
    assert no_sleep.delays and 0.9 < no_sleep.delays[0] <= 1.0


# -- choosing the store --------------------------------------------------------------------------
def test_memory_is_the_default_and_the_environment_variable_chooses_another(sqlite_url, monkeypatch):
    monkeypatch.delenv("TASK_ENGINE_RATE_LIMIT_STORE", raising=False)
    limiter = RateLimiter()
    assert limiter.store is MEMORY
    monkeypatch.setenv("TASK_ENGINE_RATE_LIMIT_STORE", sqlite_url)
    assert limiter.store.name == sqlite_url
    monkeypatch.setenv("TASK_ENGINE_RATE_LIMIT_STORE", "memory")
    assert limiter.store is MEMORY


def test_the_running_tasks_context_beats_the_environment_and_code_beats_both(tmp_path, monkeypatch):
    from_env, from_context, in_code = (f"sqlite:///{tmp_path / name}" for name in ("env", "context", "code"))
    monkeypatch.setenv("TASK_ENGINE_RATE_LIMIT_STORE", from_env)
    pipeline = Pipeline("store choice")
    unpinned, pinned = RateLimiter(), RateLimiter(store=in_code)
    seen = {}

    @pipeline.register
    class Look(Task):
        def perform_task(self):
            assert self.attempt_state is not None
            seen["unpinned"] = unpinned.store_for(self.attempt_state).name
            seen["pinned"] = pinned.store_for(self.attempt_state).name

    PipelineExecutor(pipeline, reporters=[], context={"rate_limit_store": from_context}).run()
    assert seen == {"unpinned": from_context, "pinned": in_code}
    assert unpinned.store.name == from_env  # outside a task no context applies


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://x",
            r"TASK_ENGINE_RATE_LIMIT_STORE='ftp://x' is not a rate-limit store; use memory, sqlite:///PATH "
            r"\(one host\) or redis://HOST:PORT/DB \(many hosts\)",
        ),
        (
            "sqlite://relative",
            r"TASK_ENGINE_RATE_LIMIT_STORE='sqlite://relative': a file store is written "
            r"sqlite:///PATH",
        ),
        ("redis://:hunter2@127.0.0.1:x/0", r"rate-limit store 'redis://:\*\*\*@127.0.0.1:x/0'|is not a"),
    ],
)
def test_a_bad_store_url_names_the_setting_and_the_choices(url, message):
    with pytest.raises(InvalidArgumentError, match=message) as caught:
        bucket_store(url)
    assert "hunter2" not in str(caught.value)


def test_a_bad_store_in_the_environment_stops_the_run_before_any_task(monkeypatch):
    monkeypatch.setenv("TASK_ENGINE_RATE_LIMIT_STORE", "memcached://127.0.0.1")
    pipeline, ran = Pipeline("bad store"), []
    limiter = _limiter("memory", RateLimit("api", rate=1))
    limiter.use_store(None)

    @pipeline.register
    @rate_limit("api", limiter=limiter)
    def call():
        ran.append(1)

    with pytest.raises(InvalidArgumentError, match=r"TASK_ENGINE_RATE_LIMIT_STORE='memcached://127.0.0.1' is not"):
        PipelineExecutor(pipeline, reporters=[]).run()
    assert ran == []


def test_a_bad_store_in_the_context_is_a_context_error():
    pipeline = Pipeline("bad context store")
    pipeline.register(lambda: None, name="noop")  # never runs: the context is checked first
    with pytest.raises(ContextError, match=r"context key rate_limit_store='nope' is not a rate-limit store"):
        PipelineExecutor(pipeline, reporters=[], context={"rate_limit_store": "nope"}).run()


def test_the_redis_store_without_the_redis_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # what `import redis` meets where it is not installed
    with pytest.raises(
        MissingExtraError,
        match=r"the Redis rate-limit store \(redis://127.0.0.1:1/0\) needs the "
        r"'redis' package.*pip install 'task-engine\[redis\]'",
    ):
        _bucket_stores.RedisBucketStore("redis://127.0.0.1:1/0")


def test_an_unreachable_store_fails_the_attempt_naming_the_store(tmp_path):
    stopped = RedisServer()  # never started: nothing listens on its port
    pytest.importorskip("redis")
    limiter = _limiter(stopped.url, RateLimit("api", rate=1))
    with pytest.raises(RateLimitStoreError) as caught:
        limiter.acquire("api")
    assert str(caught.value).startswith(
        f"rate-limit store {stopped.url} could not be used for key 'api' (ConnectionError: "
    )
    assert str(caught.value).endswith(
        "no token was taken, so this attempt fails rather than exceed the limit (the task's retries apply); "
        "check that the store is running and reachable, or choose another with TASK_ENGINE_RATE_LIMIT_STORE"
    )
    assert caught.value.retryable is True
    unwritable = _limiter(f"sqlite:///{tmp_path / 'missing' / 'b.sqlite3'}", RateLimit("api", rate=1))
    with pytest.raises(
        RateLimitStoreError,
        match=r"rate-limit store sqlite:///.*/missing/b.sqlite3 could not be used "
        r"for key 'api' \(cannot open .*/missing/b.sqlite3.lock: \[Errno 2\] No such file",
    ):
        unwritable.acquire("api")


# -- many processes -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_four_processes_of_eight_threads_hold_one_rate(kind, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'b.sqlite3'}" if kind == "sqlite" else request.getfixturevalue("redis_server").url
    rate, burst, duration = 50.0, 5.0, 3.0
    grants, start, stop, late = run_processes(
        url,
        f"accuracy-{kind}-{time.monotonic_ns()}",
        rate=rate,
        burst=burst,
        processes=4,
        threads=8,
        duration=duration,
    )
    # Tolerance: one token for clock granularity, plus what a sleep that woke `late` seconds past
    # its due moment (a loaded machine) lets bunch up with the grants after it.
    worst, tolerance = worst_excess(grants, rate, burst), 1.0 + rate * late
    assert worst <= tolerance, f"{worst:.2f} grants above burst + rate * elapsed (tolerance {tolerance:.2f})"
    achieved = sum(1 for t in grants if start <= t <= stop) / duration
    assert achieved >= 0.95 * rate, f"{achieved:.1f}/s of {rate:g}/s (latest wake-up {late * 1000:.0f} ms late)"


# -- the store goes down in the middle of a run ---------------------------------------------------
def test_redis_stopped_mid_run_fails_token_attempts_retryably_and_a_restart_lets_retries_succeed(tmp_path, recorder):
    pytest.importorskip("redis")
    server = RedisServer(tmp_path)
    if server.binary is None:
        pytest.skip("redis-server is not installed (tests/run_all.sh installs it with apt-get)")
    server.start()
    try:
        limiter = _limiter(server.url, RateLimit("api", rate=100, burst=10))
        pipeline = Pipeline("store down")

        @pipeline.register
        @rate_limit("api", limiter=limiter)
        def before():
            pass

        @pipeline.register(depends_on=before)
        def outage():
            server.stop()

        @pipeline.register(depends_on=outage)
        @retries(6, backoff=0.3)
        @rate_limit("api", limiter=limiter)
        def needs_token():
            pass

        @pipeline.register(depends_on=outage)
        def no_token():
            # Runs beside needs_token's failing attempts, then brings the store back.
            time.sleep(0.5)
            server.start()

        result = PipelineExecutor(pipeline, workers=2, reporters=[], listeners=[recorder]).run()
    finally:
        server.stop()
    states = {name: (task.state, task.attempts) for name, task in result.tasks.items()}
    assert states["before"] == (TaskState.SUCCESS, 1)
    assert states["no_token"] == (TaskState.SUCCESS, 1)
    assert states["needs_token"][0] is TaskState.SUCCESS and states["needs_token"][1] >= 2
    failures = recorder.of(AttemptFailed)
    assert failures and {f.task for f in failures} == {"needs_token"}
    assert all(isinstance(f.error, RateLimitStoreError) for f in failures)
    assert all(
        str(f.error).startswith(f"rate-limit store {server.url} could not be used for key 'api'") for f in failures
    )


def test_without_retries_a_store_outage_fails_only_the_tasks_that_need_a_token():
    pytest.importorskip("redis")
    stopped = RedisServer()  # nothing listens on its port
    limiter = _limiter(stopped.url, RateLimit("api", rate=100))
    pipeline = Pipeline("store never up")

    @pipeline.register
    @rate_limit("api", limiter=limiter)
    def needs_token():
        pass

    @pipeline.register
    def independent():
        pass

    executor = PipelineExecutor(pipeline, reporters=[], keep_going=True)
    with pytest.raises(RateLimitStoreError, match=rf"rate-limit store {re.escape(stopped.url)} could not be used"):
        executor.run()
    states = {name: (task.state, task.attempts) for name, task in executor.result.tasks.items()}
    assert states == {"needs_token": (TaskState.FAILED, 1), "independent": (TaskState.SUCCESS, 1)}
