"""PipelineExecutor: runs a validated pipeline sequentially or on worker threads.

One scheduling loop serves both: with one worker a ready task runs inline, with more it is handed
to a thread. Either way the loop only starts a task whose upstreams all succeeded or were skipped,
starts each task once, and stops starting tasks after a failure unless `keep_going` is set.
"""

from __future__ import annotations

import heapq
import os
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from .context import TaskContext, build_context
from .errors import InvalidArgumentError, RunInterrupted
from .events import EventBus, Listener, RetryScheduled, RunFinished, RunStarted, TaskFinished, TaskStarted
from .graph import downstream_map
from .pipeline import Pipeline, ValidatedPipeline, default_pipeline
from .policies.ratelimit import apply_context_rate_limits, check_rate_limit_keys
from .reporters import ConsoleReporter
from .reporters.registry import registered_reporters
from .result import RunResult, TaskResult
from .runtime import OutcomeKind, TaskRun, run_attempt
from .task import TaskState

__all__ = ["PipelineExecutor"]

_FINAL_STATE = {
    OutcomeKind.SUCCEEDED: TaskState.SUCCESS,
    OutcomeKind.FAILED: TaskState.FAILED,
    OutcomeKind.SKIPPED: TaskState.SKIPPED,
}
_SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
_FAILURE = "failure"  # the stop reason of fail-fast; not an interruption


class PipelineExecutor:
    """Run a pipeline: `PipelineExecutor(pipeline).run()` returns a RunResult or raises the failure."""

    def __init__(
        self,
        pipeline: Pipeline | None = None,
        workers: int = 1,
        context: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        keep_going: bool = False,
        *,
        listeners: Iterable[Listener] = (),
        reporters: Iterable[Listener] | None = None,
        show_plan: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        handle_signals: bool = True,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidArgumentError(f"workers={workers!r}: the number of workers must be an integer >= 1")
        self.pipeline = pipeline
        self.workers = workers
        self.context = context
        self.keep_going = keep_going
        self.clock = clock
        self.sleep = sleep
        self.handle_signals = handle_signals
        chosen = [ConsoleReporter(show_plan=show_plan)] if reporters is None else list(reporters)
        self.events = EventBus([*chosen, *registered_reporters(), *listeners])
        self.result: RunResult | None = None
        self._stop_reason: str | None = None

    # -- public ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Validate, run every task it may, and return the result; re-raise a task's failure."""
        pipeline = self.pipeline if self.pipeline is not None else default_pipeline()
        validated = pipeline.validate()
        context = self._build_context()
        self._configure_rate_limits(validated, context)
        self._stop_reason = None
        result = RunResult(
            run_id=uuid.uuid4().hex,
            pipeline=validated.name,
            tasks={name: TaskResult(name) for name in validated.order},
            start=_now(),
            workers=self.workers,
        )
        self.result = result
        started = self.clock()
        self.events.emit(
            RunStarted(result.run_id, validated.name, validated.order, validated.upstream, self.workers, time.time())
        )
        with self._signals_handled():
            self._schedule(validated, context, result)
        self._settle_unstarted(validated, result)
        result.end = _now()
        result.duration = self.clock() - started
        result.interrupted = None if self._stop_reason == _FAILURE else self._stop_reason
        self.events.emit(RunFinished(result.run_id, result))
        self._raise_for(result)
        return result

    def request_stop(self, reason: str = "stop requested") -> None:
        """Start no new task; running tasks finish and the run ends with what it has."""
        self._stop_reason = self._stop_reason or reason

    # -- hooks for subclasses and later features --------------------------------------------
    def priority_keys(self, validated: ValidatedPipeline) -> dict[str, tuple[float, int]]:
        """Sort keys for ready tasks, smallest first: explicit priority, then registration order."""
        keys = {}
        for name, definition in validated.definitions.items():
            explicit = validated.policies[name].priority
            keys[name] = (-(explicit or 0.0), definition.index)
        return keys

    def _build_context(self) -> TaskContext:
        # Hydrated once per run, before any task starts; every task and thread gets this one object.
        return build_context(self.context)

    @staticmethod
    def _configure_rate_limits(validated: ValidatedPipeline, context: TaskContext) -> None:
        # Before any task starts: limits from the context file, then every @rate_limit key must be known.
        apply_context_rate_limits(context)
        check_rate_limit_keys(validated.policies)

    # -- scheduling ---------------------------------------------------------------------------
    def _schedule(self, validated: ValidatedPipeline, context: TaskContext, result: RunResult) -> None:
        keys = self.priority_keys(validated)
        waiting = {name: len(validated.upstream[name]) for name in validated.order}
        downstream = downstream_map(validated.upstream)
        ready = [(keys[name], name) for name in validated.order if not waiting[name]]
        heapq.heapify(ready)

        def finished(task_result: TaskResult) -> None:
            result.tasks[task_result.name] = task_result
            if task_result.state.is_done_ok:
                for child in downstream[task_result.name]:
                    waiting[child] -= 1
                    if not waiting[child]:
                        heapq.heappush(ready, (keys[child], child))
            elif not self.keep_going:
                self.request_stop(_FAILURE)

        execute = lambda name: self._execute(name, validated, context, result.run_id)  # noqa: E731
        if self.workers == 1:
            while ready and self._stop_reason is None:
                finished(execute(heapq.heappop(ready)[1]))
            return
        self._schedule_threads(ready, execute, finished)

    def _schedule_threads(
        self,
        ready: list[tuple[Any, str]],
        execute: Callable[[str], TaskResult],
        finished: Callable[[TaskResult], None],
    ) -> None:
        jobs: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        done: queue.SimpleQueue[TaskResult] = queue.SimpleQueue()

        def work() -> None:
            while (name := jobs.get()) is not None:
                done.put(execute(name))

        threads = [
            threading.Thread(target=work, name=f"task-engine-worker-{i + 1}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        running = 0
        try:
            while True:
                while ready and running < self.workers and self._stop_reason is None:
                    jobs.put(heapq.heappop(ready)[1])
                    running += 1
                if not running:
                    break
                finished(done.get())
                running -= 1
        finally:
            for _ in threads:
                jobs.put(None)

    def _execute(self, name: str, validated: ValidatedPipeline, context: TaskContext, run_id: str) -> TaskResult:
        """Run one task to its final state: attempts, retry delays, events."""
        result = TaskResult(name, worker=threading.current_thread().name, start=_now())
        started = self.clock()
        self.events.emit(TaskStarted(run_id, name, result.worker, time.time()))
        policies = validated.policies[name]
        try:
            task = validated.definitions[name].create()
            run = TaskRun(name, policies, task, run_id, self.events, self.clock, self.sleep)
            attempt = 1
            while True:
                outcome = run_attempt(run, attempt, context)
                if outcome.kind is not OutcomeKind.RETRY:
                    break
                self.events.emit(
                    RetryScheduled(
                        run_id, name, attempt + 1, outcome.max_attempts, outcome.delay, outcome.error, outcome.reason
                    )
                )
                with run.waiting("retry", name, outcome.delay):
                    self.sleep(outcome.delay)
                attempt += 1
            result.state = _FINAL_STATE[outcome.kind]
            result.attempts = attempt
            result.error = outcome.error
            result.reason = outcome.reason
            result.waits = dict(run.waits)
        except BaseException as error:  # noqa: BLE001 - a task's KeyboardInterrupt must not kill the worker
            result.state = TaskState.FAILED
            result.attempts = max(result.attempts, 1)
            result.error = error
            result.reason = f"{type(error).__name__} escaped the task"
            if not isinstance(error, Exception):
                self.request_stop(type(error).__name__)
        result.end = _now()
        result.duration = self.clock() - started
        self.events.emit(TaskFinished(run_id, name, result))
        return result

    @staticmethod
    def _settle_unstarted(validated: ValidatedPipeline, result: RunResult) -> None:
        blocked = (TaskState.FAILED, TaskState.UPSTREAM_FAILED)
        for name in validated.order:
            task_result = result.tasks[name]
            if task_result.start is None:
                upstream_states = (result.tasks[parent].state for parent in validated.upstream[name])
                task_result.state = (
                    TaskState.UPSTREAM_FAILED if any(s in blocked for s in upstream_states) else TaskState.NOT_RUN
                )

    def _raise_for(self, result: RunResult) -> None:
        failures = result.failed
        if failures:
            first = min(failures, key=lambda r: r.end or _now())
            error = first.error
            assert error is not None
            note = f"Task Engine: task {first.name!r} failed on attempt {first.attempts}"
            note += f" ({first.reason})" if first.reason else ""
            if note not in getattr(error, "__notes__", ()):
                error.add_note(note)
            raise error
        if result.interrupted in _SIGNAL_EXIT:
            raise RunInterrupted(
                f"run {result.run_id} of pipeline {result.pipeline!r} stopped by {result.interrupted}; "
                f"finished tasks kept their results"
            )

    # -- signals ---------------------------------------------------------------------------------
    def _signals_handled(self) -> _SignalGuard:
        return _SignalGuard(self if self.handle_signals else None)


class _SignalGuard:
    """While a run is active in the main thread, SIGINT/SIGTERM stop new starts instead of killing it."""

    def __init__(self, executor: PipelineExecutor | None) -> None:
        self.executor = executor
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _SignalGuard:
        if self.executor is None or threading.current_thread() is not threading.main_thread():
            return self
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        assert self.executor is not None
        name = signal.Signals(signum).name
        if self.executor._stop_reason in _SIGNAL_EXIT:
            raise KeyboardInterrupt  # a second signal: stop waiting for running tasks
        self.executor._stop_reason = name

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def exit_code_for_signal(name: str | None) -> int:
    """The conventional exit code of a run stopped by `name` (130 for SIGINT, 143 for SIGTERM)."""
    return _SIGNAL_EXIT.get(name or "", 1)
