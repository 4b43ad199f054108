"""Compile a Task Engine pipeline into a Prefect 3 flow: one Prefect task per engine task.

Scheduling (ready order, priority, fail-fast / keep-going, UPSTREAM_FAILED and NOT_RUN), events
and results are the core executor's own; this module only says how one allowed task runs
(`PipelineExecutor(run_task=...)`): as one Prefect task run, whose every Prefect try is one step of
the core's `TaskLifecycle` (see `task_engine_core.backend`), its outcome mapped onto Prefect:

- another attempt follows -> the attempt raises, `retry_condition_fn` says yes, and Prefect waits
  exactly the core's delay (`AwaitingRetry`) before its next try; `retries = attempts - 1`;
- the task finally failed -> the attempt raises and the task run ends `Failed`; the flow raises
  the task's own exception, so the flow run ends `Failed`;
- the task was skipped -> the task run ends `Completed` under the name ``Skipped`` (a
  COMPLETED-type state), so dependents start and the flow run ends `Completed`;
- the task never started (UPSTREAM_FAILED, NOT_RUN) -> after the core's run, a task run that
  goes straight to a CANCELLED-type state named ``UpstreamFailed`` / ``NotRun`` whose message
  says why, so the UI shows every task of the pipeline.

By default the engine's console lines go to the flow run's logger and the tasks' prints to their
task run's logger (`log_prints`), both masked like every log record once a secret is known.
"""

from __future__ import annotations

import contextvars
import copy
import inspect
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TextIO, cast
from uuid import UUID

from task_engine_core import Pipeline, PipelineExecutor, RunResult, SkipTask, TaskContext, TaskEngineError, TaskState
from task_engine_core import Task as EngineTask
from task_engine_core.backend import (
    DEFAULT_ORDER,
    ENVIRONMENT_ORDER,
    AttemptOutcome,
    AttemptState,
    ConsoleReporter,
    GroupPlan,
    Hydrated,
    HydrationRequest,
    InvalidArgumentError,
    Listener,
    MissingExtraError,
    OutcomeKind,
    Secret,
    StatsStore,
    TaskLifecycle,
    TaskResult,
    ValidatedPipeline,
    build_context,
    check_group_boundaries,
    collecting_pipeline,
    deep_merge,
    error_text,
    group_pipeline,
    mask_text,
    parse_backend_options,
    plan_groups,
    register_hydrator,
    registered_hydrators,
    run_group,
    trace_id_for,
    validated_pipeline,
    worst_state,
)

try:
    from prefect import Flow, Task, flow, get_run_logger, task
    from prefect.client.schemas.objects import State, StateType
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.futures import PrefectFuture
    from prefect.states import Completed
    from prefect.task_runners import ThreadPoolTaskRunner
except ImportError:  # pragma: no cover - exercised in the main test environment
    raise MissingExtraError("prefect", "prefect", "task_engine.prefect (running pipelines on Prefect)") from None

__all__ = [
    "FLOW_PARAMETERS_HYDRATOR",
    "FLOW_PARAMETERS_ORDER",
    "NOT_RUN_STATE_NAME",
    "RESUMED_STATE_NAME",
    "PREFECT_SOURCES_HYDRATOR",
    "PREFECT_SOURCES_ORDER",
    "PrefectContextError",
    "PrefectRateLimitError",
    "RUN_OPTION_PARAMETERS",
    "SKIPPED_STATE_NAME",
    "TIMEOUT_GRACE_SECONDS",
    "UPSTREAM_FAILED_STATE_NAME",
    "last_result",
    "to_prefect_flow",
]

#: The name of the COMPLETED-type Prefect state a skipped task ends in.
SKIPPED_STATE_NAME = "Skipped"
#: The CANCELLED-type Prefect states of tasks that never started, by the core's reason.
UPSTREAM_FAILED_STATE_NAME = "UpstreamFailed"
NOT_RUN_STATE_NAME = "NotRun"
#: The Prefect state name of a task a resumed run kept from the run it resumes (it is not run again).
RESUMED_STATE_NAME = "Resumed"
#: Prefect's `timeout_seconds` of a task is its `@timeout` plus this, so the core's own timeout
#: (with its retry decision) always fires first and Prefect's only shows and backs it up.
TIMEOUT_GRACE_SECONDS = 1.0
#: The typed flow parameters of the run-time options (the CLI's `--only/--from/--to/--tags/
#: --with-upstream/--resume`), in the order the UI lists them.
RUN_OPTION_PARAMETERS = ("only", "from_tasks", "to", "tags", "with_upstream", "resume")


class _LatestResult:
    """The RunResult of a built flow's latest run in this process; each flow holds its own (no module global)."""

    def __init__(self) -> None:
        self.result: RunResult | None = None


def last_result(flow_obj: Flow[..., Any]) -> RunResult | None:
    """The RunResult of the latest run of `flow_obj` in this process (also set when the run failed)."""
    latest = flow_obj.__dict__.get("_task_engine_latest")
    return latest.result if isinstance(latest, _LatestResult) else None


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
    groups: Mapping[str, Sequence[str]] | None = None,
    context_parameters: Mapping[str, Any] | None = None,
    prefect_variables: Mapping[str, str] | None = None,
    prefect_secrets: Mapping[str, str] | None = None,
    prefect_logs: bool = True,
    persist_outputs: bool = False,
    **flow_kwargs: Any,
) -> Flow[..., RunResult]:
    """Build a Prefect flow that runs `pipeline` (None = the default registry) with the core's semantics.

    `context` means what it means to PipelineExecutor: None (the default) or a file path runs
    the hydrator chain at the start of every flow run; a mapping or TaskContext is used as it is.
    The flow's parameters are typed: the run-time options (`only`, `from_tasks`, `to`, `tags`,
    `with_upstream`, `resume`), one parameter per key of `context_parameters` (a dotted context
    key -> its default, or a type for a parameter without one; None keeps the context's value),
    and `params`, a JSON object laid over the context under them. The flow returns the
    RunResult, or raises the first failed task's own exception. The pipeline is validated here,
    so definition errors surface when the flow is built, not when it first runs.

    `stats` and `priority` mean what they mean to PipelineExecutor: statistics are recorded
    after every flow run (by default in `.task_engine/stats.sqlite3` under the flow run's working
    directory), and with statistics ready tasks are submitted longest critical path first.

    `prefect_rate_limits` maps `@rate_limit` keys to Prefect global concurrency limits used as
    rate limits (they need a slot decay): every attempt of a task with such a key also takes a
    slot of that limit, which the Prefect server enforces across flow runs and machines. The
    in-process token bucket still applies on top.

    `groups` (group name -> task names) runs each connected group as one Prefect task run named
    after the group, through the standalone executor inside it: its tasks keep their retries,
    events, statistics and spans; the task run ends in the worst state inside it, and the inner
    states are in the flow's RunResult and in a Prefect table artifact of that task run.
    `prefect_variables` / `prefect_secrets` map context keys to Prefect Variables / Secret
    blocks, read at the start of every flow run (secrets masked). `prefect_logs` (default True)
    sends the engine's lines and the tasks' prints to Prefect's run logs instead of standard
    output; `persist_outputs=True` persists every task's output with Prefect's result persistence.
    As for PipelineExecutor, `reporters` replaces the engine's console lines (None keeps them,
    `[]` shows none) and `listeners` are added next to the reporters.
    """
    chosen = pipeline if pipeline is not None else collecting_pipeline()
    validated = validated_pipeline(chosen)
    plan = plan_groups(validated, groups)
    check_group_boundaries(validated, plan, "Prefect")
    flow_name = name or validated.name
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidArgumentError(
            f"to_prefect_flow(max_workers={max_workers!r}): the number of worker threads must be an integer >= 1"
        )
    limits = _check_prefect_rate_limits(prefect_rate_limits, validated)
    declared = _declared_context_parameters(context_parameters)
    sources = _PrefectSources(
        _check_source_names("prefect_variables", prefect_variables),
        _check_source_names("prefect_secrets", prefect_secrets),
    )
    _ensure_hydrators(with_sources=bool(sources.variables or sources.secrets))
    base_context = context
    extra_listeners = tuple(listeners)
    chosen_reporters = None if reporters is None else tuple(reporters)
    inner_run = _InnerRun(keep_going, extra_listeners, chosen_reporters, stats)
    units = _units_pipeline(validated, plan, inner_run) if plan.groups else chosen
    scheduled = validated_pipeline(units) if plan.groups else validated
    latest = _LatestResult()
    task_options = _TaskOptions(scheduled, persist_outputs)

    def run_pipeline(**parameters: Any) -> RunResult:
        latest.result = None  # a run that fails before its first task leaves no result
        run_options = _run_options(parameters)
        layer = _parameters_layer(parameters.get("params"), {p: parameters.get(p.name) for p in declared})
        _check_limits_exist(limits)
        flow_run = FlowRunContext.get()
        flow_run_id = getattr(getattr(flow_run, "flow_run", None), "id", None)
        run_reporters = chosen_reporters
        if run_reporters is None and prefect_logs and flow_run is not None:
            run_reporters = (ConsoleReporter(stream=cast("TextIO", _RunLogStream(get_run_logger()))),)
        run_task = task_runs = _PrefectTaskRuns(scheduled.upstream, limits, task_options)
        executor = PipelineExecutor(
            units,
            workers=max_workers,
            context=_flow_context(base_context, layer, sources),
            keep_going=keep_going,
            listeners=extra_listeners,
            reporters=run_reporters,
            handle_signals=False,
            stats=stats,
            priority=priority,
            run_task=task_runs,
            # One trace per flow run, whichever process or retry of the flow reports it.
            trace_id=trace_id_for(f"prefect flow run {flow_run_id}") if flow_run_id is not None else None,
            **run_options,
        )
        try:
            return executor.run()
        except Exception as error:  # noqa: BLE001 - every failure of the run becomes the flow run's state
            # Prefect stores the flow run's state message from this exception; a secret must not
            # reach it. Errors without one are raised unchanged.
            raise _masked_for_prefect(error) from None
        finally:
            if executor.result is not None:
                if plan.groups:
                    # The flow's result lists the tasks inside the groups, as a standalone run would.
                    executor.result.tasks = _expand_groups(executor.result, plan, run_task.group_results)
                latest.result = executor.result
                if flow_run is not None:
                    _record_unstarted(task_runs, executor.result)

    run_pipeline.__name__ = run_pipeline.__qualname__ = _identifier(flow_name)
    run_pipeline.__doc__ = f"Run the Task Engine pipeline {validated.name!r} ({len(validated.order)} tasks)."
    # Prefect reads the flow's parameters (UI form, schema, validation) from this signature.
    run_pipeline.__signature__ = _flow_signature(declared)  # type: ignore[attr-defined]
    # Prefect's serve()/deploy() name the flow by module and qualified name: the caller's module,
    # where the built flow is bound to a module-level name (`_PipelineFlow` finds which one).
    run_pipeline.__module__ = _caller_module()
    options: dict[str, Any] = {
        "name": flow_name,
        "task_runner": ThreadPoolTaskRunner(max_workers=max_workers),
        # Results live in the RunResult in memory; task outputs persist only when asked for.
        "persist_result": False,
        "log_prints": prefect_logs,
        "description": run_pipeline.__doc__,
    }
    options.update(flow_kwargs)
    built = flow(**options)(run_pipeline)
    built.__class__ = _PipelineFlow
    built.__dict__["_task_engine_latest"] = latest
    return built


class _PipelineFlow(Flow):  # type: ignore[type-arg]
    """A built flow: before Prefect deploys or serves it, its entrypoint becomes the module-level name it is bound to."""

    def to_deployment(self, *args: Any, **kwargs: Any) -> Any:
        """Prefect's `to_deployment`, with this flow's entrypoint settled first."""
        self._settle_entrypoint()
        return super().to_deployment(*args, **kwargs)

    async def ato_deployment(self, *args: Any, **kwargs: Any) -> Any:
        """Prefect's `ato_deployment` (used by serve() and deploy()), with this flow's entrypoint settled first."""
        self._settle_entrypoint()
        return await super().ato_deployment(*args, **kwargs)

    def _settle_entrypoint(self) -> None:
        module_name = self.fn.__module__
        module = sys.modules.get(module_name)
        bound = [n for n, value in vars(module).items() if value is self] if module is not None else []
        if not bound:
            raise InvalidArgumentError(
                f"flow {self.name!r} is not bound to a module-level name of {module_name!r}, so Prefect cannot "
                f"import it in a flow run's process; bind it at module level "
                f"(e.g. `{_identifier(self.name)}_flow = to_prefect_flow(...)`) and serve or deploy that"
            )
        # Prefect names a FILE_PATH entrypoint by `fn.__qualname__`, a MODULE_PATH one by `__name__`.
        self.fn.__qualname__ = self.__name__ = bound[0]
        file = getattr(module, "__file__", None)
        module_part = os.path.abspath(file) if module_name == "__main__" and file else module_name
        self._entrypoint = f"{module_part}:{bound[0]}"

    def __reduce_ex__(self, protocol: Any) -> Any:
        # serve() hands the flow to its flow-run process by (cloud)pickle. Pickled by value it
        # would drag the pipeline and its locks along; once bound, it is loaded by its name there.
        entrypoint = self.__dict__.get("_entrypoint")
        if entrypoint and self.fn.__qualname__ == entrypoint.rsplit(":", 1)[1]:
            return (_load_built_flow, (self._entrypoint,))
        return super().__reduce_ex__(protocol)


def _load_built_flow(entrypoint: str) -> Flow[..., Any]:
    """Unpickling a bound built flow: import it by its entrypoint (a script path or a module, and its name)."""
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(entrypoint)


# -- the flow body ---------------------------------------------------------------------------------


@dataclass
class _Slot:
    """One engine task in one flow run: its lifecycle and the outcome of its latest Prefect try."""

    lifecycle: TaskLifecycle
    outcome: AttemptOutcome | None = None


class _PrefectTaskRuns:
    """`run_task` of the core executor: each allowed task runs as one Prefect task run of this flow run.

    The core's loop decides which task starts when (priority, fail-fast, keep-going) on its
    `workers` threads; each of those threads submits the task to the flow's task runner and
    waits for it, so at most `workers` task runs are in flight and none holds a thread while it
    waits for upstreams.
    """

    def __init__(
        self, upstream: Mapping[str, tuple[str, ...]], limits: Mapping[str, str], options: _TaskOptions
    ) -> None:
        self.upstream = upstream
        self.limits = dict(limits)
        self.options = options
        # Made in the flow body: the core's worker threads start with an empty context, and
        # Prefect finds its flow run there.
        self.prefect_context = contextvars.copy_context()
        self.futures: dict[str, PrefectFuture[Any]] = {}
        # Task group -> the result of its standalone run inside its task run.
        self.group_results: dict[str, RunResult] = {}
        #: Task runs recorded for tasks that never started, by task name.
        self.never_ran: dict[str, UUID] = {}

    def __call__(self, lifecycle: TaskLifecycle) -> None:
        name = lifecycle.name
        mapped = tuple((key, self.limits[key]) for key in lifecycle.policies.rate_limit_keys if key in self.limits)
        if mapped:
            # After the task's own guards, so the in-process bucket is taken first.
            lifecycle.policies = replace(
                lifecycle.policies, guards=(*lifecycle.policies.guards, _PrefectRateLimitGuard(mapped))
            )
        slot = _Slot(lifecycle)
        prefect_task = _prefect_task(slot, self.options)
        # An instance of a mapped task (Poll[0]) is not in the graph: its upstreams finished before its task fanned out.
        upstream = [f for parent in self.upstream.get(name, ()) if (f := self.futures.get(parent)) is not None]
        # wait_for on finished futures costs nothing and draws the dependency in Prefect's UI.
        submit = partial(prefect_task.submit, wait_for=upstream or None)
        future = submit() if FlowRunContext.get() is not None else self.prefect_context.copy().run(submit)
        self.futures[name] = future
        future.wait()
        task_object = getattr(getattr(lifecycle, "state", None), "task", None)
        if isinstance(task_object, _GroupTask) and task_object.group_result is not None:
            self.group_results[name] = task_object.group_result
        if not lifecycle.finished:
            raise _prefect_failure(name, future)

    def record_unstarted(self, result: RunResult) -> None:
        """After the core's run, in the flow body: a final task run for every task that never started, saying why."""
        for name, task_result in result.tasks.items():
            if name in self.futures or name in self.never_ran or task_result.start is not None:
                continue
            if task_result.state is TaskState.UPSTREAM_FAILED:
                state_name = UPSTREAM_FAILED_STATE_NAME
            elif task_result.state is TaskState.NOT_RUN:
                state_name = NOT_RUN_STATE_NAME
            elif task_result.resumed_from is not None:
                # Prefect's own word for "done before, not run again" would be Cached; this is not a
                # cache hit, so the state says where the result was kept from.
                kept = State(
                    type=StateType.COMPLETED,
                    name=RESUMED_STATE_NAME,
                    message=f"Kept from run {task_result.resumed_from} (resume): not run again",
                )
                self.never_ran[name] = self._create_final_task_run(name, kept)
                continue
            else:
                continue
            reason = task_result.reason or _why_not_run(name, result, self.upstream[self._task_of(name)])
            never_ran = State(type=StateType.CANCELLED, name=state_name, message=f"Not run: {mask_text(reason)}")
            self.never_ran[name] = self._create_final_task_run(name, never_ran)

    def _task_of(self, name: str) -> str:
        """The registered task `name` is, or is an instance of (`Poll[3]`, of mapped task `Poll`)."""
        if name in self.upstream:
            return name
        return next(task for task in self.options.pipeline.mapped if name.startswith(f"{task}["))

    def _create_final_task_run(self, name: str, state: State[Any]) -> UUID:
        """A task run of this flow run recorded straight in `state` (nothing runs), its upstream edges included."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.objects import TaskRunResult

        flow_run = FlowRunContext.get()
        assert flow_run is not None and flow_run.flow_run is not None
        options = self.options.for_task(self._task_of(name), name)
        prefect_task = task(_never_runs, **options)
        parents = [
            TaskRunResult(id=run_id)
            for parent in self.upstream[self._task_of(name)]
            if (run_id := self.task_run_id(parent)) is not None
        ]
        with get_client(sync_client=True) as client:
            created = client.create_task_run(
                prefect_task,
                flow_run.flow_run.id,
                dynamic_key=f"{name}-never-ran",
                name=options["task_run_name"].replace("{{", "{").replace("}}", "}"),
                state=state,
                # "wait_for" is where Prefect records `wait_for=` futures: the UI draws these edges.
                task_inputs={"wait_for": parents} if parents else None,  # type: ignore[dict-item]  # a list of one of the accepted kinds
            )
            if created.state is None or not created.state.is_final():
                client.set_task_run_state(created.id, state, force=True)
        return created.id

    def task_run_id(self, name: str) -> UUID | None:
        """The Prefect task run id of an engine task of this flow run, if it has one."""
        future = self.futures.get(name)
        return future.task_run_id if future is not None else self.never_ran.get(name)


def _why_not_run(name: str, result: RunResult, upstream: tuple[str, ...]) -> str:
    """Why a task never started, for its task run's state message."""
    tasks = result.tasks
    if tasks[name].state is TaskState.UPSTREAM_FAILED:
        failed = [p for p in upstream if tasks[p].state is TaskState.FAILED]
        if failed:
            return f"upstream {', '.join(map(repr, failed))} failed"
        blocked = [p for p in upstream if tasks[p].state is TaskState.UPSTREAM_FAILED]
        return f"upstream {', '.join(map(repr, blocked))} did not run" if blocked else "an upstream task failed"
    if result.interrupted:
        return f"the run was interrupted ({result.interrupted}) before it started"
    failed = [n for n, r in tasks.items() if r.state is TaskState.FAILED]
    if failed:
        return f"fail-fast: the run stopped after {', '.join(map(repr, failed))} failed (keep_going=False)"
    return "the run ended before it started"


def _never_runs() -> None:
    """The function of the Prefect task of a task that never started (it is never called)."""


def _record_unstarted(task_runs: _PrefectTaskRuns, result: RunResult) -> None:
    """`task_runs.record_unstarted(result)`; a failure there is logged, never hides the run's own outcome."""
    try:
        task_runs.record_unstarted(result)
    except Exception as error:  # noqa: BLE001 - the flow run's state must come from the pipeline
        get_run_logger().warning("could not record the tasks that did not run: %s", error_text(error))


@dataclass(frozen=True)
class _InnerRun:
    """How a group's standalone run inside its task run is made: the flow's own settings."""

    keep_going: bool
    listeners: tuple[Listener, ...]
    reporters: tuple[Listener, ...] | None
    stats: Any


class _GroupTask(EngineTask):
    """One task group as one engine task of the flow: its tasks run by the standalone executor inside it."""

    group: str = ""
    pipeline: Pipeline
    inner_run: _InnerRun
    group_result: RunResult | None = None

    def perform_task(self) -> None:
        """Run the group's tasks; fail with the first failure inside, skip when the worst inside is a skip."""
        settings = self.inner_run
        result = self.group_result = run_group(
            self.pipeline,
            context=self.context,
            keep_going=settings.keep_going,
            listeners=settings.listeners,
            reporters=settings.reporters,
            stats=settings.stats,
        )
        _publish_group_artifact(self.group, result)
        worst = worst_state([r.state.value for r in result.tasks.values()])
        if worst == TaskState.SKIPPED.value:
            skipped = [name for name, r in result.tasks.items() if r.state is TaskState.SKIPPED]
            raise SkipTask(f"task group {self.group!r}: {', '.join(map(repr, skipped))} skipped")
        if worst != TaskState.SUCCESS.value:
            first = result.first_failure
            if first is not None and first.error is not None:
                raise first.error
            raise RuntimeError(f"task group {self.group!r}: tasks ended {worst}")

    def __repr__(self) -> str:
        return f"<task group {self.group!r}>"


def _units_pipeline(validated: ValidatedPipeline, plan: GroupPlan, inner_run: _InnerRun) -> Pipeline:
    """The pipeline the flow schedules: a task per task outside the groups, one `_GroupTask` per group."""
    units = Pipeline(validated.name)
    for unit in sorted(plan.units, key=lambda u: validated.definitions[plan.members[u][0]].index):
        depends_on = list(plan.upstream[unit])
        if not plan.is_group(unit):
            definition = validated.definitions[unit]
            units.add(definition.target, depends_on=depends_on, name=unit, priority=definition.explicit_priority)
            continue
        attributes = {
            "group": unit,
            "pipeline": group_pipeline(validated, plan, unit),
            "inner_run": inner_run,
            "__module__": __name__,
        }
        # A group starts as early as its most urgent task would.
        priorities = [
            p for name in plan.members[unit] if (p := validated.definitions[name].explicit_priority) is not None
        ]
        units.add(
            type(_identifier(unit), (_GroupTask,), attributes),
            depends_on=depends_on,
            name=unit,
            priority=max(priorities) if priorities else None,
        )
    return units


def _expand_groups(result: RunResult, plan: GroupPlan, inner: Mapping[str, RunResult]) -> dict[str, TaskResult]:
    """The flow run's results with each group replaced by the results of the tasks inside it."""
    tasks: dict[str, TaskResult] = {}
    for unit, unit_result in result.tasks.items():
        if not plan.is_group(unit):
            tasks[unit] = unit_result
        elif unit in inner:
            tasks.update(inner[unit].tasks)
        else:  # never started (fail-fast, an upstream failed): every task inside shares that state
            tasks.update({name: TaskResult(name, state=unit_result.state) for name in plan.members[unit]})
    return tasks


def _publish_group_artifact(group: str, result: RunResult) -> None:
    """A table artifact on the group's task run: state, attempts and reason of every task inside."""
    from prefect.artifacts import create_table_artifact

    rows = [
        {
            "task": name,
            "state": r.state.value,
            "attempts": r.attempts,
            "reason": error_text(r.error) if r.error else r.reason,
        }
        for name, r in result.tasks.items()
    ]
    key = "".join(ch if ch.isalnum() else "-" for ch in group.lower()).strip("-") or "group"
    create_table_artifact(rows, key=f"task-engine-group-{key}", description=f"Tasks of task group {group!r}")


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


@dataclass(frozen=True)
class _TaskOptions:
    """The Prefect task options of each engine task, from the engine's own settings."""

    pipeline: ValidatedPipeline
    persist_outputs: bool

    def for_task(self, name: str, run_name: str | None = None) -> dict[str, Any]:
        """`task(...)` keywords for `name`: name, readable task_run_name, tags, timeout_seconds, result persistence.

        `run_name` is an instance's name (`Poll[0]`): as with Prefect's `.map`, the instances of a
        mapped task are task runs of one task.
        """
        definition = self.pipeline.definitions[name]
        timeout = self.pipeline.policies[name].timeout
        run_name = run_name or name
        options: dict[str, Any] = {
            "name": name,
            # The engine's task name, not Prefect's "<name>-<3 hex digits>"; braces would be a template.
            "task_run_name": run_name.replace("{", "{{").replace("}", "}}"),
            "tags": sorted(set(getattr(definition, "tags", ()) or ())),
            "persist_result": self.persist_outputs,
        }
        if timeout is not None:
            options["timeout_seconds"] = timeout + TIMEOUT_GRACE_SECONDS
        return options


def _prefect_task(slot: _Slot, options: _TaskOptions) -> Task[[], Any]:
    """A Prefect task for one engine task in one flow run; each Prefect try is one core attempt."""
    policies = slot.lifecycle.policies
    extra_attempts = policies.max_attempts - 1

    def attempt_once() -> Any:
        return _attempt(slot)

    def should_retry(prefect_task: Task[..., Any], task_run: Any, state: State[Any]) -> bool:
        outcome = slot.outcome
        if outcome is None or outcome.kind is not OutcomeKind.RETRY:
            return False
        # Prefect schedules the next try `retry_delay_seconds` from now. The core decided the
        # delay (backoff, jitter, or the seconds a retry_handler returned); this Task object
        # belongs to this flow run alone, so setting it here is what Prefect then waits.
        prefect_task.retry_delay_seconds = outcome.delay  # type: ignore[assignment]  # Prefect takes a number as well
        return True

    attempt_once.__name__ = attempt_once.__qualname__ = _identifier(slot.lifecycle.name)
    return task(  # type: ignore[call-overload, no-any-return]  # options are Prefect's task() keywords
        attempt_once,
        retries=extra_attempts,
        retry_delay_seconds=[policies.backoff.base_delay(k) for k in range(1, extra_attempts + 1)][:50] or None,
        retry_condition_fn=should_retry if extra_attempts else None,
        **options.for_task(slot.lifecycle.definition.name, slot.lifecycle.name),
    )


def _attempt(slot: _Slot) -> Any:
    """Body of one Prefect try: one step of the core's lifecycle, its outcome mapped to Prefect."""
    lifecycle = slot.lifecycle
    ctx = TaskRunContext.get()
    previous = slot.outcome
    attempt = ctx.task_run.run_count if ctx is not None else (previous.attempt + 1 if previous else 1)
    if lifecycle.result.start is None:
        lifecycle.start()  # on the thread that runs the attempts, as the core's listeners expect
    else:
        lifecycle.resume(attempt)  # Prefect did the sleeping; the core's books still get the wait
    try:
        outcome = lifecycle.attempt(attempt)
    except BaseException as error:
        lifecycle.fail(error)
        lifecycle.finish()
        raise
    slot.outcome = outcome
    if outcome.kind is OutcomeKind.RETRY:
        lifecycle.retry_handed_off(outcome)
    else:
        lifecycle.conclude(outcome)
        lifecycle.finish()
    if outcome.kind is OutcomeKind.RETRY or outcome.kind is OutcomeKind.FAILED:
        assert outcome.error is not None
        # Prefect keeps the task run's state message from this exception (UI and API), so it
        # must carry no secret; the core's result keeps the original error.
        raise _masked_for_prefect(outcome.error)
    if outcome.kind is OutcomeKind.SKIPPED:
        return Completed(name=SKIPPED_STATE_NAME, message=f"Skipping task due to error: {error_text(outcome.error)}")
    # The task's output is the task run's result (persisted if asked), as a Prefect user expects.
    return lifecycle.result.output


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

    def before_attempt(self, run: AttemptState) -> None:
        """Block until the Prefect server grants a slot of every mapped limit; the wait is reported and recorded."""
        from prefect.concurrency.sync import rate_limit as prefect_rate_limit

        for key, limit in self.limits:
            with run.waiting("rate_limit", key, None, f"waiting for Prefect rate limit {limit!r}"):
                # strict: a limit deleted since the flow started fails the attempt instead of passing freely.
                prefect_rate_limit(limit, occupy=1, strict=True)


def _check_prefect_rate_limits(mapping: Mapping[str, str] | None, validated: ValidatedPipeline) -> dict[str, str]:
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


# -- flow parameters -------------------------------------------------------------------------------

_PARAM = inspect.Parameter

#: The run-time options as typed flow parameters: (name, annotation, default).
_RUN_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("only", list[str] | None, None),
    ("from_tasks", list[str] | None, None),
    ("to", list[str] | None, None),
    ("tags", list[str] | None, None),
    ("with_upstream", bool, False),
    ("resume", bool | str, False),
)
_RESERVED = frozenset({*RUN_OPTION_PARAMETERS, "params"})


@dataclass(frozen=True)
class _ContextParameter:
    """A context key the user declared as a flow parameter."""

    name: str  # the flow parameter's name
    key: str  # the dotted context key it sets
    annotation: Any
    default: Any


def _declared_context_parameters(declared: Mapping[str, Any] | None) -> tuple[_ContextParameter, ...]:
    """`context_parameters` checked: dotted context key -> default value, or a type (then required)."""
    if not declared:
        return ()
    if not isinstance(declared, Mapping):
        raise InvalidArgumentError(
            f"to_prefect_flow(context_parameters={declared!r}) must map context keys to defaults, "
            f"e.g. {{'env': 'dev', 'api.timeout': 30}}"
        )
    found: dict[str, _ContextParameter] = {}
    for key, value in declared.items():
        parts = key.split(".") if isinstance(key, str) else []
        if not parts or not all(part.isidentifier() for part in parts):
            raise InvalidArgumentError(
                f"context_parameters key {key!r}: give a context key of identifiers joined by dots, e.g. 'api.url'"
            )
        name = "_".join(parts)
        clash = found.get(name)
        if name in _RESERVED or clash is not None:
            other = f"context key {clash.key!r}" if clash is not None else "a flow parameter of the adapter"
            raise InvalidArgumentError(
                f"context_parameters key {key!r} would be the flow parameter {name!r}, which is already "
                f"{other}; rename the context key"
            )
        if isinstance(value, type):
            found[name] = _ContextParameter(name, key, value, _PARAM.empty)
        elif value is None:
            found[name] = _ContextParameter(name, key, Any, None)
        elif isinstance(value, (str, int, float, bool, list, dict)):
            found[name] = _ContextParameter(name, key, type(value) | None, value)
        else:
            raise InvalidArgumentError(
                f"context_parameters[{key!r}] = {value!r}: give a JSON-like default (str, int, float, bool, "
                f"list, dict), None (keep the context's value) or a type (a parameter without default)"
            )
    # Parameters without a default come first, as Python requires of a signature.
    return tuple(sorted(found.values(), key=lambda p: p.default is not _PARAM.empty))


def _flow_signature(declared: tuple[_ContextParameter, ...]) -> inspect.Signature:
    """The built flow's parameters: declared context keys, the run-time options, then `params`."""
    parameters = [_PARAM(p.name, _PARAM.KEYWORD_ONLY, default=p.default, annotation=p.annotation) for p in declared]
    parameters += [_PARAM(n, _PARAM.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in _RUN_OPTIONS]
    parameters.append(_PARAM("params", _PARAM.KEYWORD_ONLY, default=None, annotation=dict[str, Any] | None))
    return inspect.Signature(parameters, return_annotation=RunResult)


def _run_options(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """PipelineExecutor keywords (`select=`, `resume=`) for the run-time options a flow run was given."""
    options = {
        ("from" if name == "from_tasks" else name): parameters.get(name)
        for name in ("only", "from_tasks", "to", "tags", "with_upstream", "resume")
        if parameters.get(name) not in (None, False, [], "")
    }
    select, resume = parse_backend_options(options, "flow parameters")
    keywords: dict[str, Any] = {}
    if select:
        keywords["select"] = select
    if resume:
        keywords["resume"] = resume
    return keywords


def _parameters_layer(params: Mapping[str, Any] | None, declared: Mapping[_ContextParameter, Any]) -> Hydrated | None:
    """The flow run's parameters as one context layer: `params`, with the declared keys' values over it."""
    data: dict[str, Any] = dict(params or {})
    for parameter, value in declared.items():
        if value is None:
            continue  # None keeps what the other sources say
        data = deep_merge(data, _nested(parameter.key, value))
    if not data:
        return None
    flow_run = FlowRunContext.get()
    run_name = flow_run.flow_run.name if flow_run is not None and flow_run.flow_run is not None else ""
    return Hydrated(data, f"Prefect flow run parameters{f' ({run_name})' if run_name else ''}")


# -- context -----------------------------------------------------------------------------------------

#: The hydrator that lays a flow run's parameters over the context; it runs after the environment's
#: (order 1000), since a flow run's parameters are the most specific configuration there is.
FLOW_PARAMETERS_HYDRATOR = "prefect flow parameters"
FLOW_PARAMETERS_ORDER = 2000
#: The hydrator that reads the Prefect Variables and Secret blocks a flow maps context keys to;
#: between the context file (100) and the environment (1000), like Airflow Variables.
PREFECT_SOURCES_HYDRATOR = "prefect variables and secrets"
PREFECT_SOURCES_ORDER = (DEFAULT_ORDER + ENVIRONMENT_ORDER) / 2


class PrefectContextError(TaskEngineError):
    """A Prefect Variable or Secret block a context key is mapped to cannot be read."""


@dataclass(frozen=True)
class _PrefectSources:
    """Context key -> Prefect Variable name, and context key -> Secret block name, of one built flow."""

    variables: Mapping[str, str]
    secrets: Mapping[str, str]

    def read(self) -> Hydrated | None:
        """The mapped values as one context layer (secrets wrapped in Secret, so they are masked)."""
        if not self.variables and not self.secrets:
            return None
        from prefect.blocks.system import Secret as SecretBlock
        from prefect.variables import Variable

        data: dict[str, Any] = {}
        missing = object()
        for key, variable in self.variables.items():
            value = Variable.get(variable, default=missing)  # type: ignore[call-overload]  # a sentinel tells "unset" from None
            if value is missing:
                raise PrefectContextError(
                    f"Prefect Variable {variable!r} (for context key {key!r}) does not exist; create it, "
                    f"e.g.: prefect variable set {variable} VALUE"
                )
            data = deep_merge(data, _nested(key, value))
        for key, block in self.secrets.items():
            try:
                value = SecretBlock.load(block).get()  # type: ignore[union-attr]  # synchronous: called outside an event loop
            except ValueError as error:
                raise PrefectContextError(
                    f"Prefect Secret block {block!r} (for context key {key!r}) cannot be loaded ({error_text(error)}); "
                    f"create it in the UI (Blocks -> Secret) or with Secret(value=...).save({block!r})"
                ) from None
            data = deep_merge(data, _nested(key, Secret(value)))
        names = [f"Variable {v!r}" for v in self.variables.values()] + [f"Secret {b!r}" for b in self.secrets.values()]
        return Hydrated(data, f"Prefect ({', '.join(names)})")


def _check_source_names(argument: str, mapping: Mapping[str, str] | None) -> dict[str, str]:
    """`prefect_variables` / `prefect_secrets` checked: dotted context key -> Prefect name."""
    if not mapping:
        return {}
    if not isinstance(mapping, Mapping):
        raise InvalidArgumentError(
            f"to_prefect_flow({argument}={mapping!r}) must map context keys to Prefect names, e.g. {{'api.url': 'api-url'}}"
        )
    for key, value in mapping.items():
        if not isinstance(key, str) or not all(part.strip() for part in key.split(".")):
            raise InvalidArgumentError(f"{argument} key {key!r}: give a context key, e.g. 'api.url'")
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgumentError(f"{argument}[{key!r}] = {value!r}: give the name of the Prefect object")
    return dict(mapping)


def _nested(key: str, value: Any) -> dict[str, Any]:
    """`{"a": {"b": value}}` for the dotted key "a.b"."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return cast("dict[str, Any]", value)


_FLOW_PARAMS: contextvars.ContextVar[Hydrated | None] = contextvars.ContextVar("task_engine_flow_params", default=None)
_FLOW_SOURCES: contextvars.ContextVar[_PrefectSources | None] = contextvars.ContextVar(
    "task_engine_prefect_sources", default=None
)


def _flow_parameters_hydrator(request: HydrationRequest) -> Hydrated | None:
    """The current Prefect flow run's parameters; nothing outside a flow run of this adapter."""
    return _FLOW_PARAMS.get()


def _prefect_sources_hydrator(request: HydrationRequest) -> Hydrated | None:
    """The Prefect Variables and Secret blocks the current flow maps context keys to; nothing outside one."""
    sources = _FLOW_SOURCES.get()
    return sources.read() if sources is not None else None


def _ensure_hydrators(with_sources: bool = False) -> None:
    """Register this adapter's hydrators when a flow is built (again if the chain was reset since).

    The Prefect Variables/Secrets one only once a flow maps keys to them: a hydrator is named
    in every context's sources, and flows without such keys should not show it.
    """
    present = dict(registered_hydrators())
    if FLOW_PARAMETERS_HYDRATOR not in present:
        register_hydrator(_flow_parameters_hydrator, name=FLOW_PARAMETERS_HYDRATOR, order=FLOW_PARAMETERS_ORDER)
    if with_sources and PREFECT_SOURCES_HYDRATOR not in present:
        register_hydrator(_prefect_sources_hydrator, name=PREFECT_SOURCES_HYDRATOR, order=PREFECT_SOURCES_ORDER)


def _flow_context(context: Any, layer: Hydrated | None, sources: _PrefectSources) -> TaskContext:
    """Hydrate the run's TaskContext at flow start: Prefect Variables/Secrets mid-chain, the flow run's parameters last.

    `context` means what it means to PipelineExecutor: None or a path runs the hydrator chain
    (where this adapter's hydrators take part); a mapping or TaskContext is used as it is, and
    then the Prefect sources and the parameters are laid over it directly.
    """
    if context is None or isinstance(context, (str, os.PathLike)):
        _ensure_hydrators(with_sources=bool(sources.variables or sources.secrets))
        tokens = (_FLOW_PARAMS.set(layer), _FLOW_SOURCES.set(sources))
        try:
            return build_context(context)
        finally:
            _FLOW_PARAMS.reset(tokens[0])
            _FLOW_SOURCES.reset(tokens[1])
    built = build_context(context)
    for extra in (sources.read(), layer):
        if extra is not None:
            built = TaskContext(deep_merge(built, extra.data), sources=(*built.sources, extra.source))
    return built


# -- logs --------------------------------------------------------------------------------------------


class _RunLogStream:
    """A text stream for the ConsoleReporter: each line goes to the flow run's logger, masked."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger
        self.pending = threading.local()  # print() writes a line and its newline separately

    def write(self, text: str) -> int:
        """Buffer `text`; log every completed line."""
        buffered = getattr(self.pending, "text", "") + text
        *lines, rest = buffered.split("\n")
        self.pending.text = rest
        for line in lines:
            self.logger.info(mask_text(line))
        return len(text)

    def flush(self) -> None:
        """Nothing to do: lines are logged as they complete."""


# -- helpers -----------------------------------------------------------------------------------------


def _caller_module() -> str:
    """The module that called to_prefect_flow (where its flow is bound to a name)."""
    frame = sys._getframe(2)
    return str(frame.f_globals.get("__name__", __name__))


def _identifier(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name)
    return cleaned if cleaned.isidentifier() else f"task_{cleaned}"
