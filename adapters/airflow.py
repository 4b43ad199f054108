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
import inspect
import logging
import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from task_engine_core import Pipeline, Secret, TaskEngineError, TaskState, mask_secrets, register_hydrator
from task_engine_core.backend import (
    AIRFLOW_MIN_RESCHEDULE_SECONDS,
    DEFAULT_ORDER,
    ENVIRONMENT_ORDER,
    AttemptOutcome,
    ContextError,
    EventBus,
    GroupPlan,
    Hydrated,
    HydrationError,
    HydrationRequest,
    MapOverError,
    MissingExtraError,
    OutcomeKind,
    OutputTransferError,
    StatsStore,
    TaskDefinition,
    TaskInputs,
    TaskLifecycle,
    TaskPolicies,
    UnavailableOutput,
    ValidatedPipeline,
    attempt_state,
    check_group_boundaries,
    check_inputs_available,
    collecting_pipeline,
    configured_tracing,
    deep_merge,
    default_listeners,
    error_text,
    group_pipeline,
    hydrate,
    instance_name,
    is_sensitive_name,
    items_of,
    may_start,
    open_stats_store,
    outputs_left_in_groups,
    parse_backend_options,
    plan_groups,
    priority_keys,
    run_group,
    trace_id_for,
    unavailable_output,
    worst_state,
)

#: Seconds a DAG parse waits for a PostgreSQL statistics server before using registration order.
DAG_PARSE_STATS_TIMEOUT = 2.0

from ._xcom import DEFAULT_MAX_XCOM_BYTES, ITEM_KWARG, FileOutputStore, OutputStore, XComTransfer, item_kwargs  # noqa: E402 - after the constants it reads

try:
    from airflow.sdk import DAG, Connection, Param, RetryDecision, RetryPolicy, TaskGroup, TriggerRule, Variable
    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, AirflowSkipException
    from airflow.sdk.log import mask_secret
except ImportError as _error:  # pragma: no cover - exercised in the main (Airflow-less) environment
    raise MissingExtraError("apache-airflow", "airflow", "task_engine.airflow") from _error
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError as _error:  # pragma: no cover - Airflow without the standard provider
    raise MissingExtraError("apache-airflow-providers-standard", "airflow", "task_engine.airflow") from _error

__all__ = [
    "AIRFLOW_CONNECTIONS_ORDER",
    "AIRFLOW_PARAMS_ORDER",
    "AIRFLOW_SECRETS_ORDER",
    "AIRFLOW_VARIABLE_ORDER",
    "AirflowAdapterError",
    "DAG_RUN_CONF_KEY",
    "DEFAULT_CONTEXT_VARIABLE",
    "ENGINE_RESUMED_XCOM_KEY",
    "ENGINE_STATE_XCOM_KEY",
    "FileOutputStore",
    "GROUP_STATES_XCOM_KEY",
    "NOTE_CONNECTION",
    "airflow_connections_hydrator",
    "OutputStore",
    "airflow_params_hydrator",
    "airflow_secrets_hydrator",
    "airflow_variable_hydrator",
    "expected_durations",
    "note_not_run",
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
AIRFLOW_CONNECTIONS_ORDER = AIRFLOW_VARIABLE_ORDER + 10
"""Chain position of the Connections hydrator: just over the Variable."""
AIRFLOW_SECRETS_ORDER = AIRFLOW_VARIABLE_ORDER + 20
"""Chain position of the secrets-backend hydrator: over the Variable and the Connections."""
AIRFLOW_PARAMS_ORDER = ENVIRONMENT_ORDER * 2
"""Chain position of the params / dag_run.conf hydrator: last, the run's own input wins."""

# Airflow DAG arguments the adapter fills in when the caller does not.
_DAG_DEFAULTS: dict[str, Any] = {
    "schedule": None,
    "start_date": datetime(2024, 1, 1, tzinfo=UTC),
    "catchup": False,
    "tags": ["task-engine"],
}
_log = logging.getLogger(__name__)
# Set on the error that asks for a retry, read back by the retry policy in the same process.
_DELAY_ATTRIBUTE = "__task_engine_retry_delay__"
# Airflow's execution_timeout kills a hung try's process; it comes this long after the core's
# own @timeout, which fires first so that retries, handlers and skippable apply as standalone.
EXECUTION_TIMEOUT_GRACE = timedelta(seconds=10)
# Key in the task state store (kept across tries) of a resource wait's first poll.
_FIRST_POLL_KEY = "task_engine_first_poll"


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
    """What the Airflow hydrators read: the running try's Airflow context and the DAG's context sources."""

    airflow_context: Mapping[str, Any]
    context_variable: str | None
    connections: Mapping[str, str] | None = None
    secrets: Mapping[str, str] | None = None


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
    # The run options are the adapter's, not the tasks' context.
    values = deep_merge(
        {key: params[key] for key in params if key != DAG_RUN_CONF_KEY},
        {key: value for key, value in conf.items() if key != DAG_RUN_CONF_KEY},
    )
    return Hydrated(_mark_sensitive(values), "airflow params and dag_run.conf")


def airflow_connections_hydrator(request: HydrationRequest) -> Hydrated | None:
    """Inside an Airflow task: each configured context key gets its Airflow Connection (by conn id), password masked."""
    current = _CURRENT_TRY.get()
    if current is None or not current.connections:
        return None
    values: dict[str, Any] = {}
    for key, conn_id in current.connections.items():
        try:
            connection = Connection.get(conn_id)
        except Exception as error:  # Airflow raises AirflowNotFoundException (a ValueError subclass, by version)
            raise HydrationError(
                f"context key {key!r}: Airflow Connection {conn_id!r} cannot be read ({error}); "
                f"create it with: airflow connections add {conn_id} --conn-uri '...'"
            ) from error
        _set_dotted(values, key, _connection_fields(connection))
    return Hydrated(values, f"airflow connections {', '.join(map(repr, current.connections.values()))}")


def airflow_secrets_hydrator(request: HydrationRequest) -> Hydrated | None:
    """Inside an Airflow task: each configured context key gets a value from Airflow's secrets backends, as a Secret."""
    current = _CURRENT_TRY.get()
    if current is None or not current.secrets:
        return None
    values: dict[str, Any] = {}
    for key, secret_name in current.secrets.items():
        # Variable.get asks the configured secrets backends first (Vault, AWS SM, AIRFLOW_VAR_...),
        # then the metadata database: the Airflow way to read a secret by name.
        value = Variable.get(secret_name, default=None)
        if value is None:
            raise HydrationError(
                f"context key {key!r}: secret {secret_name!r} is in none of Airflow's secrets backends; "
                f"add it there, or for a test: airflow variables set {secret_name} VALUE"
            )
        _set_dotted(values, key, Secret(value))
    return Hydrated(values, f"airflow secrets {', '.join(map(repr, current.secrets.values()))}")


_HYDRATORS = (
    (airflow_variable_hydrator, "airflow variable", AIRFLOW_VARIABLE_ORDER),
    (airflow_connections_hydrator, "airflow connections", AIRFLOW_CONNECTIONS_ORDER),
    (airflow_secrets_hydrator, "airflow secrets", AIRFLOW_SECRETS_ORDER),
    (airflow_params_hydrator, "airflow params", AIRFLOW_PARAMS_ORDER),
)


def _register_hydrators(source: _AirflowContextSource) -> None:
    """Add the Airflow hydrators `source` needs to the chain; called when a DAG is built, not at import.

    The Connections and secrets hydrators join only once a DAG uses them, so the context's
    sources list no empty ones.
    """
    wanted = {"airflow connections": bool(source.connections), "airflow secrets": bool(source.secrets)}
    # A second registration under the same name replaces the first: building many DAGs is harmless.
    for hydrator, name, order in _HYDRATORS:
        if wanted.get(name, True):
            register_hydrator(hydrator, name=name, order=order)


def _connection_fields(connection: Any) -> dict[str, Any]:
    """An Airflow Connection as context values: password and URI are Secrets, extra a mapping."""
    extra = connection.extra_dejson if connection.extra else {}
    fields = {
        "conn_id": connection.conn_id,
        "conn_type": connection.conn_type,
        "host": connection.host,
        "port": connection.port,
        "schema": connection.schema,
        "login": connection.login,
        "password": None if connection.password is None else Secret(connection.password),
        "extra": _mark_sensitive(extra),
        "uri": Secret(connection.get_uri()),
    }
    return fields


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """values['a']['b'] = value for key 'a.b' (context keys are dotted, as in the YAML file)."""
    *parents, last = key.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[last] = value


def priority_weights(validated: ValidatedPipeline, expected: Mapping[str, float] | None = None) -> dict[str, int]:
    """Airflow `priority_weight` per task (absolute rule): the core's start order, first = heaviest.

    `expected` holds recorded durations (seconds per task); with them the order is the core's
    longest-remaining-critical-path order, without them explicit priority, then registration.
    """
    keys = priority_keys(validated, expected)
    ranked = sorted(validated.order, key=lambda name: keys[name])
    return {name: len(ranked) - rank for rank, name in enumerate(ranked)}


def expected_durations(
    stats: StatsStore | str | os.PathLike[str] | bool | None, pipeline_name: str
) -> dict[str, float] | None:
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
    connections: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    task_groups: bool = True,
    output_store: OutputStore | None = None,
    max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
    min_reschedule_seconds: float = AIRFLOW_MIN_RESCHEDULE_SECONDS,
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
    `connections` maps context keys to Airflow conn ids, `secrets` context keys to names in
    Airflow's secrets backends.

    `groups` (group name -> task names) runs each connected group as one Airflow task named after
    the group, through the standalone executor inside it: the tasks keep their retries, events,
    statistics and spans, the Airflow task ends in the worst state inside it, and the inner states
    are logged and pushed as the XCom `GROUP_STATES_XCOM_KEY`.

    `task_groups` only arranges the graph view: when the Airflow tasks come from several modules,
    each module's become one Airflow TaskGroup (a folder; ids and runs are unchanged). A `groups`
    task sits in its tasks' module TaskGroup when they share a module, else at the top level.
    A task's docstring is its `doc_md`; a group's lists its tasks.
    Outputs travel as XCom (`return_value`); one larger than `max_xcom_bytes` once serialised goes
    to `output_store` (see `FileOutputStore`); a task with `map_over=` becomes a mapped Airflow
    task (`expand`), one Airflow task instance per item. Inside a group outputs pass in memory;
    a mapped task and the task it maps over are in the same group or in none.

    A `@wait_for_resource` pause is an Airflow reschedule of at least `min_reschedule_seconds`:
    a shorter one lets Airflow's scheduler see the end of one poll after it queued the next and
    fail the task (apache/airflow#71172). Lower it where your Airflow has that fix.
    """
    pipeline = pipeline if pipeline is not None else collecting_pipeline()
    # Checked before anything is validated, registered or built.
    if isinstance(min_reschedule_seconds, bool) or not (
        isinstance(min_reschedule_seconds, (int, float)) and 0 <= min_reschedule_seconds < math.inf
    ):
        raise AirflowAdapterError(
            f"to_airflow_dag(min_reschedule_seconds={min_reschedule_seconds!r}) for pipeline {pipeline.name!r}: "
            f"give the shortest pause between two resource polls in seconds, a number >= 0 "
            f"(default {AIRFLOW_MIN_RESCHEDULE_SECONDS:g})"
        )
    validated = pipeline.validate()
    plan = plan_groups(validated, groups)
    try:
        check_group_boundaries(validated, plan, "Airflow")
    except TaskEngineError as error:
        raise AirflowAdapterError(f"cannot compile pipeline {validated.name!r} for Airflow: {error}") from error
    dag_id = dag_id or pipeline.name
    task_weights = priority_weights(validated, expected_durations(stats, pipeline.name))
    # A group starts as early as its heaviest task would.
    weights = {unit: max(task_weights[name] for name in plan.members[unit]) for unit in plan.units}
    context_source = _AirflowContextSource(
        None if context_file is None else os.fspath(context_file),
        context_variable,
        _checked_keys(pipeline.name, "connections", connections),
        _checked_keys(pipeline.name, "secrets", secrets),
    )
    _register_hydrators(context_source)

    if dag_kwargs.get("fail_fast"):
        raise AirflowAdapterError(
            f"to_airflow_dag(fail_fast=True) for pipeline {pipeline.name!r}: Airflow's fail_fast needs the "
            f"all_success trigger rule, which would also skip the children of a skipped task; drop fail_fast "
            f"(Task Engine DAGs are fail-fast already unless keep_going=True)"
        )
    arguments = {**_DAG_DEFAULTS, **dag_kwargs, "params": _with_run_options(pipeline.name, dag_kwargs.get("params"))}
    try:
        dag = DAG(dag_id=dag_id, **arguments)
    except TaskEngineError:
        raise
    except Exception as error:
        raise AirflowAdapterError(
            f"cannot build Airflow DAG {dag_id!r} from pipeline {pipeline.name!r}: {error}"
        ) from error

    transfer = XComTransfer(max_xcom_bytes, output_store)
    mapped = validated.mapped
    operators: dict[str, Any] = {}
    folders = _module_task_groups(validated, plan) if task_groups else {}
    airflow_groups: dict[str, TaskGroup] = {}
    with dag:
        for unit in plan.units:
            folder = folders.get(unit)
            if folder is not None and folder[0] not in airflow_groups:
                airflow_groups[folder[0]] = TaskGroup(folder[0], tooltip=folder[1], prefix_group_id=False, dag=dag)
            # A mapped task is a mapped Airflow task: one instance per item, shown as such in the UI.
            over = None if plan.is_group(unit) else mapped.get(unit)
            try:
                factory = PythonOperator if over is None else PythonOperator.partial
                operator: Any = factory(  # a PythonOperator, or a partial that expand() maps
                    task_id=unit,
                    python_callable=_unit_callable(
                        validated,
                        plan,
                        unit,
                        context_source,
                        keep_going,
                        stats,
                        pipeline,
                        transfer,
                        min_reschedule_seconds,
                    ),
                    priority_weight=weights[unit],
                    weight_rule="absolute",
                    # A skipped parent must not skip its children: the engine runs a task once every
                    # parent succeeded or was skipped, which is exactly Airflow's none_failed.
                    trigger_rule=TriggerRule.NONE_FAILED,
                    task_group=airflow_groups[folder[0]] if folder is not None else None,
                    **_unit_arguments(validated, plan, unit, pools),
                )
                if over is not None:
                    operator = operator.expand(op_kwargs=operators[over].output.map(item_kwargs))
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


def _run_options_param() -> Param:
    """The trigger form's `task_engine` field: selection and resume, as `dag_run.conf["task_engine"]` takes them."""
    names = {"type": ["array", "string", "null"], "items": {"type": "string"}}
    return Param(
        None,
        type=["object", "null"],
        title="Task Engine run options",
        description=(
            'Selection and resume, e.g. {"only": ["Extract"]}, {"from": "Load", "with_upstream": true}, '
            '{"tags": ["nightly"]} or {"resume": "<dag run id>"}; empty runs every task'
        ),
        # Types only: unknown keys and bad names get the core's messages (with close matches) in the tasks.
        properties={
            "only": names,
            "from": names,
            "to": names,
            "tags": names,
            "with_upstream": {"type": "boolean"},
            "resume": {"type": ["boolean", "string", "null"]},
        },
    )


def _with_run_options(pipeline: str, params: Any) -> dict[str, Any]:
    """The DAG's params: the run options' field first, then the caller's (context keys of the trigger form)."""
    if hasattr(params, "get_param"):  # a ParamsDict: keep each Param (its type and description), not its value
        params = {key: params.get_param(key) for key in params}
    params = dict(params or {})
    if DAG_RUN_CONF_KEY in params:
        raise AirflowAdapterError(
            f"to_airflow_dag(params=...) for pipeline {pipeline!r}: {DAG_RUN_CONF_KEY!r} is the param of the run "
            f"options (selection, resume); give your context key another name"
        )
    return {DAG_RUN_CONF_KEY: _run_options_param(), **params}


def _checked_keys(pipeline: str, argument: str, mapping: Mapping[str, str] | None) -> dict[str, str] | None:
    """`connections=` / `secrets=`: context keys to names, both non-empty strings."""
    if not mapping:
        return None
    if not isinstance(mapping, Mapping) or not all(
        isinstance(key, str) and key and isinstance(value, str) and value for key, value in mapping.items()
    ):
        raise AirflowAdapterError(
            f"to_airflow_dag({argument}={mapping!r}) for pipeline {pipeline!r}: map context keys to names, "
            f"e.g. {argument}={{'warehouse': 'my_conn_id'}}"
        )
    return dict(mapping)


def _module_task_groups(validated: ValidatedPipeline, plan: GroupPlan) -> dict[str, tuple[str, str]]:
    """{Airflow task: (TaskGroup id, tooltip)}: one TaskGroup per module, when the Airflow tasks come from several.

    A `groups=` task belongs to its tasks' module when they share one; spanning modules, it
    stays at the top level (a TaskGroup is a folder of the graph, one folder per Airflow task).
    """
    modules: dict[str, str | None] = {}
    for unit in plan.units:
        members = {getattr(validated.definitions[name].target, "__module__", "") or "" for name in plan.members[unit]}
        modules[unit] = members.pop() if len(members) == 1 else None
    distinct = sorted({module for module in modules.values() if module is not None})
    if len(distinct) < 2:
        return {}  # one module: a single group around everything would only add a click
    # Group ids are the modules' names below their common package (jobs.job1 -> job1).
    common = os.path.commonprefix([module.split(".") for module in distinct])  # noqa: RUF071 - lists of parts, compared part by part
    ids = {module: "_".join(module.split(".")[len(common) :]) or module.replace(".", "_") for module in distinct}
    # Airflow keeps task ids and TaskGroup ids in one namespace: a module named like a task yields.
    ids = {module: f"{group_id}_tasks" if group_id in plan.units else group_id for module, group_id in ids.items()}
    tooltips = {module: _module_summary(module) for module in distinct}
    return {unit: (ids[module], tooltips[module]) for unit, module in modules.items() if module is not None}


def _module_summary(module: str) -> str:
    """The first line of a module's docstring, else its name: the group's tooltip."""
    import sys

    doc = inspect.getdoc(sys.modules.get(module)) if module in sys.modules else None
    return doc.strip().splitlines()[0] if doc else f"tasks of {module}"


def _doc(definition: TaskDefinition) -> str | None:
    """The task's own docstring (not an inherited one, not Task's) as Markdown for the UI."""
    target = definition.target
    own = target.__dict__.get("__doc__") if isinstance(target, type) else getattr(target, "__doc__", None)
    return inspect.cleandoc(own) if isinstance(own, str) and own.strip() else None


def _group_doc(validated: ValidatedPipeline, plan: GroupPlan, unit: str) -> str:
    """A `groups=` task's doc_md: its tasks in start order, each with its docstring's first line."""
    lines = [f"Task Engine task group `{unit}`, run by the standalone executor inside one Airflow try:", ""]
    for name in plan.members[unit]:
        doc = _doc(validated.definitions[name])
        lines.append(f"- `{name}`" + (f": {doc.splitlines()[0]}" if doc else ""))
    return "\n".join(lines)


def _timeout_arguments(policies: TaskPolicies) -> dict[str, Any]:
    """@timeout(s) as Airflow's execution_timeout, a grace after the core's own timeout."""
    if policies.timeout is None:
        return {}
    return {"execution_timeout": timedelta(seconds=policies.timeout) + EXECUTION_TIMEOUT_GRACE}


def _unit_callable(
    validated: ValidatedPipeline,
    plan: GroupPlan,
    unit: str,
    context_source: _AirflowContextSource,
    keep_going: bool,
    stats: StatsStore | str | os.PathLike[str] | bool | None,
    pipeline: Pipeline | None = None,
    transfer: XComTransfer | None = None,
    min_reschedule_seconds: float = AIRFLOW_MIN_RESCHEDULE_SECONDS,
) -> Any:
    if plan.is_group(unit):
        return _AirflowGroup(unit, group_pipeline(validated, plan, unit), context_source, keep_going, stats)
    return _AirflowAttempt(
        validated.definitions[unit],
        validated.policies[unit],
        context_source,
        validated,
        fail_fast=not keep_going,
        stats=stats,
        pipeline=pipeline,
        data=_data_flow(validated, plan, unit, transfer or XComTransfer()),
        min_reschedule_seconds=min_reschedule_seconds,
    )


def _unit_arguments(
    validated: ValidatedPipeline, plan: GroupPlan, unit: str, pools: Mapping[str, str] | None
) -> dict[str, Any]:
    """Retries and pool of one Airflow task: a task's own, or for a group none (its executor retries) and its tasks' pool."""
    if not plan.is_group(unit):
        policies = validated.policies[unit]
        return {
            "doc_md": _doc(validated.definitions[unit]),
            **_retry_arguments(policies),
            **_pool_arguments(unit, policies, pools),
            **_timeout_arguments(policies),
        }
    keys = tuple(key for name in plan.members[unit] for key in validated.policies[name].rate_limit_keys)
    # Explicit: Airflow's default_task_retries must not re-run a group whose tasks already used their attempts.
    # No execution_timeout: the tasks' own @timeout apply inside, and their retries' waits add up.
    return {
        "retries": 0,
        "doc_md": _group_doc(validated, plan, unit),
        **_pool_arguments(unit, TaskPolicies(rate_limit_keys=keys), pools),
    }


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
    connections: Mapping[str, str] | None = None
    secrets: Mapping[str, str] | None = None

    def hydrate(self, airflow_context: Mapping[str, Any]) -> Any:
        """Run the core's hydrator chain with the Airflow hydrators switched on for this try."""
        token = _CURRENT_TRY.set(_AirflowTry(airflow_context, self.context_variable, self.connections, self.secrets))
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
    mapper: str | None  # a task that maps over this one's output
    transfer: XComTransfer
    #: Upstreams inside a task group: their outputs stay in the group's standalone run.
    unavailable: Mapping[str, UnavailableOutput]


def _data_flow(validated: ValidatedPipeline, plan: GroupPlan, name: str, transfer: XComTransfer) -> _DataFlow:
    """The _DataFlow of task `name` (not in a group); `to_airflow_dag` refused data that cannot leave a group."""
    upstream = validated.upstream[name]
    over = validated.mapped.get(name)
    mapper = next((task for task, source in validated.mapped.items() if source == name), None)
    unavailable = outputs_left_in_groups(validated, plan, name, "Airflow")
    return _DataFlow(upstream, validated.mapped, over, mapper, transfer, unavailable)


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
        data: _DataFlow | None = None,
        min_reschedule_seconds: float = AIRFLOW_MIN_RESCHEDULE_SECONDS,
    ) -> None:
        self.data = data or _DataFlow((), {}, None, None, XComTransfer(), {})
        self.min_reschedule_seconds = min_reschedule_seconds
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

    def __call__(self, **airflow_context: Any) -> Any:
        item = airflow_context.pop(ITEM_KWARG, None)
        ti = airflow_context["ti"]
        data = self.data
        # An instance of a mapped task is named as standalone: Poll[0], Poll[1], ...
        name = self.definition.name if data.over is None else instance_name(self.definition.name, ti.map_index)
        unavailable = self._select_or_resume(ti, airflow_context)
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
        resource_wait = _ResourceWaitAcrossTries(airflow_context, ti, self.policies, self.min_reschedule_seconds)
        # Wall-clock time: a resource wait's deadline spans tries, each in its own process.
        lifecycle = TaskLifecycle(
            self.definition,
            self.policies,
            run_id,
            events,
            worker=socket.gethostname(),
            trace_id=trace_id,
            clock=time.time,
            sleep=resource_wait.reschedule,
            name=name,
            inputs=self._inputs(name, ti, item, unavailable),
        )
        try:
            return self._try(lifecycle, attempt, (str(ti.dag_id), run_id), airflow_context, resource_wait)
        finally:
            if tracing is not None:
                tracing.shutdown()  # type: ignore[attr-defined]

    def _inputs(self, name: str, ti: Any, item: Any, unavailable: Mapping[str, UnavailableOutput]) -> TaskInputs:
        """The task's inputs: its upstreams' outputs from XCom (its item, for an instance of a mapped task)."""
        data = self.data
        if data.upstream and (unavailable or data.unavailable):
            unavailable = {**data.unavailable, **unavailable}
            try:
                check_inputs_available(
                    name, self.definition.target if self.definition.is_function else None, data.over, unavailable
                )
            except TaskEngineError as error:
                # As standalone, the run is refused before the task starts: retrying cannot fix it.
                raise AirflowFailException(f"Task Engine: task {name!r} did not start: {error}") from error
        outputs: dict[str, Any] = data.transfer.pull(
            ti, [p for p in data.upstream if p not in unavailable], data.mapped
        )
        outputs.update((parent, unavailable[parent]) for parent in data.upstream if parent in unavailable)
        if data.over is None:
            return TaskInputs(name, data.upstream, outputs)
        return TaskInputs(name, data.upstream, outputs, data.over, item)

    def _hand_on(self, name: str, outcome: AttemptOutcome, key: str) -> tuple[AttemptOutcome, Any]:
        """The XCom value of a succeeded attempt's output; a FAILED outcome when XCom cannot carry it on."""
        data = self.data
        output = outcome.output
        try:
            if data.mapper is not None:
                # Airflow would refuse a non-list only when it expands; say here which task maps over it.
                output = items_of(data.mapper, name, output)
            xcom = data.transfer.to_xcom(name, output, key, mapped_over=data.mapper is not None)
        except (MapOverError, OutputTransferError) as error:
            reason = (
                "its output cannot be mapped over"
                if isinstance(error, MapOverError)
                else "its output cannot go by XCom"
            )
            return AttemptOutcome(OutcomeKind.FAILED, outcome.attempt, outcome.max_attempts, error, reason=reason), None
        return (outcome if output is outcome.output else replace(outcome, output=output)), xcom

    def _try(
        self,
        lifecycle: TaskLifecycle,
        attempt: int,
        run_key: tuple[str, str],
        airflow_context: Mapping[str, Any],
        resource_wait: _ResourceWaitAcrossTries,
    ) -> Any:
        name = lifecycle.name
        ti = airflow_context["ti"]
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
        state = attempt_state(lifecycle)
        state.first_poll.update(resource_wait.first_polls())
        try:
            outcome = lifecycle.attempt(attempt)
        except _Reschedule as pause:
            # Like a sensor in reschedule mode: the worker slot is free until the next poll.
            resource_wait.keep(state.first_poll)
            reschedule_at = datetime.now(UTC) + timedelta(seconds=pause.seconds)
            raise AirflowRescheduleException(reschedule_at) from None  # type: ignore[no-untyped-call]
        resource_wait.keep(state.first_poll)  # a retry's wait counts from this try's first poll
        xcom = None
        if outcome.kind is OutcomeKind.SUCCESS:
            outcome, xcom = self._hand_on(lifecycle.name, outcome, f"{ti.dag_id}/{ti.run_id}/{lifecycle.name}")

        if outcome.kind is OutcomeKind.RETRY:
            lifecycle.retry_handed_off(outcome)
            self._handed_off[run_key] = lifecycle.clock()
            _attach_delay(outcome)
            assert outcome.error is not None
            raise outcome.error

        lifecycle.conclude(outcome)
        lifecycle.finish()
        if outcome.kind is OutcomeKind.SKIPPED:
            if self.data.over is not None:
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
        return xcom

    def _select_or_resume(self, ti: Any, airflow_context: Mapping[str, Any]) -> dict[str, UnavailableOutput]:
        """Raise AirflowSkipException when the dag run's selection leaves this task out or a resume keeps it.

        Otherwise return the upstreams that do not run in this dag run (left out, kept), whose
        outputs this task cannot read.
        """
        conf = getattr(airflow_context.get("dag_run"), "conf", None) or {}
        # The trigger form's field, or a conf a caller sent without the form (the CLI, the REST API).
        options = conf.get(DAG_RUN_CONF_KEY, (airflow_context.get("params") or {}).get(DAG_RUN_CONF_KEY))
        if options is None:
            return {}
        name = self.definition.name
        unavailable: dict[str, UnavailableOutput] = {}
        try:
            select, resume = parse_backend_options(options, f"dag_run.conf[{DAG_RUN_CONF_KEY!r}]")
            if select and self.pipeline is not None:
                selected = self.pipeline.select(**select).validate()
                if name in selected.excluded:
                    ti.xcom_push(key=ENGINE_STATE_XCOM_KEY, value=TaskState.NOT_RUN.value)
                    raise AirflowSkipException(f"Task Engine did not run {name!r}: not selected ({selected.selection})")
                for parent in self.data.upstream:
                    if parent in selected.excluded:
                        unavailable[parent] = unavailable_output(parent, None, selected.selection)
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
            for parent in self.data.upstream:
                # A kept skip had no output to lose: its downstreams read None, as in the first run.
                kept = None if parent in unavailable else _kept_from(ti, parent, resume)
                if kept is not None and kept[0] is not TaskState.SKIPPED:
                    unavailable[parent] = unavailable_output(parent, kept[1], "")
        return unavailable

    def _fail_fast(self, ti: Any, attempt: int) -> None:
        """Raise unless the core's `may_start` lets this try run: no failed task in the run, or already started."""
        if attempt > 1:
            return  # started: it finishes its retries, as standalone (no states query needed)
        _refuse_after_a_failure(self.definition.name, ti)

    def __repr__(self) -> str:
        return f"<Task Engine attempt of {self.definition.name!r}>"


class _Reschedule(BaseException):
    """Raised by a resource wait's sleep on Airflow: not an attempt failure, the try reschedules itself."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class _ResourceWaitAcrossTries:
    """@wait_for_resource on Airflow: each pause is a reschedule, and the first poll is kept across tries.

    The core's resource guard counts its deadline from `first_poll` (wall-clock here, since each
    poll runs in a new process); Airflow 3.3's task state store keeps it for the task across
    reschedules and retries, keyed by the clearing round so that clearing the task starts afresh.
    """

    def __init__(self, airflow_context: Mapping[str, Any], ti: Any, policies: TaskPolicies, min_pause: float) -> None:
        self.min_pause = min_pause
        # Only tasks with attempt guards can poll: the others never touch the store.
        self.store = airflow_context.get("task_state_store") if policies.guards else None
        max_tries = getattr(ti, "max_tries", None)
        round_start = 0 if max_tries is None else max(max_tries - (policies.max_attempts - 1), 0)
        self.key = f"{_FIRST_POLL_KEY}:{round_start}"
        self.loaded: dict[str, float] = {}

    def first_polls(self) -> dict[str, float]:
        """First-poll times of this task's resource waits, from earlier tries and reschedules."""
        if self.store is None:
            return {}
        stored = self.store.get(self.key, default=None)
        if isinstance(stored, Mapping):
            self.loaded = {str(key): float(value) for key, value in stored.items()}
        return dict(self.loaded)

    def keep(self, first_poll: Mapping[str, float]) -> None:
        """Store first-poll times the store does not hold yet, for the next reschedule or try."""
        if self.store is not None and dict(first_poll) != self.loaded:
            self.store.set(self.key, dict(first_poll))
            self.loaded = dict(first_poll)

    def reschedule(self, seconds: float) -> None:
        """The resource guard's sleep: hand the pause (at least `min_pause`) to Airflow instead of holding the slot."""
        raise _Reschedule(max(seconds, self.min_pause))


NOTE_CONNECTION = "task_engine_api"
"""Airflow Connection (host: the api-server's URL; login/password, or none for all-admins) used to write notes."""


def note_not_run(ti: Any, note: str) -> bool:
    """Set the note of `ti` through Airflow's REST API with the `task_engine_api` Connection; False without it.

    The note shows on the task instance in the grid and graph views, so a task fail-fast kept
    from running is told apart from a skip at a glance. Without the Connection, or when the
    API refuses, the XCom mark remains and the try goes on (a warning says why).
    """
    import json
    import urllib.parse
    import urllib.request

    try:
        connection = Connection.get(NOTE_CONNECTION)
    except Exception:  # noqa: BLE001 - not configured: the documented default
        return False
    base = (connection.host or "").rstrip("/")
    if connection.port and base.count(":") < 2:
        base = f"{base}:{connection.port}"
    if "://" not in base:
        base = f"{connection.schema or 'http'}://{base}"
    try:
        if connection.login:
            body = json.dumps({"username": connection.login, "password": connection.password or ""}).encode()
            request = urllib.request.Request(f"{base}/auth/token", body, {"Content-Type": "application/json"})
        else:
            request = urllib.request.Request(f"{base}/auth/token")
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.loads(response.read())["access_token"]
        quoted = [urllib.parse.quote(str(part), safe="") for part in (ti.dag_id, ti.run_id, ti.task_id)]
        url = f"{base}/api/v2/dags/{quoted[0]}/dagRuns/{quoted[1]}/taskInstances/{quoted[2]}?update_mask=note"
        patch = urllib.request.Request(
            url,
            json.dumps({"note": note}).encode(),
            method="PATCH",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(patch, timeout=10):
            return True
    except Exception as error:  # noqa: BLE001 - the mark is a convenience: never fail the try over it
        _log.warning("Task Engine: cannot write the NOT RUN note through %s: %s", base, error)
        return False


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
    # The UI's own mark: a task-instance note (the task SDK cannot set one, the REST API can).
    note_not_run(ti, f"Task Engine: NOT RUN. {', '.join(failed)} failed first and the DAG is fail-fast.")
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
            raise AirflowFailException(
                f"Task Engine: task group {self.name!r} did not start: {mask_secrets(error)}"
            ) from error
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
            _log.info(
                "Task Engine group %r: %r ended %s after %d attempt(s)", self.name, name, r.state.value, r.attempts
            )
        worst = worst_state([r.state.value for r in result.tasks.values()])
        if worst == TaskState.SUCCESS.value:
            return
        if worst == TaskState.SKIPPED.value:
            skipped = [name for name, r in result.tasks.items() if r.state is TaskState.SKIPPED]
            raise AirflowSkipException(f"Task Engine group {self.name!r}: {', '.join(map(repr, skipped))} skipped")
        failed = result.failed
        detail = (
            "; ".join(
                f"task {r.name!r} failed after {r.attempts} attempt(s): {type(r.error).__name__}: {mask_secrets(error_text(r.error))}"
                for r in failed
            )
            or f"tasks ended {worst}"
        )
        # The tasks inside already used their attempts: Airflow must not try the group again.
        first = result.first_failure
        raise AirflowFailException(f"Task Engine group {self.name!r}: {detail}") from (
            first.error if first is not None else None
        )

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
        elif isinstance(value, str) and is_sensitive_name(key):
            marked[key] = Secret(value)
        else:
            marked[key] = value
    return marked
