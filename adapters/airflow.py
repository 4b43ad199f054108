"""Compile a pipeline into an Apache Airflow 3 DAG: one PythonOperator per task, the same semantics.

Every Airflow try runs exactly one attempt of its engine task through the core's `TaskLifecycle`
(the object the standalone executor uses, see `task_engine_core.backend`) and maps the outcome
onto Airflow: success; a retry (Airflow's own retries, with the delay the core chose, handed to
Airflow to wait out); `AirflowFailException` when the core gives up early; `AirflowSkipException`
for a skipped task. Each try reports to the core's default listeners (console, registered
reporters, statistics per task when a statistics file is configured, tracing when configured).
Fail-fast is the core's `may_start`: unless `keep_going=True`, a task that has not started yet
does not run once its dag run holds a failed task (`AirflowSkipException`, marked NOT_RUN in the
XCom `ENGINE_STATE_XCOM_KEY`); a task whose first attempt ran finishes its retries. Start order
among ready tasks is Airflow's own `priority_weight`, set from the core's priority order.
Selection and resume come from `dag_run.conf["task_engine"]` (`DAG_RUN_CONF_KEY`): a left-out
task ends `skipped` (marked NOT_RUN), a task kept from the resumed dag run ends `skipped` marked
with the state it keeps; neither blocks its children (trigger rule none_failed).
Choose this over the standalone executor when the pipeline should be scheduled, retried and
monitored by an existing Airflow deployment.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from task_engine_core import (
    ContextError,
    EventBus,
    HydrationError,
    MissingExtraError,
    Pipeline,
    Secret,
    StatsStore,
    TaskEngineError,
    TaskState,
    default_pipeline,
    hydrate,
    mask_secrets,
    register_hydrator,
)
from task_engine_core.backend import (
    DEFAULT_ORDER,
    ENVIRONMENT_ORDER,
    SENSITIVE_WORDS,
    AttemptOutcome,
    GroupPlan,
    Hydrated,
    HydrationRequest,
    OutcomeKind,
    TaskDefinition,
    TaskLifecycle,
    TaskPolicies,
    ValidatedPipeline,
    open_stats_store,
    configured_tracing,
    deep_merge,
    default_listeners,
    error_text,
    group_pipeline,
    may_start,
    parse_backend_options,
    plan_groups,
    priority_keys,
    run_group,
    trace_id_for,
    worst_state,
)

#: Seconds a DAG parse waits for a PostgreSQL statistics server before using registration order.
DAG_PARSE_STATS_TIMEOUT = 2.0

try:
    from airflow.sdk import DAG, RetryDecision, RetryPolicy, TriggerRule, Variable
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
    from airflow.sdk.log import mask_secret
except ImportError as _error:  # pragma: no cover - exercised in the main (Airflow-less) environment
    raise MissingExtraError("apache-airflow", "airflow", "task_engine.airflow") from _error
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError as _error:  # pragma: no cover - Airflow without the standard provider
    raise MissingExtraError("apache-airflow-providers-standard", "airflow", "task_engine.airflow") from _error

__all__ = [
    "AIRFLOW_PARAMS_ORDER",
    "AIRFLOW_VARIABLE_ORDER",
    "AirflowAdapterError",
    "DAG_RUN_CONF_KEY",
    "DEFAULT_CONTEXT_VARIABLE",
    "ENGINE_RESUMED_XCOM_KEY",
    "ENGINE_STATE_XCOM_KEY",
    "GROUP_STATES_XCOM_KEY",
    "airflow_params_hydrator",
    "airflow_variable_hydrator",
    "expected_durations",
    "priority_weights",
    "to_airflow_dag",
]

DEFAULT_CONTEXT_VARIABLE = "task_engine_context"
"""The Airflow Variable (a JSON object) whose keys are merged into every task's context."""

ENGINE_STATE_XCOM_KEY = "task_engine_state"
"""XCom key holding the engine state of a task the adapter ended `skipped` without an attempt:
"not_run" (fail-fast, or left out by a selection), or "success" / "skipped" (kept by a resume)."""

ENGINE_RESUMED_XCOM_KEY = "task_engine_resumed_from"
"""XCom key holding the dag run id whose result a resumed task kept (the run that did the work)."""

DAG_RUN_CONF_KEY = "task_engine"
"""The dag_run.conf key of selection and resume: `{"only": [...], "from": ..., "resume": "<run id>"}`."""

GROUP_STATES_XCOM_KEY = "task_engine_group"
"""XCom key of a task group's Airflow task: {task: {"state", "attempts", "reason"}} for every task inside it."""

AIRFLOW_VARIABLE_ORDER = (DEFAULT_ORDER + ENVIRONMENT_ORDER) / 2
"""Chain position of the Variable hydrator: over the file and default hydrators, under the environment."""
AIRFLOW_PARAMS_ORDER = ENVIRONMENT_ORDER * 2
"""Chain position of the params / dag_run.conf hydrator: last, the run's own input wins."""

# Airflow DAG arguments the adapter fills in when the caller does not.
_DAG_DEFAULTS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2024, 1, 1, tzinfo=timezone.utc),
    "catchup": False,
    "tags": ["task-engine"],
}
_log = logging.getLogger(__name__)
# Set on the error that asks for a retry, read back by the retry policy in the same process.
_DELAY_ATTRIBUTE = "__task_engine_retry_delay__"


class AirflowAdapterError(TaskEngineError):
    """A pipeline cannot be compiled into an Airflow DAG as asked (pool mapping, DAG arguments)."""


class _CoreRetryDelay(RetryPolicy):
    """Retry after exactly the delay the core chose (backoff, jitter, or a retry_handler's seconds)."""

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None) -> RetryDecision:
        """Use the delay attached by the adapter; fall back to the task's retry_delay."""
        delay = getattr(exception, _DELAY_ATTRIBUTE, None)
        if delay is None:
            return RetryDecision.default()
        return RetryDecision.retry(delay=timedelta(seconds=delay), reason=f"Task Engine retry in {delay:g} s")

    def serialize(self) -> dict[str, Any]:
        """Airflow stores only that a policy exists; this is for completeness."""
        return {"__type": "TaskEngineCoreRetryDelay"}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> _CoreRetryDelay:
        """The policy has no state."""
        return cls()


_CORE_RETRY_DELAY = _CoreRetryDelay()  # stateless: one instance serves every task


@dataclass(frozen=True)
class _AirflowTry:
    """What the Airflow hydrators read: the running try's Airflow context and the DAG's Variable name."""

    airflow_context: Mapping[str, Any]
    context_variable: str | None


# Set only while an Airflow task hydrates its context, so the hydrators do nothing in a standalone run.
_CURRENT_TRY: contextvars.ContextVar[_AirflowTry | None] = contextvars.ContextVar("airflow_try", default=None)


def airflow_variable_hydrator(request: HydrationRequest) -> Hydrated | None:
    """Inside an Airflow task: the DAG's context Variable (a JSON object); absent means nothing."""
    current = _CURRENT_TRY.get()
    if current is None or not current.context_variable:
        return None
    variable = current.context_variable
    value = Variable.get(variable, default=None, deserialize_json=True)
    if value is None:
        return Hydrated({}, f"airflow Variable {variable!r} (not set)")
    if not isinstance(value, Mapping):
        raise HydrationError(
            f"Airflow Variable {variable!r} must hold a JSON object of context keys, "
            f"not {type(value).__name__}; fix it with: airflow variables set {variable} '{{...}}'"
        )
    return Hydrated(_mark_sensitive(value), f"airflow Variable {variable!r}")


def airflow_params_hydrator(request: HydrationRequest) -> Hydrated | None:
    """Inside an Airflow task: the DAG's params, overridden by the triggering run's `dag_run.conf`."""
    current = _CURRENT_TRY.get()
    if current is None:
        return None
    params = current.airflow_context.get("params") or {}
    dag_run = current.airflow_context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    values = deep_merge({key: params[key] for key in params}, conf)
    return Hydrated(_mark_sensitive(values), "airflow params and dag_run.conf")


def register_airflow_hydrators() -> None:
    """Add the Airflow Variable and params hydrators to the chain (idempotent: registered by name)."""
    register_hydrator(airflow_variable_hydrator, name="airflow variable", order=AIRFLOW_VARIABLE_ORDER)
    register_hydrator(airflow_params_hydrator, name="airflow params", order=AIRFLOW_PARAMS_ORDER)


def priority_weights(validated: ValidatedPipeline, expected: Mapping[str, float] | None = None) -> dict[str, int]:
    """Airflow `priority_weight` per task (absolute rule): the core's start order, first = heaviest.

    `expected` holds recorded durations (seconds per task); with them the order is the core's
    longest-remaining-critical-path order, without them explicit priority, then registration.
    """
    keys = priority_keys(validated, expected)
    ranked = sorted(validated.order, key=lambda name: keys[name])
    return {name: len(ranked) - rank for rank, name in enumerate(ranked)}


def expected_durations(stats: StatsStore | str | os.PathLike[str] | bool | None, pipeline_name: str) -> dict[str, float] | None:
    """Recorded durations of `pipeline_name` from `stats` (a file path, postgresql:// URL or StatsStore); None without.

    `stats=None` reads the store named by TASK_ENGINE_STATS if that is set; never the working
    directory's default file, as the dag-processor's working directory is arbitrary and parsing
    must not create files. `stats=False` means no statistics.
    """
    # A short connect timeout: the dag-processor parses every file in a loop, and a PostgreSQL
    # store that is down must cost a parse seconds and one StatsWarning, never the DAG.
    store = open_stats_store(stats, use_default=False, connect_timeout=DAG_PARSE_STATS_TIMEOUT)
    if store is None:
        return None
    return store.expected_durations(pipeline_name) or None


def _stats_store(stats: StatsStore | str | os.PathLike[str] | bool | None) -> StatsStore | None:
    """The store `stats` names; None/True: $TASK_ENGINE_STATS only (never a working-directory default)."""
    return open_stats_store(stats, use_default=False)


def to_airflow_dag(
    pipeline: Pipeline | None = None,
    dag_id: str | None = None,
    *,
    pools: Mapping[str, str] | None = None,
    context_file: str | os.PathLike[str] | None = None,
    context_variable: str | None = DEFAULT_CONTEXT_VARIABLE,
    stats: StatsStore | str | os.PathLike[str] | bool | None = None,
    keep_going: bool = False,
    groups: Mapping[str, Sequence[str]] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Return an Airflow DAG with one task per engine task; `dag_kwargs` go to `airflow.sdk.DAG`.

    `pools` maps rate-limit keys to Airflow pool names (a pool caps how many tasks run at once,
    not how often they call). Each try hydrates its context through the core's hydrator chain:
    `context_file` (else `task_engine.yml` in the worker's working directory), your hydrators,
    the Airflow Variable `context_variable`, the environment, then the DAG params and the run's
    `dag_run.conf`, which win. `stats` (a statistics file or store; None: $TASK_ENGINE_STATS
    if set) turns recorded durations into priority weights, and every try records its task
    there (one `runs` row per dag run, one `task_runs` row per task). As standalone, the DAG is
    fail-fast: once a task of the run failed, no task that has not started starts (it ends
    `skipped`, marked NOT_RUN); `keep_going=True` lets independent branches run on.

    `groups` (group name -> task names) runs each connected group as one Airflow task named after
    the group, through the standalone executor inside it: the tasks keep their retries, events,
    statistics and spans, the Airflow task ends in the worst state inside it, and the inner states
    are logged and pushed as the XCom `GROUP_STATES_XCOM_KEY`.
    """
    # When a DAG is built, not when this module is imported: importing the adapter changes nothing.
    # Every process that runs a try parses the DAG file first, so its chain has them too.
    register_airflow_hydrators()
    pipeline = pipeline if pipeline is not None else default_pipeline()
    validated = pipeline.validate()
    plan = plan_groups(validated, groups)
    dag_id = dag_id or pipeline.name
    task_weights = priority_weights(validated, expected_durations(stats, pipeline.name))
    # A group starts as early as its heaviest task would.
    weights = {unit: max(task_weights[name] for name in plan.members[unit]) for unit in plan.units}
    context_source = _AirflowContextSource(
        None if context_file is None else os.fspath(context_file), context_variable
    )

    if dag_kwargs.get("fail_fast"):
        raise AirflowAdapterError(
            f"to_airflow_dag(fail_fast=True) for pipeline {pipeline.name!r}: Airflow's fail_fast needs the "
            f"all_success trigger rule, which would also skip the children of a skipped task; drop fail_fast "
            f"(Task Engine DAGs are fail-fast already unless keep_going=True)"
        )
    arguments = {**_DAG_DEFAULTS, **dag_kwargs}
    try:
        dag = DAG(dag_id=dag_id, **arguments)
    except TaskEngineError:
        raise
    except Exception as error:
        raise AirflowAdapterError(f"cannot build Airflow DAG {dag_id!r} from pipeline {pipeline.name!r}: {error}") from error

    operators: dict[str, PythonOperator] = {}
    with dag:
        for unit in plan.units:
            try:
                operator = PythonOperator(
                    task_id=unit,
                    python_callable=_unit_callable(validated, plan, unit, context_source, keep_going, stats, pipeline),
                    priority_weight=weights[unit],
                    weight_rule="absolute",
                    # A skipped parent must not skip its children: the engine runs a task once every
                    # parent succeeded or was skipped, which is exactly Airflow's none_failed.
                    trigger_rule=TriggerRule.NONE_FAILED,
                    **_unit_arguments(validated, plan, unit, pools),
                )
            except TaskEngineError:
                raise
            except Exception as error:
                kind = "task group" if plan.is_group(unit) else "task"
                raise AirflowAdapterError(
                    f"cannot turn {kind} {unit!r} of pipeline {pipeline.name!r} into an Airflow task: {error}"
                ) from error
            parents = plan.upstream[unit]
            if parents:
                # One call per task, not per edge: each call hashes the whole DAG.
                operator.set_upstream([operators[parent] for parent in parents])
            operators[unit] = operator
    return dag


def _unit_callable(
    validated: ValidatedPipeline,
    plan: GroupPlan,
    unit: str,
    context_source: _AirflowContextSource,
    keep_going: bool,
    stats: StatsStore | str | os.PathLike[str] | bool | None,
    pipeline: Pipeline | None = None,
) -> Any:
    if plan.is_group(unit):
        return _AirflowGroup(unit, group_pipeline(validated, plan, unit), context_source, keep_going, stats)
    return _AirflowAttempt(
        validated.definitions[unit], validated.policies[unit], context_source, validated, fail_fast=not keep_going, stats=stats, pipeline=pipeline
    )


def _unit_arguments(
    validated: ValidatedPipeline, plan: GroupPlan, unit: str, pools: Mapping[str, str] | None
) -> dict[str, Any]:
    """Retries and pool of one Airflow task: a task's own, or for a group none (its executor retries) and its tasks' pool."""
    if not plan.is_group(unit):
        return {**_retry_arguments(validated.policies[unit]), **_pool_arguments(unit, validated.policies[unit], pools)}
    keys = tuple(key for name in plan.members[unit] for key in validated.policies[name].rate_limit_keys)
    # Explicit: Airflow's default_task_retries must not re-run a group whose tasks already used their attempts.
    return {"retries": 0, **_pool_arguments(unit, TaskPolicies(rate_limit_keys=keys), pools)}


def _retry_arguments(policies: TaskPolicies) -> dict[str, Any]:
    """retries(n) as Airflow sees it: n - 1 retries, the backoff as Airflow's own delay settings."""
    # Always explicit: Airflow's default_task_retries must not add tries the engine would refuse.
    if policies.max_attempts == 1:
        return {"retries": 0}
    backoff = policies.backoff
    arguments: dict[str, Any] = {
        "retries": policies.max_attempts - 1,
        "retry_delay": timedelta(seconds=backoff.initial),
        "retry_exponential_backoff": backoff.multiplier if backoff.is_exponential else 0,
        "retry_policy": _CORE_RETRY_DELAY,
    }
    if backoff.maximum is not None:
        arguments["max_retry_delay"] = timedelta(seconds=backoff.maximum)
    return arguments


def _pool_arguments(name: str, policies: TaskPolicies, pools: Mapping[str, str] | None) -> dict[str, Any]:
    if not pools:
        return {}
    chosen = {pools[key] for key in policies.rate_limit_keys if key in pools}
    if len(chosen) > 1:
        raise AirflowAdapterError(
            f"task {name!r} uses rate-limit keys mapped to several Airflow pools ({', '.join(sorted(chosen))}); "
            f"an Airflow task has one pool: map at most one of its keys in pools="
        )
    return {"pool": chosen.pop()} if chosen else {}


@dataclass(frozen=True)
class _AirflowContextSource:
    """Where a DAG's tasks hydrate their context from."""

    context_file: str | None
    context_variable: str | None

    def hydrate(self, airflow_context: Mapping[str, Any]) -> Any:
        """Run the core's hydrator chain with the Airflow hydrators switched on for this try."""
        token = _CURRENT_TRY.set(_AirflowTry(airflow_context, self.context_variable))
        try:
            context = hydrate(self.context_file)
        finally:
            _CURRENT_TRY.reset(token)
        # Airflow's own masker then hides these values in task logs and tracebacks too.
        for value in _secret_values(context):
            mask_secret(value)
        return context


class _AirflowAttempt:
    """The python_callable of one Airflow task: one step of the core's TaskLifecycle per Airflow try."""

    def __init__(
        self,
        definition: TaskDefinition,
        policies: TaskPolicies,
        context_source: _AirflowContextSource,
        validated: ValidatedPipeline,
        *,
        fail_fast: bool = True,
        stats: StatsStore | str | os.PathLike[str] | bool | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.definition = definition
        # The whole pipeline, to resolve a dag run's selection (names, tags, from / to).
        self.pipeline = pipeline
        self.policies = policies
        self.context_source = context_source
        self.validated = validated
        self.fail_fast = fail_fast
        self.stats = stats
        # (dag id, run id) -> clock when a try in this process handed a retry delay to Airflow
        # (dag.test() runs every try in one process; a real worker starts a new one per try).
        self._handed_off: dict[tuple[str, str], float] = {}
        # PythonOperator shows the callable's name in the UI and logs.
        self.__name__ = definition.name

    def __call__(self, **airflow_context: Any) -> None:
        ti = airflow_context["ti"]
        self._select_or_resume(ti, airflow_context)
        attempt = _attempt_number(ti.try_number, getattr(ti, "max_tries", None), self.policies.max_attempts - 1)
        if self.fail_fast:
            self._fail_fast(ti, attempt)
        run_id = str(airflow_context.get("run_id") or "")
        tracing = configured_tracing()
        # One trace per dag run: every try of every task derives the same id from the run.
        trace_id = trace_id_for(f"airflow dag run {ti.dag_id} {run_id}") if tracing is not None else None
        events = EventBus(
            default_listeners(
                tracing=tracing, stats_store=_stats_store(self.stats), per_task_stats=(self.validated, trace_id)
            )
        )
        lifecycle = TaskLifecycle(
            self.definition, self.policies, run_id, events, worker=socket.gethostname(), trace_id=trace_id
        )
        try:
            self._try(lifecycle, attempt, (str(ti.dag_id), run_id), airflow_context)
        finally:
            if tracing is not None:
                tracing.shutdown()  # type: ignore[attr-defined]

    def _try(
        self, lifecycle: TaskLifecycle, attempt: int, run_key: tuple[str, str], airflow_context: Mapping[str, Any]
    ) -> None:
        name = self.definition.name
        lifecycle.start()  # every try starts the task on its worker: listeners there hear it begin
        if attempt > 1:
            handed = self._handed_off.pop(run_key, None)
            # Airflow waited at least the delay the core chose; measured when that try ran here.
            waited = lifecycle.clock() - handed if handed is not None else self.policies.backoff.base_delay(attempt - 1)
            lifecycle.resume(attempt, waited)
        try:
            lifecycle.context = self.context_source.hydrate(airflow_context)
        except ContextError as error:
            # As standalone, a context that cannot be built starts no attempt; retrying cannot fix it.
            raise AirflowFailException(f"Task Engine: task {name!r} did not start: {mask_secrets(error)}") from error
        outcome = lifecycle.attempt(attempt)

        if outcome.kind is OutcomeKind.RETRY:
            lifecycle.retry_handed_off(outcome)
            self._handed_off[run_key] = lifecycle.clock()
            _attach_delay(outcome)
            assert outcome.error is not None
            raise outcome.error

        lifecycle.conclude(outcome)
        lifecycle.finish()
        if outcome.kind is OutcomeKind.SKIPPED:
            # Airflow shows these messages in its UI and logs: revealed secrets stay masked.
            raise AirflowSkipException(f"Task Engine skipped {name!r}: {outcome.reason}: {mask_secrets(outcome.error)}")
        if outcome.kind is OutcomeKind.FAILED:
            # The core decided no attempt follows (handler declined or none left): stop Airflow retrying.
            raise AirflowFailException(
                f"Task Engine: task {name!r} failed on attempt {attempt} of {outcome.max_attempts} "
                f"({outcome.reason}): {mask_secrets(outcome.error)}"
            ) from outcome.error

    def _select_or_resume(self, ti: Any, airflow_context: Mapping[str, Any]) -> None:
        """Raise AirflowSkipException when the dag run's selection leaves this task out or a resume keeps it."""
        conf = getattr(airflow_context.get("dag_run"), "conf", None) or {}
        if conf.get(DAG_RUN_CONF_KEY) is None:
            return
        name = self.definition.name
        try:
            select, resume = parse_backend_options(conf[DAG_RUN_CONF_KEY], f"dag_run.conf[{DAG_RUN_CONF_KEY!r}]")
            if select and self.pipeline is not None:
                selected = self.pipeline.select(**select).validate()
                if name in selected.excluded:
                    ti.xcom_push(key=ENGINE_STATE_XCOM_KEY, value=TaskState.NOT_RUN.value)
                    raise AirflowSkipException(f"Task Engine did not run {name!r}: not selected ({selected.selection})")
            if resume is True:
                raise AirflowAdapterError(
                    f"dag_run.conf[{DAG_RUN_CONF_KEY!r}]['resume'] is true, but on Airflow the dag run to resume must be "
                    f"named: give its run id (airflow dags list-runs {ti.dag_id})"
                )
        except TaskEngineError as error:
            # Every task of the dag run fails alike: a wrong name or option is not worth a retry.
            raise AirflowFailException(f"Task Engine: task {name!r} did not start: {error}") from error
        if resume:
            kept = _kept_from(ti, name, resume)
            if kept is not None:
                state, origin = kept
                ti.xcom_push(key=ENGINE_STATE_XCOM_KEY, value=state.value)
                ti.xcom_push(key=ENGINE_RESUMED_XCOM_KEY, value=origin)
                raise AirflowSkipException(
                    f"Task Engine kept {name!r}: it ended {state.value} in dag run {origin!r} (resumed run {resume!r})"
                )

    def _fail_fast(self, ti: Any, attempt: int) -> None:
        """Raise unless the core's `may_start` lets this try run: no failed task in the run, or already started."""
        if attempt > 1:
            return  # started: it finishes its retries, as standalone (no states query needed)
        _refuse_after_a_failure(self.definition.name, ti)

    def __repr__(self) -> str:
        return f"<Task Engine attempt of {self.definition.name!r}>"


def _kept_from(ti: Any, name: str, resumed: str) -> tuple[TaskState, str] | None:
    """(state, dag run id) when task `name` ended success or skipped in dag run `resumed`; else None.

    Airflow's own record of that dag run decides: `success`, or `skipped` without the adapter's
    NOT_RUN mark (a skip the core decided); a task that run kept in turn names its origin.
    """
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[resumed]).get(resumed, {})
    if not states:
        raise AirflowFailException(
            f"Task Engine: cannot resume dag run {resumed!r} of DAG {ti.dag_id!r}: no such dag run; give a run id "
            f"from: airflow dags list-runs {ti.dag_id}"
        )
    state = states.get(name)
    if state not in ("success", "skipped"):
        return None
    marked = ti.xcom_pull(task_ids=name, key=ENGINE_STATE_XCOM_KEY, run_id=resumed)
    origin = ti.xcom_pull(task_ids=name, key=ENGINE_RESUMED_XCOM_KEY, run_id=resumed) or resumed
    if marked is None:
        return (TaskState.SUCCESS if state == "success" else TaskState.SKIPPED), resumed
    if marked in (TaskState.SUCCESS.value, TaskState.SKIPPED.value):
        return TaskState(marked), origin
    return None  # not run there (fail-fast or not selected): it runs now
def _refuse_after_a_failure(name: str, ti: Any) -> None:
    """Raise AirflowSkipException (marked NOT_RUN) when the dag run already holds a failed task."""
    # Tasks have no database access in Airflow 3: the task SDK asks the API server.
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    failed = sorted(task for task, state in states.items() if state == "failed")
    if may_start(started=False, failed=bool(failed), keep_going=False):
        return
    # Airflow has no "never started" state a task can give itself: it ends skipped, and
    # the XCom tells it apart from a skip the core decided.
    message = (
        f"Task Engine did not run {name!r}: task {', '.join(map(repr, failed))} of this dag run "
        f"failed and the DAG is fail-fast (to_airflow_dag(keep_going=True) runs independent branches on)"
    )
    _log.warning(message)
    ti.xcom_push(key=ENGINE_STATE_XCOM_KEY, value=TaskState.NOT_RUN.value)
    raise AirflowSkipException(message)


class _AirflowGroup:
    """The python_callable of a task group: its tasks run by the standalone executor inside one Airflow try."""

    def __init__(
        self,
        name: str,
        pipeline: Pipeline,
        context_source: _AirflowContextSource,
        keep_going: bool,
        stats: StatsStore | str | os.PathLike[str] | bool | None,
    ) -> None:
        self.name = name
        self.pipeline = pipeline
        self.context_source = context_source
        self.keep_going = keep_going
        self.stats = stats
        self.__name__ = name

    def __call__(self, **airflow_context: Any) -> None:
        ti = airflow_context["ti"]
        if not self.keep_going:
            _refuse_after_a_failure(self.name, ti)
        try:
            context = self.context_source.hydrate(airflow_context)
        except ContextError as error:
            raise AirflowFailException(f"Task Engine: task group {self.name!r} did not start: {mask_secrets(error)}") from error
        tracing = configured_tracing()
        try:
            result = run_group(
                self.pipeline,
                context=context,
                keep_going=self.keep_going,
                listeners=[tracing] if tracing is not None else [],
                # As for a single task: the configured statistics store, never the worker's working directory.
                stats=_stats_store(self.stats) or False,
            )
        finally:
            if tracing is not None:
                tracing.shutdown()  # type: ignore[attr-defined]
        inner = {
            name: {"state": r.state.value, "attempts": r.attempts, "reason": mask_secrets(r.reason)}
            for name, r in result.tasks.items()
        }
        ti.xcom_push(key=GROUP_STATES_XCOM_KEY, value=inner)
        for name, r in result.tasks.items():
            _log.info("Task Engine group %r: %r ended %s after %d attempt(s)", self.name, name, r.state.value, r.attempts)
        worst = worst_state([r.state.value for r in result.tasks.values()])
        if worst == TaskState.SUCCESS.value:
            return
        if worst == TaskState.SKIPPED.value:
            skipped = [name for name, r in result.tasks.items() if r.state is TaskState.SKIPPED]
            raise AirflowSkipException(f"Task Engine group {self.name!r}: {', '.join(map(repr, skipped))} skipped")
        failed = result.failed
        detail = "; ".join(
            f"task {r.name!r} failed after {r.attempts} attempt(s): {type(r.error).__name__}: {mask_secrets(error_text(r.error))}"
            for r in failed
        ) or f"tasks ended {worst}"
        # The tasks inside already used their attempts: Airflow must not try the group again.
        raise AirflowFailException(f"Task Engine group {self.name!r}: {detail}") from (failed[0].error if failed else None)

    def __repr__(self) -> str:
        return f"<Task Engine group {self.name!r}>"


def _attempt_number(try_number: int, max_tries: int | None, retries: int) -> int:
    """The engine's attempt number for an Airflow try.

    Clearing a task in Airflow keeps counting try_number and raises max_tries by `retries`, so
    the attempts of the latest round start at max_tries - retries + 1.
    """
    if max_tries is None or max_tries < retries:
        return max(try_number, 1)
    return max(try_number - (max_tries - retries), 1)


def _attach_delay(outcome: AttemptOutcome) -> None:
    try:
        setattr(outcome.error, _DELAY_ATTRIBUTE, outcome.delay)
    except (AttributeError, TypeError):
        pass  # an exception type without a __dict__: Airflow uses the task's retry_delay instead


def _secret_values(value: Any) -> list[Any]:
    """Every revealed secret inside a context (nested mappings and sequences included)."""
    if isinstance(value, Secret):
        return [value.reveal()]
    if isinstance(value, Mapping):
        return [secret for item in value.values() for secret in _secret_values(item)]
    if isinstance(value, (list, tuple)):
        return [secret for item in value for secret in _secret_values(item)]
    return []


def _mark_sensitive(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values under sensitive key names (password, token, ...) become Secrets, as the environment's do."""
    marked: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            marked[key] = _mark_sensitive(value)
        elif isinstance(value, str) and any(word in str(key).lower() for word in SENSITIVE_WORDS):
            marked[key] = Secret(value)
        else:
            marked[key] = value
    return marked
