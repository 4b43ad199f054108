"""The HTTP tasks (task_engine_core.http) against real HTTP servers on 127.0.0.1 (no mocking of requests)."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from task_engine_core import Backoff, Pipeline, PipelineExecutor, TaskState, retries, skippable
from task_engine_core._policies import RateLimit, RateLimiter, default_rate_limiter, rate_limit, set_rate_limit
from task_engine_core.errors import MissingExtraError, UnknownRateLimitKeyError
from task_engine_core.events import RetryScheduled, WaitStarted
from task_engine_core.http import (
    NO_RETRY,
    HttpConnectionError,
    HttpStatusError,
    HttpTimeoutError,
    RetryRule,
    SensibleDefaultsRequests,
    mask_url,
    retry_after_seconds,
)

from .fakes import FakeClock

DROP = "drop"  # close the connection without an answer


class ScriptedServer:
    """An HTTP server on 127.0.0.1 answering from a script; the last step repeats forever."""

    def __init__(self, script: list) -> None:
        self.script = list(script)
        self.seen: list[str] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.answer(self)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.seen.append(f"{handler.command} {handler.path}")
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step == DROP:
            handler.close_connection = True
            return
        status, headers, body, delay = (
            (*step, None, None, None)[:4] if isinstance(step, tuple) else (step, None, None, None)
        )
        if delay:
            self.stopping.wait(delay)
        payload = (body if body is not None else f'{{"status": {status}}}').encode()
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        try:
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (a read timeout): that is what the test wanted

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[ScriptedServer] = []

    def start(*script) -> ScriptedServer:
        server = ScriptedServer(list(script))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def run_task(task_class: type, time_source: FakeClock | None = None, **executor_options):
    """Run a one-task pipeline; return (task result, events, the raised error or None)."""
    pipeline = Pipeline("http")
    pipeline.add(task_class, name="call")
    events: list = []
    fake = time_source or FakeClock(start=1000.0)
    options = dict(clock=fake.clock, sleep=fake.sleep)
    options.update(executor_options)
    executor = PipelineExecutor(pipeline, reporters=[], listeners=[events.append], handle_signals=False, **options)
    raised = None
    try:
        executor.run()
    except Exception as error:
        raised = error
    assert executor.result is not None
    return executor.result.tasks["call"], events, raised


def get_task(url: str, **attributes) -> type:
    """A SensibleDefaultsRequests subclass that GETs `url` once per attempt."""

    def perform_task(self) -> None:
        self.session.get(url)

    return type("Call", (SensibleDefaultsRequests,), {"perform_task": perform_task, **attributes})


def reasons(events: list) -> list[str]:
    return [event.reason for event in events if isinstance(event, RetryScheduled)]


# -- 429 ---------------------------------------------------------------------------------------------
def test_429_twice_then_200_succeeds_on_the_third_attempt(serve):
    server = serve(429, 429, 200)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/api/2.1/jobs/runs/get?run_id=7")), fake)
    assert raised is None
    assert (result.state, result.attempts) == (TaskState.SUCCESS, 3)
    assert fake.sleeps == [1.0, 2.0]
    assert reasons(events) == [
        "429 from GET .../runs/get, retrying in 1.0 s (attempt 2 of 4)",
        "429 from GET .../runs/get, retrying in 2.0 s (attempt 3 of 4)",
    ]
    assert result.waits == {"retry": 3.0}
    assert server.seen == ["GET /api/2.1/jobs/runs/get?run_id=7"] * 3


def test_429_forever_waits_1_2_4_seconds_then_fails(serve):
    server = serve(429)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/jobs/runs/get")), fake)
    assert fake.sleeps == [1.0, 2.0, 4.0]
    assert (result.state, result.attempts) == (TaskState.FAILED, 4)
    assert result.waits == {"retry": 7.0}
    assert result.reason == "no attempts left"
    assert isinstance(raised, HttpStatusError) and raised.status == 429
    assert str(raised) == (
        f"429 Too Many Requests from GET {server.url('/jobs/runs/get')}; body: '{{\"status\": 429}}'; "
        "the service is throttling this client; lower the request rate (see rate_limit)"
    )
    assert [e.delay for e in events if isinstance(e, RetryScheduled)] == [1.0, 2.0, 4.0]
    assert len(server.seen) == 4


def test_429_with_retry_after_2_waits_2_seconds(serve):
    server = serve((429, {"Retry-After": "2"}), 200)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/jobs/runs/get")), fake)
    assert raised is None
    assert (result.state, result.attempts) == (TaskState.SUCCESS, 2)
    assert fake.sleeps == [2.0]
    assert reasons(events) == ["429 from GET .../runs/get, retrying in 2.0 s as Retry-After asks (attempt 2 of 4)"]


def test_retry_after_as_http_date_is_honoured(serve):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server = serve((429, {"Retry-After": when}), 200)
    fake = FakeClock(start=1000.0)
    result, _, raised = run_task(get_task(server.url("/x")), fake)
    assert raised is None and result.attempts == 2
    # An HTTP date has whole seconds, and a little time passes before the handler reads it.
    assert 25.0 < fake.sleeps[0] <= 30.0


def test_retry_after_longer_than_the_cap_fails_at_once(serve):
    server = serve((429, {"Retry-After": "120"}), 200)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/jobs/runs/get")), fake)
    assert (result.state, result.attempts) == (TaskState.FAILED, 1)
    assert fake.sleeps == []
    assert result.reason == (
        "429 from GET .../runs/get: Retry-After asks for 120.0 s, more than max_retry_after (60 s); "
        "failing now instead of waiting"
    )
    assert isinstance(raised, HttpStatusError) and raised.retry_after == "120"
    assert any(result.reason in note for note in raised.__notes__)
    assert reasons(events) == []


def test_max_retry_after_is_configurable(serve):
    server = serve((429, {"Retry-After": "120"}), 200)
    fake = FakeClock(start=1000.0)
    result, _, raised = run_task(get_task(server.url("/x"), max_retry_after=300), fake)
    assert raised is None and fake.sleeps == [120.0]


# -- 5xx and the network --------------------------------------------------------------------------------
def test_503_forever_retries_with_jittered_exponential_backoff_then_fails(serve):
    server = serve(503)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/health")), fake)
    assert (result.state, result.attempts) == (TaskState.FAILED, 4)
    assert isinstance(raised, HttpStatusError) and raised.status == 503
    assert len(fake.sleeps) == 3
    for delay, base in zip(fake.sleeps, (1.0, 2.0, 4.0)):
        assert base <= delay <= base + 0.5
    assert [r.split(", retrying")[0] for r in reasons(events)] == ["503 from GET /health"] * 3


@pytest.mark.parametrize("status", [502, 504, 408])
def test_gateway_errors_are_retried_like_503(serve, status):
    server = serve(status, 200)
    result, events, raised = run_task(get_task(server.url("/gw")))
    assert raised is None and result.attempts == 2
    assert reasons(events)[0].startswith(f"{status} from GET /gw, retrying in ")


def test_503_with_retry_after_waits_as_asked(serve):
    server = serve((503, {"Retry-After": "7"}), 200)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/maintenance")), fake)
    assert raised is None and fake.sleeps == [7.0]
    assert reasons(events) == ["503 from GET /maintenance, retrying in 7.0 s as Retry-After asks (attempt 2 of 4)"]


def test_500_is_retried_twice_by_default(serve):
    server = serve(500)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/boom")), fake)
    assert (result.state, result.attempts) == (TaskState.FAILED, 3)
    assert result.reason == "500 from GET /boom: giving up after 2 retries"
    assert len(server.seen) == 3


def test_a_dropped_connection_is_retried(serve):
    server = serve(DROP, DROP, 200)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/flaky?token=s3cret")), fake)
    assert raised is None
    assert (result.state, result.attempts) == (TaskState.SUCCESS, 3)
    failures = [e.error for e in events if isinstance(e, RetryScheduled)]
    assert all(type(error) is HttpConnectionError for error in failures)
    assert str(failures[0]) == (
        f"GET {server.url('/flaky?token=***')} got no response (RemoteDisconnected: Remote end closed "
        "connection without response); check that the service is running and reachable"
    )
    assert reasons(events)[0].startswith("no response from GET /flaky (RemoteDisconnected: ")
    assert all("s3cret" not in reason for reason in reasons(events))


def test_a_refused_connection_fails_after_the_unavailable_retries():
    result, events, raised = run_task(get_task(closed_port_url()))
    assert (result.state, result.attempts) == (TaskState.FAILED, 4)
    assert type(raised) is HttpConnectionError
    assert "Connection refused" in str(raised)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a server bound, then closed)."""
    server = ScriptedServer([200])
    url = server.url("/gone")
    server.close()
    return url


def test_a_server_slower_than_the_read_timeout_times_out_and_is_retried(serve):
    server = serve((200, None, None, 5.0), 200)
    fake = FakeClock(start=1000.0)
    task = get_task(server.url("/slow"), read_timeout=0.5)
    result, events, raised = run_task(task, fake)
    assert raised is None
    assert (result.state, result.attempts) == (TaskState.SUCCESS, 2)
    timeout = next(e.error for e in events if isinstance(e, RetryScheduled))
    assert isinstance(timeout, HttpTimeoutError) and timeout.phase == "read"
    assert str(timeout) == (
        f"GET {server.url('/slow')} timed out: no response within 0.5 s (read_timeout); "
        "raise read_timeout on the task if the service is this slow"
    )
    assert reasons(events)[0].startswith("read timeout on GET /slow, retrying in 1.")


# -- client errors -------------------------------------------------------------------------------------
def test_401_fails_at_once_with_method_masked_url_status_and_body(serve):
    server = serve((401, None, '{"error":   "bad token",\n "hint": "renew it"}'), 200)
    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(get_task(server.url("/me?api_key=s3cret&page=2")), fake)
    assert (result.state, result.attempts) == (TaskState.FAILED, 1)
    assert fake.sleeps == [] and reasons(events) == []
    assert result.reason == "401 from GET /me: not retried"
    assert str(raised) == (
        f"401 Unauthorized from GET {server.url('/me?api_key=***&page=2')}; "
        'body: \'{"error": "bad token", "hint": "renew it"}\'; '
        "the service did not accept the credentials; check the token or password the task sends"
    )
    assert "s3cret" not in str(raised)
    assert raised.__notes__ == ["Task Engine: task 'call' failed on attempt 1 (401 from GET /me: not retried)"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_retried(serve, status):
    server = serve(status, 200)
    result, _, raised = run_task(get_task(server.url("/thing")))
    assert (result.state, result.attempts) == (TaskState.FAILED, 1)
    assert isinstance(raised, HttpStatusError) and raised.status == status


def test_a_long_body_is_cut_to_a_snippet(serve):
    server = serve((400, None, "x" * 500))
    _, _, raised = run_task(get_task(server.url("/thing"), body_snippet_length=10))
    assert raised.body == "xxxxxxxxxx..."


def test_context_secrets_are_masked_in_the_url_and_body(serve):
    from task_engine_core._secrets import Secret

    token = Secret("path-secret-1234").reveal()
    server = serve((403, None, f"token {token} has no access"))
    _, _, raised = run_task(get_task(server.url(f"/users/{token}/jobs")))
    assert token not in str(raised)
    assert str(raised).startswith(
        f"403 Forbidden from GET {server.url('/users/***/jobs')}; body: 'token *** has no access'"
    )


def test_other_exceptions_are_not_retried(serve):
    class Parse(SensibleDefaultsRequests):
        def perform_task(self) -> None:
            raise ValueError("not JSON")

    result, _, raised = run_task(Parse)
    assert (result.state, result.attempts) == (TaskState.FAILED, 1)
    assert result.reason == "ValueError is not an HTTP failure; not retried (override retry_handler to retry it)"


# -- attempts, @retries, @skippable, overrides ------------------------------------------------------------
def test_the_class_sets_its_own_attempts_from_its_rules():
    assert SensibleDefaultsRequests.default_attempts() == 4
    pipeline = Pipeline("p")
    pipeline.add(get_task("http://127.0.0.1:9/"), name="call")
    assert pipeline.validate().policies["call"].max_attempts == 4

    class Patient(get_task("http://127.0.0.1:9/")):
        too_many_requests = RetryRule(6, Backoff.exponential(1.0, 2.0), honour_retry_after=True)

    pipeline.add(Patient, name="patient")
    assert pipeline.validate().policies["patient"].max_attempts == 7


def test_explicit_retries_wins_over_the_class_budget(serve):
    server = serve(429)

    @retries(2)
    class Twice(get_task(server.url("/x"))):
        pass

    fake = FakeClock(start=1000.0)
    result, events, _ = run_task(Twice, fake)
    assert (result.state, result.attempts) == (TaskState.FAILED, 2)
    assert fake.sleeps == [1.0]
    assert reasons(events) == ["429 from GET /x, retrying in 1.0 s (attempt 2 of 2)"]

    class Inherits(Twice):  # a subclass keeps the explicit budget of its base
        pass

    result, _, _ = run_task(Inherits, FakeClock(start=1000.0))
    assert result.attempts == 2


def test_explicit_retries_on_perform_task_cannot_stretch_a_rule(serve):
    server = serve(429)

    class Many(SensibleDefaultsRequests):
        @retries(10)
        def perform_task(self) -> None:
            self.session.get(server.url("/x"))

    fake = FakeClock(start=1000.0)
    result, _, _ = run_task(Many, fake)
    assert (result.state, result.attempts) == (TaskState.FAILED, 4)
    assert fake.sleeps == [1.0, 2.0, 4.0]
    assert result.reason == "429 from GET /x: giving up after 3 retries"


def test_skippable_ends_a_401_skipped(serve):
    server = serve(401)

    @skippable
    class Optional(get_task(server.url("/me"))):
        pass

    result, _, raised = run_task(Optional)
    assert raised is None
    assert (result.state, result.attempts) == (TaskState.SKIPPED, 1)


def test_status_rules_override_one_status_and_merge_with_the_bases(serve):
    server = serve(404, 404, 409)

    class WaitsForCreation(SensibleDefaultsRequests):
        status_rules = {404: RetryRule(2, Backoff.constant(0.5))}

    class AlsoConflicts(WaitsForCreation):
        status_rules = {409: RetryRule(1, Backoff.constant(0.25))}

        def perform_task(self) -> None:
            self.session.get(server.url("/job"))

    assert set(AlsoConflicts.status_rules) == {404, 409}
    fake = FakeClock(start=1000.0)
    result, _, raised = run_task(AlsoConflicts, fake)
    assert fake.sleeps == [0.5, 0.5]
    # A rule's retries count the task's attempts so far, whatever failed before (portable to every
    # backend): the 409 came on attempt 3, past its one retry.
    assert (result.state, result.attempts) == (TaskState.FAILED, 3)
    assert result.reason == "409 from GET /job: giving up after 1 retry"


def test_exception_rules_override_by_exception_class(serve):
    server = serve(DROP)

    class NoNetworkRetry(get_task(server.url("/x"))):
        exception_rules = {HttpConnectionError: RetryRule(0)}

    result, _, _ = run_task(NoNetworkRetry)
    assert result.attempts == 1
    assert result.reason.startswith("no response from GET /x (RemoteDisconnected: ")


def test_a_subclass_may_override_retry_handler_and_defer_to_the_defaults(serve):
    server = serve(401, 401, 503, 200)

    class RefreshesToken(get_task(server.url("/me"))):
        def retry_handler(self, error):
            if isinstance(error, HttpStatusError) and error.status == 401:
                return 0.0  # pretend a token refresh happened
            return super().retry_handler(error)

    fake = FakeClock(start=1000.0)
    result, events, raised = run_task(RefreshesToken, fake)
    assert raised is None and result.attempts == 4
    assert fake.sleeps[:2] == [0.0, 0.0] and 3.0 <= fake.sleeps[2] <= 4.5
    assert reasons(events)[:2] == ["retry_handler asked to retry"] * 2


def test_a_requests_error_raised_outside_the_session_is_understood(serve):
    import requests

    server = serve(503, 200)

    class Plain(SensibleDefaultsRequests):
        def perform_task(self) -> None:
            requests.get(server.url("/plain"), timeout=5).raise_for_status()

    result, events, raised = run_task(Plain)
    assert raised is None and result.attempts == 2
    assert reasons(events)[0].startswith("503 from GET /plain, retrying in 1.")


def test_exception_rules_may_name_requests_exceptions(serve):
    import requests

    server = serve((200, None, None, 2.0))

    class NoTimeoutRetry(get_task(server.url("/slow"), read_timeout=0.1)):
        exception_rules = {requests.Timeout: NO_RETRY}

    result, _, raised = run_task(NoTimeoutRetry)
    assert isinstance(raised, HttpTimeoutError)
    assert (result.attempts, result.reason) == (1, "read timeout on GET /slow: not retried")


def test_raise_for_status_false_hands_the_response_back(serve):
    server = serve(404)
    seen = []

    class Probe(SensibleDefaultsRequests):
        def perform_task(self) -> None:
            seen.append(self.session.get(server.url("/maybe"), raise_for_status=False).status_code)

    result, _, _ = run_task(Probe)
    assert result.state is TaskState.SUCCESS and seen == [404]


# -- rate limits: a token per request --------------------------------------------------------------------
def three_gets(url: str, base: type = SensibleDefaultsRequests, **attributes) -> type:
    def perform_task(self) -> None:
        for _ in range(3):
            self.session.get(url)

    return type("ThreeGets", (base,), {"perform_task": perform_task, **attributes})


def test_rate_limit_takes_a_token_per_request_not_per_task(serve):
    server = serve(200)
    fake = FakeClock(start=1000.0)
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    limiter.set(RateLimit("/jobs/runs/get", rate=1, burst=1))
    task = rate_limit("/jobs/runs/get", limiter=limiter)(three_gets(server.url("/jobs/runs/get")))
    result, events, raised = run_task(task, fake)
    assert raised is None and result.attempts == 1
    assert len(server.seen) == 3
    # The guard's token pays for the first request; the second and third wait one second each.
    assert fake.sleeps == [1.0, 1.0]
    assert result.waits == {"rate_limit": 2.0}
    waits = [(w.reason, w.key, w.seconds, w.message) for w in events if isinstance(w, WaitStarted)]
    assert waits == [("rate_limit", "/jobs/runs/get", 1.0, "waiting 1.0 s for '/jobs/runs/get'")] * 2


def test_each_attempt_gets_its_guard_token_and_retries_compose(serve):
    server = serve(429, 200, 200, 200)
    fake = FakeClock(start=1000.0)
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    limiter.set(RateLimit("api", rate=1, burst=1))
    task = rate_limit("api", limiter=limiter)(three_gets(server.url("/x")))
    result, events, raised = run_task(task, fake)
    assert raised is None and result.attempts == 2
    # attempt 1: its guard token, then 429 -> retry 1 s (which refills the bucket); attempt 2: its
    # guard token and two more requests, 1 s apart.
    assert fake.sleeps == [1.0, 1.0, 1.0]
    assert result.waits == {"retry": 1.0, "rate_limit": 2.0}
    assert len(server.seen) == 4


def test_rate_limit_key_for_maps_requests_to_keys(serve):
    server = serve(200)
    fake = FakeClock(start=1000.0)
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    limiter.set(RateLimit("runs/get", rate=2, burst=2))

    def rate_limit_key_for(self, method, url):
        return "runs/get" if url.endswith("/runs/get") else None

    task = three_gets(server.url("/runs/get"), rate_limit_key_for=rate_limit_key_for, rate_limiter=limiter)
    result, _, raised = run_task(task, fake)
    assert raised is None
    assert fake.sleeps == [0.5]  # burst 2, then half a second for the third request


def test_a_per_call_rate_limit_key_uses_the_process_wide_limiter(serve):
    server = serve(200)
    set_rate_limit(RateLimit("sensible-test-key", rate=0.001, burst=10))
    try:
        before = default_rate_limiter().available("sensible-test-key")

        class Tagged(SensibleDefaultsRequests):
            def perform_task(self) -> None:
                self.session.get(server.url("/a"), rate_limit_key="sensible-test-key")
                self.session.post(server.url("/b"), rate_limit_key="sensible-test-key")
                self.session.get(server.url("/c"))

        result, _, raised = run_task(Tagged)
        after = default_rate_limiter().available("sensible-test-key")
    finally:
        default_rate_limiter().remove("sensible-test-key")
    assert raised is None
    assert before - after == pytest.approx(2.0, abs=0.01)
    assert server.seen == ["GET /a", "POST /b", "GET /c"]


def test_an_unknown_per_call_key_fails_with_the_limiters_error(serve):
    server = serve(200)

    class Typo(SensibleDefaultsRequests):
        def perform_task(self) -> None:
            self.session.get(server.url("/a"), rate_limit_key="no-such-key")

    result, _, raised = run_task(Typo)
    assert isinstance(raised, UnknownRateLimitKeyError)
    assert (result.state, result.attempts) == (TaskState.FAILED, 1)
    assert server.seen == []


# -- real time ------------------------------------------------------------------------------------------
def test_a_short_backoff_really_waits(serve):
    server = serve(503, 200)
    task = get_task(server.url("/x"), unavailable=RetryRule(1, Backoff.constant(0.3)))
    started = time.monotonic()
    result, events, raised = run_task(task, clock=time.monotonic, sleep=time.sleep)
    elapsed = time.monotonic() - started
    assert raised is None and result.attempts == 2
    assert elapsed >= 0.3  # a lower bound only: the machine may be slow, never fast
    assert result.waits["retry"] >= 0.3
    waits = [e for e in events if isinstance(e, WaitStarted)]
    assert [(w.reason, w.seconds) for w in waits] == [("retry", 0.3)]


# -- the example ----------------------------------------------------------------------------------------
def test_the_http_example_handles_429_and_rate_limits():
    root = __file__.rsplit("/tests/", 1)[0]
    out = subprocess.run(
        [sys.executable, "run_examples.py", "http"], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[5:7] == [
        "WaitForRun: 429 from GET .../runs/get, retrying in 1.0 s as Retry-After asks (attempt 2 of 4)",
        "WaitForRun: 429 from GET .../runs/get, retrying in 2.0 s (attempt 3 of 4)",
    ]
    assert "FetchOutput: 404 from GET .../runs/get-output: not retried" in lines
    assert any(line.startswith("Skipping task due to error: 404 Not Found") and "token=***" in line for line in lines)
    assert "s3cr3t" not in out.stdout
    assert lines[-1] == "Service saw 8 requests, 0 over its limit of 10/s"


# -- pieces ----------------------------------------------------------------------------------------------
def test_mask_url_hides_secret_query_values_and_passwords():
    assert mask_url("https://bob:pw@api.test/a?token=abc&page=2&client_secret=x&API_KEY=y") == (
        "https://bob:***@api.test/a?token=***&page=2&client_secret=***&API_KEY=***"
    )
    assert mask_url("http://h/p") == "http://h/p"


def test_retry_after_seconds_reads_seconds_and_http_dates():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after_seconds("soon") is None


def test_retry_rule_rejects_negative_retries():
    from task_engine_core.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError) as caught:
        RetryRule(-1)
    assert str(caught.value) == "RetryRule(retries=-1): retries is how often this failure is retried, an integer >= 0"


@pytest.mark.parametrize("module", ["task_engine_core", "task_engine_core.http", "task_engine_core.sensible_defaults"])
def test_importing_the_core_or_the_http_tasks_does_not_import_requests(module):
    code = f"import sys, {module}; print('requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sensible_defaults_is_the_seed_path_to_the_same_http_objects() -> None:
    import task_engine_core.http as http
    import task_engine_core.sensible_defaults as old_path
    from task_engine_core import errors

    assert SensibleDefaultsRequests is http.HttpTask
    for name in old_path.__all__:
        assert getattr(old_path, name) is getattr(http, name), name
    # The HTTP errors have one home: the http package, not the core's errors module.
    for name in ("HttpError", "HttpStatusError", "HttpConnectionError", "HttpTimeoutError"):
        assert not hasattr(errors, name) and name not in errors.__all__, name
        assert issubclass(getattr(http, name), errors.TaskEngineError), name


def test_a_missing_requests_names_the_http_extra():
    code = (
        "import sys; sys.modules['requests'] = None\n"
        "from task_engine_core.sensible_defaults import SensibleDefaultsRequests\n"
        "from task_engine_core.http import HttpTask\n"
        "class FetchRuns(HttpTask):\n    pass\n"
        "for task in (SensibleDefaultsRequests(), FetchRuns()):\n"
        "    try:\n        task.session\n"
        "    except ImportError as e:\n        print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # The task that needs it is named, whichever import path its class came from.
    assert out.stdout.splitlines() == [
        f"MissingExtraError HTTP task {name!r} needs the 'requests' package, which is not installed; "
        "install it with: pip install 'task-engine[http]'"
        for name in ("HttpTask", "FetchRuns")
    ]
    assert issubclass(MissingExtraError, ImportError)


def test_secret_query_markers_extend_the_one_list_of_sensitive_words() -> None:
    from task_engine_core._secrets import SENSITIVE_WORDS
    from task_engine_core.http._urls import SECRET_QUERY_MARKERS

    # One owner: a word added to what counts as a secret key is masked in URLs too.
    assert set(SENSITIVE_WORDS) <= set(SECRET_QUERY_MARKERS)
