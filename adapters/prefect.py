"""Compile a Task Engine pipeline into a Prefect 3 flow: one Prefect task per engine task.

Scheduling (ready order, priority, fail-fast / keep-going, UPSTREAM_FAILED and NOT_RUN), events
and results are the core executor's own; this module only replaces its attempt loop
(`PipelineExecutor._run_attempts`) with one Prefect task run per task. Inside that task run every
Prefect try is one call of the core's `run_attempt`, and its outcome is mapped onto Prefect:

- another attempt follows -> the attempt raises, `retry_condition_fn` says yes, and Prefect waits
  exactly the core's delay (`AwaitingRetry`) before its next try; `retries = attempts - 1`;
- the task finally failed -> the attempt raises and the task run ends `Failed`; the flow raises
  the task's own exception, so the flow run ends `Failed`;
- the task was skipped -> the task run ends `Completed` under the name ``Skipped`` (a
  COMPLETED-type state), so dependents start and the flow run ends `Completed`.
"""

from __future__ import annotations

import contextvars
import copy
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from task_engine_core import Pipeline, PipelineExecutor, RunResult, TaskContext
from task_engine_core.context import (
    Hydrated,
    HydrationRequest,
    build_context,
    deep_merge,
    register_hydrator,
    registered_hydrators,
)
from task_engine_core._secrets import error_text
from task_engine_core.errors import (
    InvalidArgumentError,
    MissingExtraError,
    TaskEngineError,
)
from task_engine_core.events import Listener, RetryScheduled, WaitFinished, WaitStarted
from task_engine_core.pipeline import ValidatedPipeline, default_pipeline
from task_engine_core.runtime import AttemptOutcome, OutcomeKind, TaskRun, run_attempt
from task_engine_core.stats import StatsStore

try:
    from prefect import Flow, Task, flow, task
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.futures import PrefectFuture
    from prefect.states import Completed, State
    from prefect.task_runners import ThreadPoolTaskRunner
except ImportError:  # pragma: no cover - exercised in the main test environment
    raise MissingExtraError("prefect", "prefect", "adapters.prefect (running pipelines on Prefect)") from None

__all__ = [
    "FLOW_PARAMETERS_HYDRATOR",
    "FLOW_PARAMETERS_ORDER",
    "PrefectRateLimitError",
    "SKIPPED_STATE_NAME",
    "last_result",
    "to_prefect_flow",
]

#: The name of the COMPLETED-type Prefect state a skipped task ends in.
SKIPPED_STATE_NAME = "Skipped"

_LAST_RESULTS: dict[str, RunResult] = {}
_LAST_RESULTS_LOCK = threading.Lock()


def last_result(flow_obj: Flow[..., Any]) -> RunResult | None:
    """The RunResult of the latest run of `flow_obj` in this process (also set when the run failed)."""
    return _LAST_RESULTS.get(_result_key(flow_obj))


def to_prefect_flow(
    pipeline: Pipeline | None = None,
    name: str | None = None,
    max_workers: int = 4,
    *,
    context: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    keep_going: bool = False,
    listeners: Iterable[Listener] = (),
    reporters: Iterable[Listener] | None = None,
    prefect_rate_limits: Mapping[str, str] | None = None,
    stats: StatsStore | str | os.PathLike[str] | bool | None = None,
    priority: bool = True,
    **flow_kwargs: Any,
) -> Flow[..., RunResult]:
    """Build a Prefect flow that runs `pipeline` (None = the default registry) with the core's semantics.

    `context` means what it means to PipelineExecutor: None (the default) or a file path runs
    the hydrator chain at the start of every flow run; a mapping or TaskContext is used as it is.
    The flow takes one parameter, `params`: a JSON object (Prefect validates it) laid over the
    context as its last source, the flow run's own configuration. The flow returns the
    RunResult, or raises the first failed task's own exception. The pipeline is validated here,
    so definition errors surface when the flow is built, not when it first runs.

    `stats` and `priority` mean what they mean to PipelineExecutor: statistics are recorded
    after every flow run (by default in `.task_engine/stats.sqlite3` under the flow run's working
    directory), and with statistics ready tasks are submitted longest critical path first.

    `prefect_rate_limits` maps `@rate_limit` keys to Prefect global concurrency limits used as
    rate limits (they need a slot decay): every attempt of a task with such a key also takes a
    slot of that limit, which the Prefect server enforces across flow runs and machines. The
    in-process token bucket still applies on top.
    """
    chosen = pipeline if pipeline is not None else default_pipeline()
    validated = chosen.validate()
    flow_name = name or validated.name
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidArgumentError(
            f"to_prefect_flow(max_workers={max_workers!r}): the number of worker threads must be an integer >= 1"
        )
    limits = _check_prefect_rate_limits(prefect_rate_limits, validated)
    base_context = context
    extra_listeners = tuple(listeners)
    chosen_reporters = None if reporters is None else tuple(reporters)
    key = f"{flow_name}:{id(chosen)}"

    def run_pipeline(params: dict[str, Any] | None = None) -> RunResult:
        with _LAST_RESULTS_LOCK:
            _LAST_RESULTS.pop(key, None)  # a run that fails before its first task leaves no result
        _check_limits_exist(limits)
        executor = _PrefectExecutor(
            chosen,
            workers=max_workers,
            context=_flow_context(base_context, params),
            keep_going=keep_going,
            listeners=extra_listeners,
            reporters=chosen_reporters,
            handle_signals=False,
            stats=stats,
            priority=priority,
            prefect_rate_limits=limits,
        )
        try:
            return executor.run()
        except Exception as error:
            # Prefect stores the flow run's state message from this exception; a secret must not
            # reach it. Errors without one are raised unchanged.
            raise _masked_for_prefect(error) from None
        finally:
            if executor.result is not None:
                with _LAST_RESULTS_LOCK:
                    _LAST_RESULTS[key] = executor.result

    run_pipeline.__name__ = run_pipeline.__qualname__ = _identifier(flow_name)
    run_pipeline.__doc__ = f"Run the Task Engine pipeline {validated.name!r} ({len(validated.order)} tasks)."
    options: dict[str, Any] = {
        "name": flow_name,
        "task_runner": ThreadPoolTaskRunner(max_workers=max_workers),
        # Results live in the RunResult in memory; persisting them would need result storage.
        "persist_result": False,
        "description": run_pipeline.__doc__,
    }
    options.update(flow_kwargs)
    built = flow(**options)(run_pipeline)
    built.__dict__["_task_engine_key"] = key
    return built


# -- the flow body ---------------------------------------------------------------------------------


@dataclass
class _Slot:
    """One engine task in one flow run: what its Prefect task run shares between attempts."""

    run: TaskRun
    context: TaskContext
    outcome: AttemptOutcome | None = None
    attempts: int = 0
    retry_wait_started: float | None = None


class _PrefectExecutor(PipelineExecutor):
    """The core executor whose tasks run their attempts as Prefect task runs.

    The core's loop decides which task starts when (priority, fail-fast, keep-going) on its
    `workers` threads; each of those threads submits the task to the flow's task runner when
    its upstreams are done and waits for it, so at most `workers` task runs are in flight and
    none holds a thread while it waits for upstreams.
    """

    def __init__(self, *args: Any, prefect_rate_limits: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefect_rate_limits = dict(prefect_rate_limits or {})

    def run(self) -> RunResult:
        """Run the pipeline inside the current flow run (see PipelineExecutor.run)."""
        # The core's worker threads start with an empty context; Prefect finds its flow run there.
        self._prefect_context = contextvars.copy_context()
        self._futures: dict[str, PrefectFuture[Any]] = {}
        return super().run()

    def _run_attempts(self, run: TaskRun, context: TaskContext) -> tuple[AttemptOutcome, int]:
        mapped = tuple(
            (key, self.prefect_rate_limits[key]) for key in run.policies.rate_limit_keys if key in self.prefect_rate_limits
        )
        if mapped:
            # After the task's own guards, so the in-process bucket is taken first.
            run.policies = replace(run.policies, guards=(*run.policies.guards, _PrefectRateLimitGuard(mapped)))
        slot = _Slot(run, context)
        prefect_task = _prefect_task(slot)
        # An instance of a mapped task (Poll[0]) is not in the graph: its upstreams finished before its task fanned out.
        parents = self._upstream.get(run.name, ())
        upstream = [f for parent in parents if (f := self._futures.get(parent)) is not None]
        # wait_for on finished futures costs nothing and draws the dependency in Prefect's UI.
        submit = partial(prefect_task.submit, wait_for=upstream or None)
        future = submit() if FlowRunContext.get() is not None else self._prefect_context.copy().run(submit)
        self._futures[run.name] = future
        future.wait()
        if slot.outcome is None or not slot.outcome.is_final:
            raise _prefect_failure(run.name, future)
        return slot.outcome, slot.attempts

    def priority_keys(self, validated: ValidatedPipeline) -> dict[str, Any]:
        """The core's priority keys; also keeps this run's upstream map for `wait_for`."""
        self._upstream = validated.upstream
        return super().priority_keys(validated)


def _prefect_failure(name: str, future: PrefectFuture[Any]) -> BaseException:
    """The error of a Prefect task run that ended without the core's final outcome (crash, cancel)."""
    state = future.state
    try:
        error = state.result(raise_on_failure=False)
    except BaseException as raised:  # noqa: BLE001 - any way the state fails is the error
        error = raised
    if isinstance(error, BaseException):
        return error
    return RuntimeError(f"the Prefect task run of {name!r} ended in state {state.name!r}")


def _prefect_task(slot: _Slot) -> Task[[], Any]:
    """A Prefect task for one engine task in one flow run; each Prefect try is one core attempt."""
    policies = slot.run.policies
    extra_attempts = policies.max_attempts - 1

    def attempt_once() -> State[Any] | None:
        return _attempt(slot)

    def should_retry(prefect_task: Task[..., Any], task_run: Any, state: State[Any]) -> bool:
        outcome = slot.outcome
        if outcome is None or outcome.kind is not OutcomeKind.RETRY:
            return False
        # Prefect schedules the next try `retry_delay_seconds` from now. The core decided the
        # delay (backoff, jitter, or the seconds a retry_handler returned); this Task object
        # belongs to this flow run alone, so setting it here is what Prefect then waits.
        prefect_task.retry_delay_seconds = outcome.delay
        return True

    attempt_once.__name__ = attempt_once.__qualname__ = _identifier(slot.run.name)
    return task(
        attempt_once,
        name=slot.run.name,
        retries=extra_attempts,
        retry_delay_seconds=[policies.backoff.base_delay(k) for k in range(1, extra_attempts + 1)][:50] or None,
        retry_condition_fn=should_retry if extra_attempts else None,
        persist_result=False,
    )


def _attempt(slot: _Slot) -> State[Any] | None:
    """Body of one Prefect try: one call of the core's run_attempt, its outcome mapped to Prefect."""
    run = slot.run
    ctx = TaskRunContext.get()
    attempt = ctx.task_run.run_count if ctx is not None else slot.attempts + 1
    if slot.retry_wait_started is not None:
        # Prefect did the sleeping; the core's books still get the wait.
        waited = run.clock() - slot.retry_wait_started
        run.record_wait("retry", waited)
        run.emit(WaitFinished(run.run_id, run.name, "retry", run.name, waited, True))
        slot.retry_wait_started = None

    outcome = run_attempt(run, attempt, slot.context)
    slot.outcome, slot.attempts = outcome, attempt
    if outcome.kind is OutcomeKind.RETRY:
        run.emit(
            RetryScheduled(
                run.run_id, run.name, attempt + 1, outcome.max_attempts, outcome.delay, outcome.error, outcome.reason
            )
        )
        run.emit(WaitStarted(run.run_id, run.name, "retry", run.name, outcome.delay, ""))
        slot.retry_wait_started = run.clock()
    if outcome.kind is OutcomeKind.RETRY or outcome.kind is OutcomeKind.FAILED:
        assert outcome.error is not None
        # Prefect keeps the task run's state message from this exception (UI and API), so it
        # must carry no secret; the core's result keeps the original error.
        raise _masked_for_prefect(outcome.error)
    if outcome.kind is OutcomeKind.SKIPPED:
        return Completed(
            name=SKIPPED_STATE_NAME, message=f"Skipping task due to error: {error_text(outcome.error)}"
        )
    return None


class MaskedTaskError(TaskEngineError):
    """Stands in for a task's error in Prefect's records when its message contains a secret."""


def _masked_for_prefect(error: BaseException) -> BaseException:
    """`error` itself when its text holds no known secret; else a copy whose text is masked."""
    text = error_text(error)
    try:
        raw = str(error)
    except Exception:  # noqa: BLE001 - error_text already made it printable
        raw = text
    if raw == text:
        return error
    try:
        masked = copy.copy(error)
        masked.args = (text,)
        if str(masked) == text:
            return masked.with_traceback(None)
    except Exception:  # noqa: BLE001 - fall back to a plain error carrying the masked text
        pass
    return MaskedTaskError(f"{type(error).__name__}: {text}")


# -- Prefect rate limits ----------------------------------------------------------------------------


class PrefectRateLimitError(TaskEngineError):
    """A Prefect global concurrency limit a rate-limit key is mapped to is missing or not a rate limit."""


@dataclass(frozen=True)
class _PrefectRateLimitGuard:
    """Before every attempt, take one slot of each mapped Prefect limit (the server enforces them)."""

    limits: tuple[tuple[str, str], ...]  # (rate-limit key, Prefect limit name)

    def before_attempt(self, run: TaskRun) -> None:
        """Block until the Prefect server grants a slot of every mapped limit; the wait is recorded."""
        from prefect.concurrency.sync import rate_limit as prefect_rate_limit

        for _key, limit in self.limits:
            started = run.clock()
            # strict: a limit deleted since the flow started fails the attempt instead of passing freely.
            prefect_rate_limit(limit, occupy=1, strict=True)
            run.record_wait("rate_limit", run.clock() - started)


def _check_prefect_rate_limits(
    mapping: Mapping[str, str] | None, validated: ValidatedPipeline
) -> dict[str, str]:
    if not mapping:
        return {}
    if not isinstance(mapping, Mapping):
        raise InvalidArgumentError(
            f"to_prefect_flow(prefect_rate_limits={mapping!r}) must map rate-limit keys to Prefect limit names"
        )
    used = {key for policies in validated.policies.values() for key in policies.rate_limit_keys}
    checked: dict[str, str] = {}
    for key, limit in mapping.items():
        if not isinstance(limit, str) or not limit or "/" in limit or "%" in limit:
            raise InvalidArgumentError(
                f"prefect_rate_limits[{key!r}] = {limit!r}: a Prefect global concurrency limit name is a "
                f"non-empty string without '/' or '%', e.g. 'databricks-runs-get'"
            )
        if key not in used:
            known = ", ".join(repr(k) for k in sorted(used)) or "none"
            raise InvalidArgumentError(
                f"prefect_rate_limits maps {key!r}, which no task of pipeline {validated.name!r} uses with "
                f"@rate_limit (keys in use: {known})"
            )
        checked[key] = limit
    return checked


def _check_limits_exist(limits: Mapping[str, str]) -> None:
    """At flow start: every mapped Prefect limit exists and decays (so it limits a rate)."""
    if not limits:
        return
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for key, name in limits.items():
            try:
                limit = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                raise PrefectRateLimitError(
                    f"Prefect global concurrency limit {name!r} (for rate-limit key {key!r}) does not exist; "
                    f"create it, e.g.: prefect gcl create {name} --limit 30 --slot-decay-per-second 30"
                ) from None
            if not limit.slot_decay_per_second:
                raise PrefectRateLimitError(
                    f"Prefect global concurrency limit {name!r} (for rate-limit key {key!r}) has no slot decay, "
                    f"so it limits concurrency, not a rate; set one: prefect gcl update {name} "
                    f"--slot-decay-per-second {limit.limit}"
                )


# -- context -----------------------------------------------------------------------------------------

#: The hydrator that lays a flow run's `params` over the context; it runs after the environment's
#: (order 1000), since a flow run's parameters are the most specific configuration there is.
FLOW_PARAMETERS_HYDRATOR = "prefect flow parameters"
FLOW_PARAMETERS_ORDER = 2000

_FLOW_PARAMS: contextvars.ContextVar[Hydrated | None] = contextvars.ContextVar("task_engine_flow_params", default=None)


def _flow_parameters_hydrator(request: HydrationRequest) -> Hydrated | None:
    """The current Prefect flow run's `params`; nothing outside a flow run of this adapter."""
    return _FLOW_PARAMS.get()


def _ensure_hydrator() -> None:
    # Registered again if a test or an application reset the chain since the import.
    if FLOW_PARAMETERS_HYDRATOR not in dict(registered_hydrators()):
        register_hydrator(_flow_parameters_hydrator, name=FLOW_PARAMETERS_HYDRATOR, order=FLOW_PARAMETERS_ORDER)


def _flow_context(context: Any, params: Mapping[str, Any] | None) -> TaskContext:
    """Hydrate the run's TaskContext at flow start, the flow run's parameters last.

    `context` means what it means to PipelineExecutor: None or a path runs the hydrator chain
    (where the flow-parameters hydrator takes part); a mapping or TaskContext is used as it is,
    and then the parameters are laid over it directly.
    """
    layer = None
    if params:
        flow_run = FlowRunContext.get()
        run_name = flow_run.flow_run.name if flow_run is not None and flow_run.flow_run is not None else ""
        layer = Hydrated(params, f"Prefect flow run parameters{f' ({run_name})' if run_name else ''}")
    if context is None or isinstance(context, (str, os.PathLike)):
        _ensure_hydrator()
        token = _FLOW_PARAMS.set(layer)
        try:
            return build_context(context)
        finally:
            _FLOW_PARAMS.reset(token)
    built = build_context(context)
    if layer is None:
        return built
    return TaskContext(deep_merge(built, layer.data), sources=(*built.sources, layer.source))


_ensure_hydrator()


# -- helpers -----------------------------------------------------------------------------------------


def _result_key(flow_obj: Flow[..., Any]) -> str:
    return flow_obj.__dict__.get("_task_engine_key", "")


def _identifier(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name)
    return cleaned if cleaned.isidentifier() else f"task_{cleaned}"
