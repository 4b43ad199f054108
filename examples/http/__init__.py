"""HTTP tasks with sensible defaults, against a small jobs service this example starts on 127.0.0.1.

StartService -> SubmitRun -> WaitForRun -> FetchOutput -> Summary

The service answers the first two polls of /jobs/runs/get with 429 (once with `Retry-After: 1`),
and refuses more than 10 requests per second. WaitForRun keeps below that with a client-side rate
limit of 4 requests per second on the key '/jobs/runs/get', taken for every request it sends.
FetchOutput meets a 404, which is not retried; the task is skippable, so Summary still runs.
No internet is needed: everything talks to 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from examples._local_http import reply, serve
from task_engine_core import RateLimit, rate_limit, register, set_rate_limit, skippable
from task_engine_core.http import HttpTask


class JobsService:
    """A tiny stand-in for a jobs API (run-now, runs/get, runs/get-output) on 127.0.0.1."""

    LIMIT_PER_SECOND = 10

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[float] = []
        self.throttled = 0
        self.polls = 0
        self._lock = threading.Lock()

    def start(self) -> str:
        self.base_url = serve(self.handle) + "/api/2.1/jobs"
        return self.base_url

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path.removeprefix("/api/2.1/jobs")
        with self._lock:
            now = time.monotonic()
            self.requests.append(now)
            if sum(1 for t in self.requests if now - t < 1.0) > self.LIMIT_PER_SECOND:
                self.throttled += 1
                return self.reply(handler, 429, {"error_code": "REQUEST_LIMIT_EXCEEDED"})
            if path == "/run-now":
                return self.reply(handler, 200, {"run_id": 42})
            if path == "/runs/get":
                self.polls += 1
                if self.polls == 1:
                    return self.reply(handler, 429, {"error_code": "TEMPORARILY_UNAVAILABLE"}, {"Retry-After": "1"})
                if self.polls == 2:
                    return self.reply(handler, 429, {"error_code": "TEMPORARILY_UNAVAILABLE"})
                state = "TERMINATED" if self.polls >= 6 else "RUNNING"
                return self.reply(handler, 200, {"run_id": 42, "state": {"life_cycle_state": state}})
            return self.reply(handler, 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"no {path}"})

    reply = staticmethod(reply)


SERVICE = JobsService()
RUN: dict[str, int] = {}

# The client's own limit for the polling endpoint: 4 requests per second, no bursts.
set_rate_limit(RateLimit("/jobs/runs/get", rate=4, burst=1))


class JobsApiTask(HttpTask):
    """Our HTTP tasks: the sensible defaults, and every retry decision printed."""

    read_timeout = 5.0

    def retry_handler(self, error: Exception):
        decision = super().retry_handler(error)
        print(f"{type(self).__name__}: {decision.reason}")
        return decision


@register
def StartService():
    print(f"Jobs service listening on {SERVICE.start()}")


@register(depends_on=StartService)
class SubmitRun(JobsApiTask):
    def perform_task(self):
        RUN["id"] = self.session.post(f"{SERVICE.base_url}/run-now", json={"job_id": 7}).json()["run_id"]
        print(f"SubmitRun: run {RUN['id']} submitted")


@register(depends_on=SubmitRun)
@rate_limit("/jobs/runs/get")
class WaitForRun(JobsApiTask):
    def perform_task(self):
        polls = 0
        while True:
            polls += 1
            body = self.session.get(f"{SERVICE.base_url}/runs/get", params={"run_id": RUN["id"]}).json()
            state = body["state"]["life_cycle_state"]
            print(f"WaitForRun: run {RUN['id']} is {state}")
            if state == "TERMINATED":
                break
        waited = self.attempt_state.waits.get("rate_limit", 0.0)
        print(f"WaitForRun: done after {polls} polls in this attempt; {waited:.2f} s waited for the rate limit in all")


@register(depends_on=WaitForRun)
@skippable
class FetchOutput(JobsApiTask):
    def perform_task(self):
        self.session.get(f"{SERVICE.base_url}/runs/get-output", params={"run_id": RUN["id"], "token": "s3cr3t"})


@register(depends_on=FetchOutput)
def Summary():
    print(
        f"Service saw {len(SERVICE.requests)} requests, {SERVICE.throttled} over its limit of "
        f"{JobsService.LIMIT_PER_SECOND}/s"
    )
