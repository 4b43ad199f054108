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
Choose this over the standalone executor when the pipeline should be scheduled, retried and
monitored by an existing Airflow deployment.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
from collections.abc import Mapping
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
    Hydrated,
    HydrationRequest,
    OutcomeKind,
    TaskDefinition,
    TaskLifecycle,
    TaskPolicies,
    ValidatedPipeline,
    configured_stats_path,
    configured_tracing,
    deep_merge,
    default_listeners,
    may_start,
    priority_keys,
    trace_id_for,
)

try:
    from airflow.sdk import DAG, RetryDecision, RetryPolicy, TriggerRule, Variable
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
    from airflow.sdk.log import mask_secret
except ImportError as _error:  # pragma: no cover - exercised in the main (Airflow-less) environment
    raise MissingExtraError("apache-airflow", "airflow", "adapters.airflow") from _error
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError as _error:  # pragma: no cover - Airflow without the standard provider
    raise MissingExtraError("apache-airflow-providers-standard", "airflow", "adapters.airflow") from _error

__all__ = [
    "AIRFLOW_PARAMS_ORDER",
    "AIRFLOW_VARIABLE_ORDER",
    "AirflowAdapterError",
    "DEFAULT_CONTEXT_VARIABLE",
    "ENGINE_STATE_XCOM_KEY",
    "airflow_params_hydrator",
    "airflow_variable_hydrator",
    "expected_durations",
    "priority_weights",
    "to_airflow_dag",
]

DEFAULT_CONTEXT_VARIABLE = "task_engine_context"
"""The Airflow Variable (a JSON object) whose keys are merged into every task's context."""

ENGINE_STATE_XCOM_KEY = "task_engine_state"
"""XCom key holding "not_run" on a task that fail-fast kept from running (Airflow shows it `skipped`)."""

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
    """Recorded durations of `pipeline_name` from `stats` (a file path or StatsStore); None without.

    `stats=None` reads the file named by TASK_ENGINE_STATS if that is set; never the working
    directory's default file, as the dag-processor's working directory is arbitrary and parsing
    must not create files. `stats=False` means no statistics.
    """
    store = _stats_store(stats)
    return (store.expected_durations(pipeline_name) or None) if store is not None else None


def _stats_store(stats: StatsStore | str | os.PathLike[str] | bool | None) -> StatsStore | None:
    """The store `stats` names; None/True: $TASK_ENGINE_STATS only (never a working-directory default)."""
    if stats is False:
        return None
    if stats is None or stats is True:
        path, is_default = configured_stats_path()
        if path is None or is_default:
            return None
        stats = path
    return stats if isinstance(stats, StatsStore) else StatsStore(stats)


def to_airflow_dag(
    pipeline: Pipeline | None = None,
    dag_id: str | None = None,
    *,
    pools: Mapping[str, str] | None = None,
    context_file: str | os.PathLike[str] | None = None,
    context_variable: str | None = DEFAULT_CONTEXT_VARIABLE,
    stats: StatsStore | str | os.PathLike[str] | bool | None = None,
    keep_going: bool = False,
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
    """
    pipeline = pipeline if pipeline is not None else default_pipeline()
    validated = pipeline.validate()
    dag_id = dag_id or pipeline.name
    weights = priority_weights(validated, expected_durations(stats, pipeline.name))
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
        for name in validated.order:
            definition = validated.definitions[name]
            policies = validated.policies[name]
            try:
                operator = PythonOperator(
                    task_id=name,
                    python_callable=_AirflowAttempt(
                        definition, policies, context_source, validated, fail_fast=not keep_going, stats=stats
                    ),
                    priority_weight=weights[name],
                    weight_rule="absolute",
                    # A skipped parent must not skip its children: the engine runs a task once every
                    # parent succeeded or was skipped, which is exactly Airflow's none_failed.
                    trigger_rule=TriggerRule.NONE_FAILED,
                    **_retry_arguments(policies),
                    **_pool_arguments(name, policies, pools),
                )
            except TaskEngineError:
                raise
            except Exception as error:
                raise AirflowAdapterError(
                    f"cannot turn task {name!r} of pipeline {pipeline.name!r} into an Airflow task: {error}"
                ) from error
            parents = validated.upstream[name]
            if parents:
                # One call per task, not per edge: each call hashes the whole DAG.
                operator.set_upstream([operators[parent] for parent in parents])
            operators[name] = operator
    return dag


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
    ) -> None:
        self.definition = definition
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

    def _fail_fast(self, ti: Any, attempt: int) -> None:
        """Raise unless the core's `may_start` lets this try run: no failed task in the run, or already started."""
        if attempt > 1:
            return  # started: it finishes its retries, as standalone (no states query needed)
        name = self.definition.name
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

    def __repr__(self) -> str:
        return f"<Task Engine attempt of {self.definition.name!r}>"


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
