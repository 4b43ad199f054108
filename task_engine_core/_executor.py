"""The executor: runs a validated pipeline sequentially or on worker threads, with the listeners it is given.

One scheduling loop serves both: with one worker it runs in the calling thread, with more each
worker thread runs it over one shared ReadyQueue (`task_engine_core._graph`). Either way a task
starts only after all its upstreams succeeded or were skipped, each task starts once, and no task
starts after a non-skippable failure unless `keep_going` is set. Ready tasks leave the queue by
priority (see `task_engine_core._priority`). Which listeners a run has by default (console,
reporters, statistics) is chosen a layer up, in `task_engine_core._defaults`.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._context import TaskContext
from ._dataflow import NO_INPUTS, TaskInputs, check_inputs_available, unavailable_output
from ._graph import ReadyQueue
from ._hydrators import build_context
from ._lifecycle import TaskLifecycle, may_start
from ._loader import loading_target
from ._mapping import FanOut, items_of, ordered_results
from ._pipeline import Pipeline, TaskDefinition, ValidatedPipeline, collecting_pipeline
from ._policies import TaskPolicies
from ._policies._limiter import apply_context_rate_limits
from ._policies._ratelimit import check_rate_limit_keys
from ._priority import PriorityKey, planned_order, priority_keys, registration_keys, start_ranks
from ._result import RunResult, TaskResult
from ._resume import ResumePoint, find_resume_point
from ._selection import SelectOptions, check_select_options
from ._stats import StatsStore, open_stats_store
from ._task import TaskState
from ._trace_ids import settle_trace_id
from .errors import InvalidArgumentError, MapOverError, RunInterrupted
from .events import EventBus, Listener, RunFinished, RunStarted, TaskFinished, TaskStarted

__all__ = ["ExecutorCore", "RunPlan", "exit_code_for_signal"]

_SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
# A supervisor repeats its signal at machine speed: GNU `timeout` and systemd's control-group kill
# send SIGTERM to the child and again to its process group. The same signal again within this many
# seconds is the same request; a person's second Ctrl-C (or a later `kill`) is a new one.
_REPEAT_WINDOW = {"SIGTERM": 1.0, "SIGINT": 0.1}
_FAILURE = "failure"  # the stop reason of fail-fast; not an interruption


@dataclass(frozen=True)
class RunPlan:
    """What a run would do, decided before any task starts (`PipelineExecutor.plan()`, `--dry-run`)."""

    pipeline: ValidatedPipeline
    #: Every task in the order one worker would start them (kept and left-out tasks included).
    order: tuple[str, ...]
    #: The tasks that would run, in that order.
    to_run: tuple[str, ...]
    #: Tasks that do not run, with the result they get: left out by the selection, or resumed.
    carried: dict[str, TaskResult]
    resumed_from: str | None
    context: TaskContext


class ExecutorCore:
    """The scheduler behind PipelineExecutor, with exactly the listeners it is given.

    It runs a validated pipeline sequentially or on worker threads and emits the events;
    which listeners a run has by default (console, registered reporters, statistics) is chosen
    a layer up, by the facade's PipelineExecutor (`_listeners`). Here `reporters` and
    `listeners` are the run's listeners as given, and `stats` is only read (priority, resume).
    """

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
        stats: StatsStore | str | os.PathLike[str] | bool | None = None,
        priority: bool = True,
        select: SelectOptions | None = None,
        resume: str | bool = False,
        run_task: Callable[[TaskLifecycle], object] | None = None,
        trace_id: str | None = None,
        raise_on_failure: bool = True,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidArgumentError(f"workers={workers!r}: the number of workers must be an integer >= 1")
        self.select = check_select_options(select) if select is not None else None
        if not (resume is True or resume is False or resume is None or (isinstance(resume, str) and resume.strip())):
            raise InvalidArgumentError(f"resume={resume!r}: pass True (the latest recorded run), a run id, or False")
        self.resume = resume.strip() if isinstance(resume, str) else bool(resume)
        self.pipeline = pipeline
        self.workers = workers
        self.context = context
        self.keep_going = keep_going
        self.clock = clock
        self.sleep = sleep
        self.handle_signals = handle_signals
        self.priority = bool(priority)
        #: How a backend runs one started task's lifecycle (None: here, sleeping retry delays).
        self.run_task = run_task
        self.raise_on_failure = bool(raise_on_failure)
        self.stats_store = open_stats_store(stats)
        #: The run's trace id when a backend propagates one (e.g. derived from its run id).
        self.trace_id = trace_id
        self.events = EventBus(self._listeners(reporters, listeners, show_plan))
        self.result: RunResult | None = None
        self._stop_reason: str | None = None
        self._start_lock = threading.Lock()
        self._live: dict[str, TaskResult] = {}
        self._abandoned = False
        self._outputs: dict[str, Any] = {}
        self._fan_outs: dict[str, FanOut] = {}

    def _listeners(
        self, reporters: Iterable[Listener] | None, listeners: Iterable[Listener], show_plan: bool
    ) -> list[Listener]:
        """The run's listeners: `reporters` and `listeners` as given; the layer above adds the defaults."""
        return [*(reporters or ()), *listeners]

    # -- public ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Validate, run every task it may, and return the result; re-raise a task's failure."""
        pipeline = self.pipeline if self.pipeline is not None else collecting_pipeline()
        loading = loading_target()
        if loading is not None:
            # The module is being imported by the CLI (or a DAG / flow entry), which runs the
            # pipeline itself once the import is done: running it here too would run it twice.
            warnings.warn(
                f"PipelineExecutor().run() was called while {loading!r} is being imported to be run; "
                f"this call is skipped, as the pipeline runs once the import is done. Put it under "
                f'`if __name__ == "__main__":` to silence this warning (`python {loading}` still runs it)',
                RuntimeWarning,
                stacklevel=2,
            )
            return RunResult(run_id="", pipeline=pipeline.name, tasks={}, workers=self.workers)
        run_plan, keys = self._prepare()
        validated, plan, carried, context = run_plan.pipeline, run_plan.order, run_plan.carried, run_plan.context
        self._stop_reason = None
        self._live = {}
        self._abandoned = False
        self._fan_outs = {}
        result = RunResult(
            run_id=secrets.token_hex(16),  # 32 hex digits, like uuid4().hex, without importing uuid
            pipeline=validated.name,
            tasks={name: carried.get(name) or TaskResult(name) for name in plan},
            start=_now(),
            workers=self.workers,
            resumed_from=run_plan.resumed_from,
            selection=validated.selection,
        )
        self.result = result
        # Settled here, before any listener hears of the run: listeners read it and never set it.
        result.trace_id = settle_trace_id(self.events.listeners, self.trace_id)
        started = self.clock()
        self.events.emit(
            RunStarted(
                result.run_id,
                validated.name,
                run_plan.to_run,
                validated.upstream,
                self.workers,
                time.time(),
                result.trace_id,
            )
        )
        guard = self._signals_handled()
        with guard:
            try:
                self._schedule(validated, keys, context, result, carried)
            except KeyboardInterrupt:
                # A second Ctrl-C (or one without our handler): stop waiting for running tasks.
                self._stop_reason = self._stop_reason if self._stop_reason in _SIGNAL_EXIT else "SIGINT"
                self._abandon_running(result)
                if not guard.installed:
                    self._finish(validated, result, started)
                    raise
            # Results are written with the handlers still in place: a signal now must not cut the
            # statistics or a report short (every task has its final state already).
            guard.finishing = True
            self._finish(validated, result, started)
        if self.raise_on_failure:
            self._raise_for(result)
        return result

    def plan(self) -> RunPlan:
        """Check and plan a run (definition, context, rate-limit keys, selection, resume); runs and writes nothing."""
        store = self.stats_store
        self.stats_store = store.reader() if store is not None else None
        try:
            return self._prepare()[0]
        finally:
            self.stats_store = store

    def _prepare(self) -> tuple[RunPlan, dict[str, PriorityKey]]:
        pipeline = self.pipeline if self.pipeline is not None else collecting_pipeline()
        if self.select:
            pipeline = pipeline.select(**self.select)  # type: ignore[arg-type]  # check_select_options checked the keywords
        validated = pipeline.validate()
        context = self._build_context()
        self._configure_rate_limits(validated, context)
        point = self._resume_point(validated)
        carried = _carried_results(validated, point)
        _check_inputs_available(validated, carried)
        keys = self.priority_keys(validated)
        order = tuple(planned_order(validated, keys))
        to_run = tuple(name for name in order if name not in carried)
        resumed_from = point.run_id if point is not None else None
        return RunPlan(validated, order, to_run, carried, resumed_from, context), keys

    def _resume_point(self, validated: ValidatedPipeline) -> ResumePoint | None:
        if self.resume is False:
            return None
        run_id = None if self.resume is True else self.resume
        return find_resume_point(self.stats_store, validated.name, validated.upstream, run_id)

    def request_stop(self, reason: str = "stop requested") -> None:
        """Start no new task; running tasks finish and the run ends with what it has."""
        self._stop_reason = self._stop_reason or reason

    # -- hooks for subclasses and later features --------------------------------------------
    def priority_keys(self, validated: ValidatedPipeline) -> dict[str, PriorityKey]:
        """Heap keys for ready tasks, smallest first: explicit priority, critical path, registration order."""
        if not self.priority:
            return registration_keys(validated)
        return priority_keys(validated, self.expected_durations(validated))

    def expected_durations(self, validated: ValidatedPipeline) -> dict[str, float]:
        """Expected seconds per task from the recorded statistics; {} when there are none."""
        if self.stats_store is None:
            return {}
        return self.stats_store.expected_durations(validated.name)

    def _build_context(self) -> TaskContext:
        # Hydrated once per run, before any task starts; every task and thread gets this one object.
        return build_context(self.context)

    @staticmethod
    def _configure_rate_limits(validated: ValidatedPipeline, context: TaskContext) -> None:
        # Before any task starts: limits from the context file, then every @rate_limit key must be known.
        apply_context_rate_limits(context)
        check_rate_limit_keys(validated.policies)

    # -- scheduling ---------------------------------------------------------------------------
    def _schedule(
        self,
        validated: ValidatedPipeline,
        keys: Mapping[str, PriorityKey],
        context: TaskContext,
        result: RunResult,
        carried: Mapping[str, TaskResult] = {},
    ) -> None:
        """The one scheduling loop: each worker takes the best ready task, runs it, releases its children.

        With one worker the loop runs in the calling thread; with more, each worker thread runs
        it and they share one ReadyQueue under one lock. No task is handed from thread to thread,
        so a chain runs on one thread without a context switch per task.
        """
        # Left-out and resumed tasks never start and count as done for their dependents.
        queue = ReadyQueue(validated.upstream, start_ranks(keys), skip=carried)
        queue.prepare()
        definitions, policies, tasks = validated.definitions, validated.policies, result.tasks
        upstream, mapped = validated.upstream, validated.mapped
        execute = self._execute
        run_id = result.run_id
        lock = self._loop_lock = threading.Condition(threading.Lock())
        ended = threading.Event()
        # Task -> output, only the non-None ones; a task that does not run here cannot hand one on.
        outputs: dict[str, Any] = dict(_unavailable_outputs(validated, carried))
        fan_outs: dict[str, FanOut] = {}
        self._outputs, self._fan_outs = outputs, fan_outs

        def loop(worker: str) -> None:
            with lock:
                while True:
                    taken = queue.take() if self._stop_reason is None else None
                    if taken is not None:
                        name, index = taken
                        lock.release()
                        try:
                            if index >= 0:
                                fan = fan_outs[name]
                                task_result: TaskResult | FanOut | None = execute(
                                    fan.names[index],
                                    definitions[name],
                                    policies[name],
                                    context,
                                    run_id,
                                    worker,
                                    fan.inputs(index, outputs),
                                )
                            elif name in mapped:
                                task_result = self._start_mapped(name, mapped[name], upstream[name], run_id, worker)
                            else:
                                parents = upstream[name]
                                inputs = TaskInputs(name, parents, outputs) if parents else NO_INPUTS
                                task_result = execute(
                                    name, definitions[name], policies[name], context, run_id, worker, inputs
                                )
                        finally:
                            lock.acquire()
                        if task_result is None or self._abandoned:
                            # Stopped before it started, or the run no longer waits for it: no release.
                            queue.done(name, release=False, instance=index if index >= 0 else None)
                            continue
                        if isinstance(task_result, FanOut):
                            fan_outs[name] = task_result
                            tasks[name] = task_result.result
                            tasks.update(task_result.placeholders())
                            queue.map_over(name, len(task_result.items))
                            lock.notify(len(task_result.items) - 1)  # this worker takes one itself
                            continue
                        if index >= 0:
                            tasks[task_result.name] = task_result
                            queue.done(name, instance=index)
                            if not fan.record():
                                continue
                            task_result = self._close_mapped(fan, tasks)
                        tasks[name] = task_result
                        if task_result.output is not None:
                            outputs[name] = task_result.output
                        state = task_result.state
                        released = queue.done(name, release=state is TaskState.SUCCESS or state is TaskState.SKIPPED)
                        if released > 1:
                            lock.notify(released - 1)  # this worker takes one itself
                    elif queue.running:
                        lock.wait()
                    else:
                        ended.set()
                        lock.notify_all()
                        return

        if self.workers == 1:
            loop(threading.current_thread().name)
            return
        # More threads than tasks would only idle, unless a fan-out adds tasks at run time.
        for i in range(
            self.workers if validated.mapped else max(1, min(self.workers, len(validated.upstream) - len(carried)))
        ):
            worker = f"task-engine-worker-{i + 1}"
            threading.Thread(target=loop, args=(worker,), name=worker, daemon=True).start()
        ended.wait()  # interruptible: signal handlers run while the main thread waits here

    def _execute(
        self,
        name: str,
        definition: TaskDefinition,
        policies: TaskPolicies,
        context: TaskContext,
        run_id: str,
        worker: str,
        inputs: Mapping[str, Any] = NO_INPUTS,
    ) -> TaskResult | None:
        """Run one task's lifecycle to its final state; None if the run stopped before it could start."""
        lifecycle = TaskLifecycle(
            definition,
            policies,
            run_id,
            self.events,
            context=context,
            worker=worker,
            clock=self.clock,
            sleep=self.sleep,
            settled=self._settled,
            name=name,
            inputs=inputs,
        )
        runner = self.run_task
        with self._start_lock:
            # Checked under the lock that also sets a failure's stop: no task starts after a
            # failed task's TaskFinished.
            if not self._may_start_now():
                return None
            self._live[name] = lifecycle.result
            if runner is None:
                lifecycle.start()
        if runner is None:
            lifecycle.run_to_end()
        else:
            try:
                runner(lifecycle)
            except BaseException as error:  # noqa: BLE001 - the backend's own failure is the task's
                if not lifecycle.finished:
                    lifecycle.fail(error)
        if not lifecycle.finished:
            lifecycle.finish()
        return lifecycle.result

    def _may_start_now(self) -> bool:
        """May a task that has not started start now (call with `_start_lock` held)?"""
        reason = self._stop_reason
        return reason is None or may_start(
            started=False, failed=reason == _FAILURE, keep_going=self.keep_going, stopping=reason != _FAILURE
        )

    def _settled(self, lifecycle: TaskLifecycle) -> None:
        """A task has its final result (TaskFinished follows): stop the run on a failure or an escaped signal."""
        escaped = lifecycle.escaped
        if escaped is not None and not isinstance(escaped, Exception):
            self.request_stop(type(escaped).__name__)
        with self._start_lock:
            self._live.pop(lifecycle.result.name, None)
            if lifecycle.result.state is TaskState.FAILED and not self.keep_going:
                self.request_stop(_FAILURE)

    def _start_mapped(
        self, name: str, over: str, upstream: tuple[str, ...], run_id: str, worker: str
    ) -> FanOut | TaskResult | None:
        """Start mapped task `name`: its FanOut, or its final result when no instance is to run; None if stopped."""
        events = self.events
        with self._start_lock:
            if not self._may_start_now():
                return None
            result = TaskResult(name, worker=worker, start=datetime.now(UTC))
            if events.wants(TaskStarted):
                events.emit(TaskStarted(run_id, name, worker, time.time(), self.trace_id))
        started = self.clock()
        assert self.result is not None
        if self.result.tasks[over].state is TaskState.SKIPPED:
            # Like a skipped upstream of an Airflow mapped task: nothing to map over, so skip too.
            result.state = TaskState.SKIPPED
            result.reason = f"upstream {over!r} was skipped: nothing to map over"
        else:
            try:
                items = items_of(name, over, self._outputs.get(over))
            except MapOverError as error:
                result.state = TaskState.FAILED
                result.error = error
                result.reason = "its upstream's output is not a list"
            else:
                if items:
                    return FanOut(result, over, upstream, items, started)
                result.state = TaskState.SUCCESS
                result.output = []
        return self._finish_mapped(result, started)

    def _close_mapped(self, fan: FanOut, tasks: Mapping[str, TaskResult]) -> TaskResult:
        """Roll a mapped task up from its ended instances and report it finished."""
        fan.roll_up(tasks, datetime.now(UTC), None)
        return self._finish_mapped(fan.result, fan.started)

    def _finish_mapped(self, result: TaskResult, started: float) -> TaskResult:
        result.end = result.end or datetime.now(UTC)
        result.duration = self.clock() - started
        with self._start_lock:
            if result.state is TaskState.FAILED and not self.keep_going:
                self.request_stop(_FAILURE)
        if self.events.wants(TaskFinished):
            self.events.emit(TaskFinished(self.result.run_id if self.result else "", result.name, result))
        return result

    def _abandon_running(self, result: RunResult) -> None:
        """Give tasks still running a FAILED result of their own; the run no longer waits for them."""
        lock = getattr(self, "_loop_lock", None) or threading.Condition()
        with lock, self._start_lock:
            self._abandoned = True
            for name, live in self._live.items():
                result.tasks[name] = TaskResult(
                    name,
                    TaskState.FAILED,
                    attempts=max(live.attempts, 1),
                    start=live.start,
                    end=_now(),
                    error=RunInterrupted(
                        f"task {name!r} was still running when run {result.run_id} stopped waiting for it "
                        f"({self._stop_reason}); it was abandoned"
                    ),
                    reason="abandoned: the run was interrupted while it ran",
                    worker=live.worker,
                )
            self._live = {}

    def _finish(self, validated: ValidatedPipeline, result: RunResult, started: float) -> None:
        fan_outs = self._fan_outs
        for fan in fan_outs.values():
            if fan.open:  # the run stopped before every instance ended: unstarted ones stay NOT_RUN
                self._close_mapped(fan, result.tasks)
        if fan_outs:
            result.tasks = ordered_results(result.tasks, fan_outs)
        self._settle_unstarted(validated, result)
        result.end = _now()
        result.duration = self.clock() - started
        result.interrupted = None if self._stop_reason == _FAILURE else self._stop_reason
        self.events.emit(RunFinished(result.run_id, result))

    @staticmethod
    def _settle_unstarted(validated: ValidatedPipeline, result: RunResult) -> None:
        blocked = (TaskState.FAILED, TaskState.UPSTREAM_FAILED)
        tasks = result.tasks
        for name in validated.order:  # upstreams first, so a block propagates down the graph
            task_result = tasks[name]
            if task_result.start is None and not (task_result.excluded or task_result.resumed_from):
                upstream_failed = any(tasks[parent].state in blocked for parent in validated.upstream[name])
                task_result.state = TaskState.UPSTREAM_FAILED if upstream_failed else TaskState.NOT_RUN

    def _raise_for(self, result: RunResult) -> None:
        failures = result.failed
        if result.interrupted in _SIGNAL_EXIT:
            # The user asked the run to stop: that, not a failure it may have caused, is the outcome.
            failed = f"; {len(failures)} task(s) failed" if failures else ""
            raise RunInterrupted(
                f"run {result.run_id} of pipeline {result.pipeline!r} stopped by {result.interrupted}; "
                f"finished tasks kept their results{failed}"
            )
        first = result.first_failure
        if first is not None:
            error = first.error
            assert error is not None
            note = f"Task Engine: task {first.name!r} failed on attempt {first.attempts}"
            note += f" ({first.reason})" if first.reason else ""
            if note not in getattr(error, "__notes__", ()):
                error.add_note(note)
            raise error

    # -- signals ---------------------------------------------------------------------------------
    def _signals_handled(self) -> _SignalGuard:
        return _SignalGuard(self if self.handle_signals else None)


def _carried_results(validated: ValidatedPipeline, point: ResumePoint | None) -> dict[str, TaskResult]:
    """The results of tasks that will not start: left out by the selection, or kept from `point`."""
    carried = {
        name: TaskResult(name, TaskState.NOT_RUN, excluded=True, reason=f"not selected ({validated.selection})")
        for name in validated.excluded
    }
    if point is not None:
        for name, (state, origin) in point.kept.items():
            if name not in carried:
                carried[name] = TaskResult(
                    name, state, resumed_from=origin, reason=f"resumed: ended {state.value} in run {origin}"
                )
    return carried


def _unavailable_outputs(validated: ValidatedPipeline, carried: Mapping[str, TaskResult]) -> dict[str, Any]:
    """The outputs this run cannot have: of tasks left out, or kept SUCCESS by a resume (a kept skip had none)."""
    return {
        name: unavailable_output(name, result.resumed_from, validated.selection)
        for name, result in carried.items()
        if result.state is not TaskState.SKIPPED
    }


def _check_inputs_available(validated: ValidatedPipeline, carried: Mapping[str, TaskResult]) -> None:
    """Refuse a run in which a task that runs is sure to read the output of one that does not (see README)."""
    if not carried:
        return
    unavailable = _unavailable_outputs(validated, carried)
    for name in validated.order:
        if name in carried:
            continue
        parents = [parent for parent in validated.upstream[name] if parent in unavailable]
        if parents:
            definition = validated.definitions[name]
            check_inputs_available(
                name,
                definition.target if definition.is_function else None,
                validated.mapped.get(name),
                {parent: unavailable[parent] for parent in parents},
            )


class _SignalGuard:
    """While a run is active in the main thread, SIGINT/SIGTERM stop new starts instead of killing it."""

    def __init__(self, executor: ExecutorCore | None) -> None:
        self.executor = executor
        self.previous: dict[int, Any] = {}
        self.installed = False
        self.finishing = False
        self._signalled_while_finishing = False
        self._last_signal: tuple[str, float] | None = None

    def __enter__(self) -> _SignalGuard:
        if self.executor is None or threading.current_thread() is not threading.main_thread():
            return self
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._handle)
        self.installed = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        assert self.executor is not None
        name = signal.Signals(signum).name
        now = time.monotonic()
        last, self._last_signal = self._last_signal, (name, now)
        if last is not None and last[0] == name and now - last[1] < _REPEAT_WINDOW.get(name, 0.0):
            return  # the supervisor's copy of the signal just handled: one request, not a second
        if self.finishing:
            # The run is over and its results are being written: let that finish; a second
            # signal means the user will not wait for it.
            if self._signalled_while_finishing:
                raise KeyboardInterrupt
            self._signalled_while_finishing = True
            return
        if self.executor._stop_reason in _SIGNAL_EXIT:
            raise KeyboardInterrupt  # a second signal: stop waiting for running tasks
        self.executor._stop_reason = name

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _now() -> datetime:
    return datetime.now(UTC)


def exit_code_for_signal(name: str | None) -> int:
    """The conventional exit code of a run stopped by `name` (130 for SIGINT, 143 for SIGTERM)."""
    return _SIGNAL_EXIT.get(name or "", 1)
