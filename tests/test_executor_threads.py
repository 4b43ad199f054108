"""The thread executor: ordering, exactly-once, fail-fast / keep-going states, signals.

Property tests draw random DAGs (registered in random order, dependencies named by string) and a
random behaviour per task, then check the run against a model of the contract.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from task_engine_core import Pipeline, PipelineExecutor, SkipTask, TaskState, retries, skippable
from task_engine_core._priority import planned_order, priority_keys
from task_engine_core.errors import InvalidArgumentError
from task_engine_core.events import RunStarted, TaskFinished, TaskStarted

ROOT = Path(__file__).resolve().parents[1]
OK_STATES = (TaskState.SUCCESS, TaskState.SKIPPED)
BLOCKED_STATES = (TaskState.FAILED, TaskState.UPSTREAM_FAILED)

# Behaviours: what a task does, and the (state, attempts) it ends with when it runs.
BEHAVIOURS = {
    "ok": (TaskState.SUCCESS, 1),
    "fail": (TaskState.FAILED, 1),
    "skip": (TaskState.SKIPPED, 1),  # raises SkipTask
    "flaky": (TaskState.SUCCESS, 2),  # fails once, retries(3)
    "exhausted": (TaskState.FAILED, 2),  # always fails, retries(2)
    "skippable": (TaskState.SKIPPED, 2),  # always fails, retries(2) + skippable
}


@dataclass
class Drawn:
    """One random pipeline: registration order, upstreams, and per task a behaviour, a nap, a priority."""

    registration: list[str]
    upstream: dict[str, list[str]]
    behaviour: dict[str, str]
    naps: dict[str, float]
    priorities: dict[str, float | None]


@st.composite
def dags(draw: st.DrawFn, max_tasks: int = 16) -> Drawn:
    count = draw(st.integers(min_value=1, max_value=max_tasks))
    names = [f"t{i}" for i in range(count)]  # t0..tn in a topological order
    upstream = {
        name: sorted(draw(st.sets(st.sampled_from(names[:i]), max_size=3))) if i else [] for i, name in enumerate(names)
    }
    registration = draw(st.permutations(names))
    weights = st.sampled_from(["ok"] * 6 + ["fail", "skip", "flaky", "exhausted", "skippable"])
    behaviour = {name: draw(weights) for name in names}
    naps = {name: draw(st.sampled_from([0.0, 0.0, 0.0, 0.001, 0.003])) for name in names}
    priorities = {name: draw(st.sampled_from([None, None, None, -1.0, 2.0])) for name in names}
    return Drawn(list(registration), upstream, behaviour, naps, priorities)


class Recorder:
    """A listener that keeps every event in emission order (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, event: object) -> None:
        with self._lock:
            self.events.append(event)

    def index(self, kind: type, task: str) -> list[int]:
        return [i for i, e in enumerate(self.events) if type(e) is kind and e.task == task]


def build(drawn: Drawn, calls: Counter[str], lock: threading.Lock) -> Pipeline:
    pipeline = Pipeline("drawn")
    for name in drawn.registration:
        kind, nap = drawn.behaviour[name], drawn.naps[name]

        def body(name: str = name, kind: str = kind, nap: float = nap) -> None:
            with lock:
                calls[name] += 1
                attempt = calls[name]
            if nap:
                time.sleep(nap)
            if kind == "fail" or kind in ("exhausted", "skippable"):
                raise RuntimeError(f"{name} fails on attempt {attempt}")
            if kind == "skip":
                raise SkipTask(f"{name} has nothing to do")
            if kind == "flaky" and attempt == 1:
                raise RuntimeError(f"{name} fails once")

        body.__name__ = name
        if kind == "flaky":
            body = retries(3, backoff=0)(body)
        elif kind == "exhausted":
            body = retries(2, backoff=0)(body)
        elif kind == "skippable":
            body = skippable(retries(2, backoff=0)(body))
        pipeline.add(body, name=name, depends_on=drawn.upstream[name], priority=drawn.priorities[name])
    return pipeline


def run_drawn(
    drawn: Drawn, workers: int, keep_going: bool
) -> tuple[dict, Counter[str], Recorder, BaseException | None]:
    calls: Counter[str] = Counter()
    recorder = Recorder()
    pipeline = build(drawn, calls, threading.Lock())
    executor = PipelineExecutor(
        pipeline, workers=workers, keep_going=keep_going, reporters=[], listeners=[recorder], stats=False
    )
    raised: BaseException | None = None
    try:
        executor.run()
    except RuntimeError as error:
        raised = error
    assert executor.result is not None
    finals = {name: (r.state, r.attempts) for name, r in executor.result.tasks.items()}
    return finals, calls, recorder, raised


def keep_going_model(drawn: Drawn) -> dict[str, tuple[TaskState, int]]:
    """With keep_going every task whose upstreams all ended OK runs; the rest are UPSTREAM_FAILED."""
    finals: dict[str, tuple[TaskState, int]] = {}
    for name in sorted(drawn.upstream, key=lambda n: int(n[1:])):
        if all(finals[parent][0] in OK_STATES for parent in drawn.upstream[name]):
            finals[name] = BEHAVIOURS[drawn.behaviour[name]]
        else:
            finals[name] = (TaskState.UPSTREAM_FAILED, 0)
    return finals


def sequential_fail_fast_model(drawn: Drawn) -> dict[str, tuple[TaskState, int]]:
    """One worker, fail-fast: run in heap order (explicit priority, then registration) until the first failure."""
    pipeline = build(drawn, Counter(), threading.Lock())
    validated = pipeline.validate()
    finals: dict[str, tuple[TaskState, int]] = {}
    stopped = False
    for name in planned_order(validated, priority_keys(validated)):
        parents = drawn.upstream[name]
        if stopped or not all(finals[p][0] in OK_STATES for p in parents):
            continue
        finals[name] = BEHAVIOURS[drawn.behaviour[name]]
        stopped = finals[name][0] is TaskState.FAILED
    for name in validated.order:
        if name not in finals:
            blocked = any(finals[p][0] in BLOCKED_STATES for p in drawn.upstream[name])
            finals[name] = (TaskState.UPSTREAM_FAILED if blocked else TaskState.NOT_RUN, 0)
    return finals


def check_common(
    drawn: Drawn, finals: dict, calls: Counter[str], recorder: Recorder, raised: BaseException | None
) -> None:
    """Invariants of every run: exactly once, order, states consistent with behaviours and upstreams."""
    assert list(finals) == list(recorder.events[0].plan)  # RunResult.tasks in plan order
    assert isinstance(recorder.events[0], RunStarted)
    for name, (state, attempts) in finals.items():
        started = recorder.index(TaskStarted, name)
        finished = recorder.index(TaskFinished, name)
        assert calls[name] == attempts, name  # perform_task ran exactly `attempts` times
        if state in (TaskState.UPSTREAM_FAILED, TaskState.NOT_RUN):
            assert started == [] and finished == [] and attempts == 0, name
            blocked = any(finals[p][0] in BLOCKED_STATES for p in drawn.upstream[name])
            assert (state is TaskState.UPSTREAM_FAILED) == blocked, name
            continue
        assert len(started) == 1 and len(finished) == 1, name  # exactly once
        assert (state, attempts) == BEHAVIOURS[drawn.behaviour[name]], name
        for parent in drawn.upstream[name]:
            assert finals[parent][0] in OK_STATES, (parent, name)
            assert recorder.index(TaskFinished, parent)[0] < started[0], (parent, name)
    failed = [name for name, (state, _) in finals.items() if state is TaskState.FAILED]
    assert (raised is not None) == bool(failed)
    if raised is not None:
        assert any(str(raised).startswith(f"{name} fails") for name in failed)


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(dags())
def test_keep_going_gives_the_model_states_on_one_and_on_eight_workers(drawn: Drawn) -> None:
    expected = keep_going_model(drawn)
    one = run_drawn(drawn, workers=1, keep_going=True)
    eight = run_drawn(drawn, workers=8, keep_going=True)
    for finals, calls, recorder, raised in (one, eight):
        check_common(drawn, finals, calls, recorder, raised)
        assert finals == expected
    assert one[0] == eight[0]


@PROPERTY_SETTINGS
@given(dags())
def test_fail_fast_starts_nothing_after_a_failure(drawn: Drawn) -> None:
    finals, calls, recorder, raised = run_drawn(drawn, workers=1, keep_going=False)
    check_common(drawn, finals, calls, recorder, raised)
    assert finals == sequential_fail_fast_model(drawn)

    finals, calls, recorder, raised = run_drawn(drawn, workers=8, keep_going=False)
    check_common(drawn, finals, calls, recorder, raised)
    failures = [
        i for i, e in enumerate(recorder.events) if type(e) is TaskFinished and e.result.state is TaskState.FAILED
    ]
    if failures:
        later_starts = [e.task for e in recorder.events[failures[0] :] if type(e) is TaskStarted]
        assert later_starts == []
    else:  # nothing failed: everything ran, as with keep_going
        assert finals == keep_going_model(drawn)


def test_tasks_overlap_on_several_workers() -> None:
    pipeline = Pipeline("overlap")
    barrier = threading.Barrier(3, timeout=10)
    for name in ("a", "b", "c"):
        pipeline.add(lambda: barrier.wait(), name=name)  # passes only if all three run at once
    result = PipelineExecutor(pipeline, workers=3, reporters=[], stats=False).run()
    assert result.states() == {"a": TaskState.SUCCESS, "b": TaskState.SUCCESS, "c": TaskState.SUCCESS}
    assert len({r.worker for r in result.tasks.values()}) == 3
    assert all(r.worker.startswith("task-engine-worker-") for r in result.tasks.values())


def test_running_tasks_finish_after_a_failure_and_the_rest_do_not_start() -> None:
    pipeline = Pipeline("fail-fast")
    slow_started = threading.Event()

    def slow() -> None:
        slow_started.set()
        time.sleep(0.5)  # long enough for `broken` to fail while this still runs

    def broken() -> None:
        slow_started.wait(5)
        raise ValueError("broken on purpose")

    pipeline.add(slow, name="slow")
    pipeline.add(broken, name="broken")
    pipeline.add(lambda: None, name="after_slow", depends_on=["slow"])
    pipeline.add(lambda: None, name="after_broken", depends_on=["broken"])
    pipeline.add(lambda: None, name="independent")
    executor = PipelineExecutor(pipeline, workers=2, reporters=[], stats=False)
    with pytest.raises(ValueError) as caught:
        executor.run()
    assert str(caught.value) == "broken on purpose"
    assert executor.result is not None
    assert executor.result.states() == {
        "slow": TaskState.SUCCESS,
        "broken": TaskState.FAILED,
        "after_slow": TaskState.NOT_RUN,
        "after_broken": TaskState.UPSTREAM_FAILED,
        "independent": TaskState.NOT_RUN,
    }
    assert caught.value.__notes__ == ["Task Engine: task 'broken' failed on attempt 1 (no retries configured)"]


def test_keep_going_runs_independent_branches_on_threads() -> None:
    pipeline = Pipeline("keep-going")
    pipeline.add(lambda: 1 / 0, name="broken")
    pipeline.add(lambda: None, name="child", depends_on=["broken"])
    pipeline.add(lambda: None, name="grandchild", depends_on=["child"])
    for i in range(5):
        pipeline.add(lambda: time.sleep(0.001), name=f"free{i}")
    executor = PipelineExecutor(pipeline, workers=4, keep_going=True, reporters=[], stats=False)
    with pytest.raises(ZeroDivisionError):
        executor.run()
    assert executor.result is not None
    states = executor.result.states()
    assert states.pop("broken") is TaskState.FAILED
    assert states.pop("child") is TaskState.UPSTREAM_FAILED
    assert states.pop("grandchild") is TaskState.UPSTREAM_FAILED
    assert set(states.values()) == {TaskState.SUCCESS}


def test_request_stop_from_another_thread_starts_nothing_more() -> None:
    pipeline = Pipeline("stop")
    executor: PipelineExecutor

    def first() -> None:
        executor.request_stop("enough")

    pipeline.add(first, name="first")
    pipeline.add(lambda: None, name="second", depends_on=["first"])
    executor = PipelineExecutor(pipeline, workers=2, reporters=[], stats=False)
    result = executor.run()
    assert result.states() == {"first": TaskState.SUCCESS, "second": TaskState.NOT_RUN}
    assert result.interrupted == "enough"
    assert not result.succeeded


@pytest.mark.parametrize("workers", [0, -1, True, 1.5, "2"])
def test_workers_must_be_a_positive_integer(workers: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        PipelineExecutor(Pipeline("w"), workers=workers)  # type: ignore[arg-type]
    assert str(caught.value) == f"workers={workers!r}: the number of workers must be an integer >= 1"


# -- signals: a real process, a real signal ---------------------------------------------------

SIGNAL_PIPELINE = textwrap.dedent(
    """
    import os, pathlib, time
    from task_engine_core import Pipeline

    pipeline = Pipeline("signalled")
    marks = pathlib.Path(os.environ["MARKS"])

    def slow():
        (marks / "slow.started").touch()
        deadline = time.monotonic() + float(os.environ.get("SLOW", "1.0"))
        while time.monotonic() < deadline:  # short sleeps: a signal handler runs between them
            time.sleep(0.01)
        (marks / "slow.done").touch()

    pipeline.add(slow, name="slow")
    pipeline.add(lambda: None, name="after", depends_on=["slow"])
    """
)


def start_cli(tmp_path: Path, workers: int, slow: float = 1.0) -> tuple[subprocess.Popen[str], Path, Path]:
    target = tmp_path / "signalled.py"
    target.write_text(SIGNAL_PIPELINE)
    marks = tmp_path / "marks"
    marks.mkdir()
    database = tmp_path / "stats.sqlite3"
    env = dict(
        os.environ,
        MARKS=str(marks),
        SLOW=str(slow),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "task_engine_core",
            "run",
            str(target),
            "--workers",
            str(workers),
            "--stats",
            str(database),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (marks / "slow.started").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the slow task never started"
        time.sleep(0.01)
    return process, marks, database


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_lets_running_tasks_finish_records_stats_and_sets_the_exit_code(
    tmp_path: Path, workers: int, signum: int, code: int
) -> None:
    process, marks, database = start_cli(tmp_path, workers, slow=1.0)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert process.returncode == code, err
    assert (marks / "slow.done").exists()  # the running task was allowed to finish
    assert f"stopped by {name}; finished tasks kept their results" in err
    assert "Traceback" not in err
    assert out.splitlines() == ["Executing slow"]
    with sqlite3.connect(database) as connection:
        runs = connection.execute("SELECT pipeline, outcome, interrupted FROM runs").fetchall()
        tasks = dict(connection.execute("SELECT task, state FROM task_runs").fetchall())
    assert runs == [("signalled", "interrupted", name)]
    assert tasks == {"slow": "success", "after": "not_run"}


@pytest.mark.parametrize(
    ("workers", "reason"),
    [
        (2, "abandoned: the run was interrupted while it ran"),
        (1, "KeyboardInterrupt escaped the task"),  # the main thread runs the task and gets the interrupt
    ],
)
def test_a_second_signal_stops_waiting_for_the_running_task(tmp_path: Path, workers: int, reason: str) -> None:
    process, marks, database = start_cli(tmp_path, workers=workers, slow=30.0)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert not (marks / "slow.done").exists()
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT task, state, reason FROM task_runs ORDER BY task").fetchall()
    assert rows == [("after", "upstream_failed", None), ("slow", "failed", reason)]


def test_without_signal_handlers_a_keyboard_interrupt_is_re_raised_after_settling() -> None:
    import _thread

    pipeline = Pipeline("interrupted")
    release = threading.Event()

    def interrupting() -> None:
        _thread.interrupt_main()  # KeyboardInterrupt in the main thread, which waits for the workers
        release.wait(10)

    pipeline.add(interrupting, name="interrupting")
    pipeline.add(lambda: None, name="after", depends_on=["interrupting"])
    finished: list[object] = []
    executor = PipelineExecutor(
        pipeline, workers=2, reporters=[], stats=False, handle_signals=False, listeners=[finished.append]
    )
    try:
        with pytest.raises(KeyboardInterrupt):
            executor.run()
    finally:
        release.set()
    assert executor.result is not None
    assert executor.result.states() == {"interrupting": TaskState.FAILED, "after": TaskState.UPSTREAM_FAILED}
    assert executor.result.tasks["interrupting"].reason == "abandoned: the run was interrupted while it ran"
    assert executor.result.interrupted == "SIGINT"
    assert type(finished[-1]).__name__ == "RunFinished"


@pytest.mark.parametrize("workers", [1, 3])
def test_a_signal_repeated_by_a_supervisor_is_one_request(tmp_path: Path, workers: int) -> None:
    # What GNU `timeout` does: SIGTERM to the child, then to its process group (the child again).
    process, marks, database = start_cli(tmp_path, workers, slow=1.5)
    os.kill(process.pid, signal.SIGTERM)
    time.sleep(0.05)  # the copy arrives after the first was handled (two at once Python merges into one)
    os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert (marks / "slow.done").exists()  # the running task was let finish
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT task, state FROM task_runs ORDER BY task").fetchall()
    assert rows == [("after", "not_run"), ("slow", "success")]
