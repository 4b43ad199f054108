"""List Databricks job runs, then poll each one through a rate-limited fan-out.

StartWorkspace -> ListRuns -> PollRun[0], PollRun[1], ... -> Report

A stand-in for the Databricks Jobs API 2.1 (`/jobs/runs/list`, `/jobs/runs/get`) runs on
127.0.0.1, so no workspace and no internet are needed; point `HOST` at a real workspace and add a
token to talk to one. `PollRun` is mapped over the output of `ListRuns` (`map_over=ListRuns`): it
runs once per run id, decided at run time. Every instance takes its own token of
'/jobs/runs/get' (4 per second, burst 2) and has its own retries: the workspace answers the
first poll of run 1003 with 429, and only that instance retries. The workspace refuses more than
6 requests per second; the client-side limit keeps every instance below that.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from examples._local_http import reply, serve
from task_engine_core import RateLimit, rate_limit, register, set_rate_limit
from task_engine_core.sensible_defaults import SensibleDefaultsRequests

RUNS = {
    1001: ("TERMINATED", "SUCCESS"),
    1002: ("TERMINATED", "FAILED"),
    1003: ("TERMINATED", "SUCCESS"),
    1004: ("RUNNING", None),
    1005: ("TERMINATED", "SUCCESS"),
}


class Workspace:
    """A tiny stand-in for a Databricks workspace's Jobs API on 127.0.0.1."""

    LIMIT_PER_SECOND = 6

    def __init__(self) -> None:
        self.host = ""
        self.requests: list[float] = []
        self.throttled = 0
        self.polled: dict[int, int] = {}
        self._lock = threading.Lock()

    def start(self) -> str:
        self.host = serve(self.handle)
        return self.host

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        with self._lock:
            now = time.monotonic()
            self.requests.append(now)
            if sum(1 for t in self.requests if now - t < 1.0) > self.LIMIT_PER_SECOND:
                self.throttled += 1
                return self.reply(handler, 429, {"error_code": "REQUEST_LIMIT_EXCEEDED"})
            if url.path == "/api/2.1/jobs/runs/list":
                runs = [{"run_id": run_id, "job_id": 7} for run_id in RUNS]
                return self.reply(handler, 200, {"runs": runs, "has_more": False})
            if url.path == "/api/2.1/jobs/runs/get":
                run_id = int(query["run_id"][0])
                self.polled[run_id] = self.polled.get(run_id, 0) + 1
                if run_id == 1003 and self.polled[run_id] == 1:
                    return self.reply(handler, 429, {"error_code": "TEMPORARILY_UNAVAILABLE"}, {"Retry-After": "1"})
                life_cycle, result = RUNS[run_id]
                state = {"life_cycle_state": life_cycle, **({"result_state": result} if result else {})}
                return self.reply(handler, 200, {"run_id": run_id, "state": state})
            return self.reply(handler, 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no {url.path}"})

    reply = staticmethod(reply)


WORKSPACE = Workspace()

# The client's own limit for polling: 4 requests per second, bursts of 2.
set_rate_limit(RateLimit("/jobs/runs/get", rate=4, burst=2))


@register
def StartWorkspace():
    host = WORKSPACE.start()
    print("Workspace stand-in listening on 127.0.0.1")
    return host


@register(depends_on=StartWorkspace)
class ListRuns(SensibleDefaultsRequests):
    def perform_task(self):
        host = self.inputs["StartWorkspace"]
        runs = self.session.get(f"{host}/api/2.1/jobs/runs/list", params={"job_id": 7}).json()["runs"]
        print(f"ListRuns: {len(runs)} runs")
        return [run["run_id"] for run in runs]  # the output PollRun fans out over


@register(depends_on=[StartWorkspace, ListRuns], map_over=ListRuns)
@rate_limit("/jobs/runs/get")
class PollRun(SensibleDefaultsRequests):
    read_timeout = 5.0

    def perform_task(self):
        host, run_id = self.inputs["StartWorkspace"], self.inputs["ListRuns"]  # one run id per instance
        state = self.session.get(f"{host}/api/2.1/jobs/runs/get", params={"run_id": run_id}).json()["state"]
        # One write per line: instances print from several threads, and print() writes the newline apart.
        print(f"PollRun: run {run_id} is {state['life_cycle_state']}\n", end="")
        return {"run_id": run_id, "state": state["life_cycle_state"], "result": state.get("result_state")}

    def retry_handler(self, error: Exception):
        decision = super().retry_handler(error)
        # The attempt state is this instance's: its own name, attempts and retry.
        print(f"{self.attempt_state.name}: {decision.reason}\n", end="")
        return decision


@register(depends_on=PollRun)
def Report(PollRun):
    # PollRun's output for its downstreams: the instances' outputs, in the order ListRuns returned.
    failed = [run["run_id"] for run in PollRun if run["result"] == "FAILED"]
    running = [run["run_id"] for run in PollRun if run["state"] != "TERMINATED"]
    print(f"Report: {len(PollRun)} runs, failed: {failed}, still running: {running}")
    print(f"Workspace saw {len(WORKSPACE.requests)} requests, {WORKSPACE.throttled} over its limit")
    return {"failed": failed, "running": running}
