"""ProgressReporter: plain lines off a terminal, a live status line on one, waits and ETA."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from task_engine_core import Backoff, Pipeline, PipelineExecutor, retries, skippable
from task_engine_core._policies._store import attach
from task_engine_core.events import RunStarted, TaskStarted, WaitStarted
from task_engine_core.reporters import ProgressReporter
from task_engine_core.reporters._progress import format_seconds

from .fakes import FakeClock

ROOT = Path(__file__).resolve().parent.parent


class RateLimitGuard:
    """Reports a rate-limit wait of `seconds` before every attempt, then lets the attempt run."""

    def __init__(self, clock: FakeClock, seen: list[str], reporter: ProgressReporter) -> None:
        self.clock, self.seen, self.reporter = clock, seen, reporter

    def before_attempt(self, run: object) -> None:
        with run.waiting("rate_limit", "/jobs/runs/get", 0.8):  # type: ignore[attr-defined]
            self.seen.append(self.reporter.status_line())
            self.clock.advance(0.8)


def build(clock: FakeClock) -> Pipeline:
    pipeline = Pipeline("progress")
    calls = {"B": 0}

    @pipeline.register
    def A() -> None:
        clock.advance(1)

    @pipeline.register(depends_on=A)
    @retries(2, backoff=Backoff.constant(2))
    def B() -> None:
        calls["B"] += 1
        if calls["B"] == 1:
            raise ValueError("flaky\nsecond line")
        clock.advance(0.5)

    @pipeline.register(depends_on=B)
    @skippable
    def C() -> None:
        raise RuntimeError("nope")

    @pipeline.register(depends_on=C)
    def D() -> None:
        pass

    return pipeline


def run_with(reporter: ProgressReporter, clock: FakeClock, pipeline: Pipeline) -> None:
    PipelineExecutor(pipeline, reporters=[reporter], clock=clock, sleep=clock.advance).run()


def test_plain_lines_when_not_a_terminal() -> None:
    clock, out = FakeClock(start=100.0), io.StringIO()
    run_with(ProgressReporter(out, clock=clock), clock, build(clock))
    assert out.getvalue().splitlines() == [
        "run 'progress': 4 tasks on 1 worker",
        "[0/4] started A on MainThread",
        "[1/4] A success in 1.00 s",
        "[1/4] started B on MainThread",
        "[1/4] B attempt 1/2 failed (ValueError: flaky second line); retry 2/2 in 2 s",
        "[2/4] B success in 2.50 s after 2 attempts",
        "[2/4] started C on MainThread",
        "[3/4] C skipped in 0.00 s: RuntimeError: nope",
        "[3/4] started D on MainThread",
        "[4/4] D success in 0.00 s",
        "run finished in 3.50 s: 3 success, 1 skipped",
    ]


def test_waiting_tasks_say_why() -> None:
    clock, out, seen = FakeClock(start=100.0), io.StringIO(), []
    reporter = ProgressReporter(out, clock=clock)
    pipeline = Pipeline("limited")

    @pipeline.register
    def Poll() -> None:
        pass

    attach(Poll, guards=(RateLimitGuard(clock, seen, reporter),))
    run_with(reporter, clock, pipeline)
    assert "[0/1] Poll waiting for rate limit '/jobs/runs/get' ~0.8 s" in out.getvalue().splitlines()
    assert seen == [
        "0/1 done | running 1 | failed 0 | skipped 0 | elapsed 0:00 | waiting: Poll (rate limit '/jobs/runs/get' ~0.8 s)"
    ]


def test_status_line_redrawn_in_place_on_a_terminal() -> None:
    clock, out = FakeClock(start=100.0), io.StringIO()
    run_with(ProgressReporter(out, tty=True, refresh=None, clock=clock), clock, build(clock))
    text = out.getvalue()
    assert "\r\x1b[K1/4 done | running 1 | failed 0 | skipped 0 | elapsed 0:01" in text
    assert "\r\x1b[K[3/4] C skipped in 0.00 s: RuntimeError: nope\n" in text
    assert text.endswith("\r\x1b[Krun finished in 3.50 s: 3 success, 1 skipped\n")
    assert "waiting: B (retry ~2.0 s)" in text


def test_eta_from_expected_durations() -> None:
    clock = FakeClock(start=100.0)
    reporter = ProgressReporter(io.StringIO(), expected={"A": 10, "B": 20, "C": 30}, refresh=None, clock=clock)
    reporter(RunStarted("r", "p", ("A", "B", "C", "D"), {}, workers=2))
    reporter(TaskStarted("r", "A", "w1"))
    clock.advance(4)
    # A has 6 s left, B 20, C 30, D unknown so typical (20): 76 s of work on 2 workers.
    assert reporter.eta() == 38.0
    assert "ETA 0:38" in reporter.status_line()
    reporter(WaitStarted("r", "A", "resource", "warehouse", None, ""))
    assert reporter.status_line().endswith("waiting: A (resource 'warehouse')")
    assert ProgressReporter(io.StringIO()).eta() is None


def test_plain_lines_carry_the_eta_when_durations_are_known() -> None:
    clock, out = FakeClock(start=100.0), io.StringIO()
    reporter = ProgressReporter(out, expected={"A": 1, "B": 3, "C": 1, "D": 2}, clock=clock)
    run_with(reporter, clock, build(clock))
    lines = out.getvalue().splitlines()
    assert "[1/4] A success in 1.00 s (ETA 0:06)" in lines
    assert "[3/4] C skipped in 0.00 s: RuntimeError: nope (ETA 0:02)" in lines
    assert "[4/4] D success in 0.00 s" in lines  # nothing left, no ETA


def test_real_terminal_is_detected() -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as stream:
        reporter = ProgressReporter(stream, refresh=None)
        assert reporter.is_tty
        reporter(RunStarted("r", "p", ("A",), {}, workers=1))
        reporter(TaskStarted("r", "A", "w1"))
    shown = b""
    while select.select([master], [], [], 0.5)[0]:  # a pty hands output over in pieces
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end is closed and drained
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    shown = shown.decode()
    assert shown.startswith("\r\x1b[Krun 'p': 1 task on 1 worker\r\n")
    assert "\r\x1b[K0/1 done | running 1 | failed 0 | skipped 0 | elapsed 0:00" in shown


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0, 59.6, 61, 3600 + 62)] == ["0:00", "1:00", "1:01", "1:01:02"]


def test_cli_progress_prints_plain_lines_off_a_terminal() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "task_engine_core", "run", "examples.jobs", "--progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "run 'examples.jobs': 4 tasks on 1 worker"
    assert re.fullmatch(r"\[4/4\] Job1Task2 success in \d+\.\d\d s", lines[-2])
    assert re.fullmatch(r"run finished in \d+\.\d\d s: 4 success", lines[-1])
    assert "Executing" not in done.stdout  # progress replaces the console lines
    assert "Hello from Job2, Task1!" in done.stdout


def test_terminal_status_line_refreshes_while_a_task_runs() -> None:
    import threading
    import time

    out = io.StringIO()
    reporter = ProgressReporter(out, tty=True, refresh=0.01)
    redrawn = threading.Event()
    pipeline = Pipeline("slow")

    @pipeline.register
    def Slow() -> None:
        shown = out.getvalue().count("\r\x1b[K0/1 done | running 1")
        deadline = time.monotonic() + 30
        while out.getvalue().count("\r\x1b[K0/1 done | running 1") < shown + 3 and time.monotonic() < deadline:
            time.sleep(0.005)  # nothing happens in the run: only the ticker can redraw the line
        redrawn.set()

    PipelineExecutor(pipeline, reporters=[reporter]).run()
    assert redrawn.is_set()
    assert out.getvalue().count("\r\x1b[K0/1 done | running 1") >= 4
    assert reporter._ticker is None  # stopped at the end of the run


def test_a_wait_line_reads_as_its_message_and_short_waits_get_none() -> None:
    out = io.StringIO()
    reporter = ProgressReporter(out, refresh=None)
    reporter(RunStarted("r", "p", ("Poll",), {}, workers=1))
    reporter(WaitStarted("r", "Poll", "rate_limit", "/jobs/runs/get", 0.8, "waiting 0.8 s for '/jobs/runs/get'"))
    reporter(WaitStarted("r", "Poll", "rate_limit", "/jobs/runs/get", 0.03, "waiting 0.0 s for '/jobs/runs/get'"))
    reporter(WaitStarted("r", "Poll", "resource", "warehouse", None, ""))
    assert out.getvalue().splitlines()[1:] == [
        "[0/1] Poll waiting 0.8 s for '/jobs/runs/get'",  # was: "waiting for waiting 0.8 s ..."
        "[0/1] Poll waiting for resource 'warehouse'",
    ]


def test_eta_follows_the_critical_path_of_a_chain() -> None:
    clock = FakeClock(start=100.0)
    chain = ("A", "B", "C", "D")
    reporter = ProgressReporter(io.StringIO(), expected=dict.fromkeys(chain, 1.0), refresh=None, clock=clock)
    reporter(RunStarted("r", "p", chain, {"A": (), "B": ("A",), "C": ("B",), "D": ("C",)}, workers=4))
    assert reporter.eta() == 4.0  # one after another, however many workers (was: 1.0)
    reporter(TaskStarted("r", "A", "w1"))
    clock.advance(0.5)
    assert reporter.eta() == 3.5


def test_a_tasks_print_on_a_terminal_starts_on_a_line_of_its_own() -> None:
    import contextlib

    clock, out = FakeClock(start=100.0), io.StringIO()
    pipeline = Pipeline("printing")

    @pipeline.register
    def talks() -> None:
        print("hello from the task")

    with contextlib.redirect_stdout(out):  # the terminal: task output and status line share it
        run_with(ProgressReporter(out, tty=True, refresh=None, clock=clock), clock, pipeline)
        assert sys.stdout is out  # the status-clearing stream is gone after the run
    text = out.getvalue()
    assert "\r\x1b[Khello from the task\n" in text and "elapsed 0:00hello" not in text
