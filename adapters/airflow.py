"""Compile a pipeline into an Apache Airflow 3 DAG: one PythonOperator per task, the same semantics.

Every Airflow task runs exactly one attempt of its engine task through
`task_engine_core.runtime.run_attempt` (the function the standalone executor uses) and maps the
outcome onto Airflow: success; a retry (Airflow's own retries, with the delay the core chose);
`AirflowFailException` when the core gives up early; `AirflowSkipException` for a skipped task.
Fail-fast is emulated: unless `keep_going=True`, a task whose dag run already holds a failed task
does not run (`AirflowSkipException`, marked NOT_RUN in the XCom `ENGINE_STATE_XCOM_KEY`), and a
ready task lets heavier ready tasks of its run start first, as the core's start order does.
Choose this over the standalone executor when the pipeline should be scheduled, retried and
monitored by an existing Airflow deployment.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from task_engine_core import Pipeline, Secret, TaskEngineError, TaskState, mask_secrets
from task_engine_core.context import (
    DEFAULT_ORDER,
    ENVIRONMENT_ORDER,
    SENSITIVE_WORDS,
    Hydrated,
    HydrationRequest,
    deep_merge,
    hydrate,
    register_hydrator,
)
from task_engine_core._dataflow import TaskInputs
from task_engine_core._mapping import instance_name, items_of
from task_engine_core.errors import ContextError, HydrationError, MapOverError, MissingExtraError
from task_engine_core.events import EventBus, RetryScheduled, TaskFinished, TaskStarted
from task_engine_core.pipeline import TaskDefinition, ValidatedPipeline, default_pipeline
from task_engine_core.policies import TaskPolicies
from task_engine_core.priority import priority_keys
from task_engine_core.reporters import ConsoleReporter
from task_engine_core.result import TaskResult
from task_engine_core.runtime import AttemptOutcome, OutcomeKind, TaskRun, run_attempt
from task_engine_core.stats import StatsStore, configured_stats_path

from ._xcom import DEFAULT_MAX_XCOM_BYTES, ITEM_KWARG, FileOutputStore, OutputStore, XComTransfer, item_kwargs

try:
    from airflow.sdk import DAG, RetryDecision, RetryPolicy, TriggerRule, Variable
    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, AirflowSkipException
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
    "FileOutputStore",
    "OutputStore",
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
# How long a fail-fast task waits before it looks again whether heavier ready tasks have started.
_PRIORITY_WAIT = timedelta(seconds=1)
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
    if stats is False:
        return None
    if stats is None or stats is True:
        path, is_default = configured_stats_path()
        if path is None or is_default:
            return None
        stats = path
    store = stats if isinstance(stats, StatsStore) else StatsStore(stats)
    return store.expected_durations(pipeline_name) or None


def to_airflow_dag(
    pipeline: Pipeline | None = None,
    dag_id: str | None = None,
    *,
    pools: Mapping[str, str] | None = None,
    context_file: str | os.PathLike[str] | None = None,
    context_variable: str | None = DEFAULT_CONTEXT_VARIABLE,
    stats: StatsStore | str | os.PathLike[str] | bool | None = None,
    keep_going: bool = False,
    output_store: OutputStore | None = None,
    max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
    **dag_kwargs: Any,
) -> DAG:
    """Return an Airflow DAG with one task per engine task; `dag_kwargs` go to `airflow.sdk.DAG`.

    `pools` maps rate-limit keys to Airflow pool names (a pool caps how many tasks run at once,
    not how often they call). Each try hydrates its context through the core's hydrator chain:
    `context_file` (else `task_engine.yml` in the worker's working directory), your hydrators,
    the Airflow Variable `context_variable`, the environment, then the DAG params and the run's
    `dag_run.conf`, which win. `stats` (a statistics file or store; None: $TASK_ENGINE_STATS
    if set) turns recorded durations into priority weights. As standalone, the DAG is fail-fast:
    once a task of the run failed, no other task starts (it ends `skipped`, marked NOT_RUN);
    `keep_going=True` lets independent branches run on. Outputs travel as XCom (`return_value`);
    one larger than `max_xcom_bytes` once serialised goes to `output_store` (see
    `FileOutputStore`); a task with `map_over=` becomes a mapped Airflow task (`expand`).
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

    transfer = XComTransfer(max_xcom_bytes, output_store)
    mapped = validated.mapped
    mapped_over = set(mapped.values())
    operators: dict[str, Any] = {}
    with dag:
        for name in validated.order:
            definition = validated.definitions[name]
            policies = validated.policies[name]
            over = mapped.get(name)
            try:
                attempt = _AirflowAttempt(
                    definition, policies, context_source, None if keep_going else weights,
                    _DataFlow(validated.upstream[name], mapped, over, name in mapped_over, transfer),
                )
                # A mapped task is a mapped Airflow task: one instance per item, shown as such in the UI.
                factory = PythonOperator if over is None else PythonOperator.partial
                operator = factory(
                    task_id=name,
                    python_callable=attempt,
                    priority_weight=weights[name],
                    weight_rule="absolute",
                    # A skipped parent must not skip its children: the engine runs a task once every
                    # parent succeeded or was skipped, which is exactly Airflow's none_failed.
                    trigger_rule=TriggerRule.NONE_FAILED,
                    **_retry_arguments(policies),
                    **_pool_arguments(name, policies, pools),
                )
                if over is not None:
                    operator = operator.expand(op_kwargs=operators[over].output.map(item_kwargs))
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


@dataclass(frozen=True)
class _DataFlow:
    """How one Airflow task gets its inputs and hands on its output."""

    upstream: tuple[str, ...]
    mapped: Mapping[str, str]  # every mapped task of the DAG -> the task it maps over
    over: str | None  # the upstream this task maps over, if it is mapped
    mapped_over: bool  # some task maps over this one's output
    transfer: XComTransfer


class _AirflowAttempt:
    """The python_callable of one Airflow task: one attempt through the core, outcome mapped to Airflow."""

    def __init__(
        self,
        definition: TaskDefinition,
        policies: TaskPolicies,
        context_source: _AirflowContextSource,
        fail_fast_weights: Mapping[str, int] | None = None,
        data: _DataFlow | None = None,
    ) -> None:
        self.data = data or _DataFlow((), {}, None, False, XComTransfer())
        self.definition = definition
        self.policies = policies
        self.context_source = context_source
        # Fail-fast when set: the priority weight of every task of the DAG (one shared dict).
        self.fail_fast_weights = fail_fast_weights
        # PythonOperator shows the callable's name in the UI and logs.
        self.__name__ = definition.name

    def __call__(self, **airflow_context: Any) -> Any:
        item = airflow_context.pop(ITEM_KWARG, None)
        data = self.data
        ti = airflow_context["ti"]
        # An instance of a mapped task is named as standalone: Poll[0], Poll[1], ...
        name = self.definition.name if data.over is None else instance_name(self.definition.name, ti.map_index)
        if self.fail_fast_weights is not None:
            self._fail_fast(ti)
        attempt = _attempt_number(ti.try_number, getattr(ti, "max_tries", None), self.policies.max_attempts - 1)
        run_id = str(airflow_context.get("run_id") or "")
        events = EventBus([ConsoleReporter()])
        result = TaskResult(name, worker=socket.gethostname(), start=datetime.now(timezone.utc))
        started = time.monotonic()
        events.emit(TaskStarted(run_id, name, result.worker, time.time()))
        try:
            context = self.context_source.hydrate(airflow_context)
        except ContextError as error:
            # As standalone, a context that cannot be built starts no attempt; retrying cannot fix it.
            raise AirflowFailException(f"Task Engine: task {name!r} did not start: {mask_secrets(error)}") from error
        task = self.definition.create()
        outputs = data.transfer.pull(ti, data.upstream, data.mapped)
        task.inputs = (
            TaskInputs(name, data.upstream, outputs, data.over, item) if data.over is not None
            else TaskInputs(name, data.upstream, outputs)
        )
        run = TaskRun(name, self.policies, task, run_id, events)
        outcome = run_attempt(run, attempt, context)
        output = outcome.output
        if outcome.kind is OutcomeKind.SUCCEEDED and data.mapped_over:
            # Airflow would refuse a non-list only when it pushes the XCom; say here which task maps over it.
            mapper = next(task_name for task_name, over in data.mapped.items() if over == self.definition.name)
            try:
                output = items_of(mapper, self.definition.name, output)
            except MapOverError as error:
                outcome = AttemptOutcome(
                    OutcomeKind.FAILED, attempt, outcome.max_attempts, error, reason="its output cannot be mapped over"
                )
                output = None

        if outcome.kind is OutcomeKind.RETRY:
            events.emit(
                RetryScheduled(run_id, name, attempt + 1, outcome.max_attempts, outcome.delay, outcome.error, outcome.reason)
            )
            _attach_delay(outcome)
            assert outcome.error is not None
            raise outcome.error

        result.state = _FINAL_STATE[outcome.kind]
        result.attempts = attempt
        result.error = outcome.error
        result.reason = outcome.reason
        result.waits = dict(run.waits)
        result.output = output
        result.end = datetime.now(timezone.utc)
        result.duration = time.monotonic() - started
        events.emit(TaskFinished(run_id, name, result))
        if outcome.kind is OutcomeKind.SKIPPED:
            if data.over is not None:
                # Keeps the instance's place in the list its downstreams pull (None, as standalone).
                ti.xcom_push(key="return_value", value=None)
            # Airflow shows these messages in its UI and logs: revealed secrets stay masked.
            raise AirflowSkipException(f"Task Engine skipped {name!r}: {outcome.reason}: {mask_secrets(outcome.error)}")
        if outcome.kind is OutcomeKind.FAILED:
            # The core decided no attempt follows (handler declined or none left): stop Airflow retrying.
            raise AirflowFailException(
                f"Task Engine: task {name!r} failed on attempt {attempt} of {outcome.max_attempts} "
                f"({outcome.reason}): {mask_secrets(outcome.error)}"
            ) from outcome.error
        key = f"{ti.dag_id}/{ti.run_id}/{name}"
        return data.transfer.to_xcom(name, output, key, mapped_over=data.mapped_over)

    def _fail_fast(self, ti: Any) -> None:
        """Raise unless this task may start now: no failed task in the run, no heavier task still waiting."""
        name = self.definition.name
        # Tasks have no database access in Airflow 3: the task SDK asks the API server.
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        failed = sorted(task for task, state in states.items() if state == "failed")
        if failed:
            # Airflow has no "never started" state a task can give itself: it ends skipped, and
            # the XCom tells it apart from a skip the core decided.
            message = (
                f"Task Engine did not run {name!r}: task {', '.join(map(repr, failed))} of this dag run "
                f"failed and the DAG is fail-fast (to_airflow_dag(keep_going=True) runs independent branches on)"
            )
            _log.warning(message)
            ti.xcom_push(key=ENGINE_STATE_XCOM_KEY, value=TaskState.NOT_RUN.value)
            raise AirflowSkipException(message)
        weights = self.fail_fast_weights
        assert weights is not None
        ahead = sorted(
            task for task, state in states.items() if state == "scheduled" and weights.get(task, 0) > weights[name]
        )
        if ahead:
            # As standalone, ready tasks start in priority order, so a failure of a heavier ready
            # task keeps this one from starting (dag.test() runs ready tasks in arbitrary order).
            _log.info(
                "Task Engine: %r waits for the heavier ready task(s) %s to start first", name, ", ".join(map(repr, ahead))
            )
            raise AirflowRescheduleException(datetime.now(timezone.utc) + _PRIORITY_WAIT)

    def __repr__(self) -> str:
        return f"<Task Engine attempt of {self.definition.name!r}>"


_FINAL_STATE = {
    OutcomeKind.SUCCEEDED: TaskState.SUCCESS,
    OutcomeKind.FAILED: TaskState.FAILED,
    OutcomeKind.SKIPPED: TaskState.SKIPPED,
}


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
