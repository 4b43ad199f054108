"""The backend seam: everything a backend (Airflow, Prefect, a third one) needs to run pipelines like the core.

A backend imports from `task_engine_core` (the user facade) and from this module only. What it
does with them, in order:

1. `validated_pipeline(pipeline)`: the pipeline (None = the default registry), validated.
   `ValidatedPipeline.order / upstream / definitions / policies` describe the graph.
2. Listeners: `default_listeners(...)` assembles the standard set (console, registered
   reporters, statistics, tracing when configured); give them to an `EventBus`. The bus delivers
   each event synchronously, on the thread that emits it, to every listener in order; listeners
   are pure (none changes an event or a result), so their order does not matter.
3. Run identity: a run id, and `settle_trace_id(...)` before `RunStarted` (tracing needs it;
   `trace_id_for(key)` derives one id from an orchestrator's run key, so every worker process of
   one orchestrator run shares one trace).
4. Starting: `may_start(started=..., failed=..., keep_going=...)` says whether a task may start
   now; a task whose first attempt ran always finishes its retries.
5. One task: a `TaskLifecycle(definition, policies, run_id, events, context=...)`.
   `start()` emits TaskStarted on the calling thread; `attempt(n)` runs one attempt (guards,
   `perform_task`, retry decision; emits RetryScheduled when another attempt follows); the
   retry delay is waited out either in process (`sleep_retry(outcome)`, or `run_to_end()` for
   the whole loop) or by the orchestrator (`retry_handed_off(outcome)`, then `resume(n + 1)` in
   its next try); `conclude(outcome)` / `fail(error)` settle the TaskResult and `finish()`
   emits TaskFinished. A backend that keeps the core's scheduler passes
   `PipelineExecutor(run_task=...)`, a function running one allowed task's lifecycle.
6. Context and secrets: `hydrate` / `build_context` and the hydrator registry; `mask_secrets`,
   `error_text` for anything shown outside the run (UI state messages, logs); `is_sensitive_name`
   (over `SENSITIVE_WORDS`) for which orchestrator-supplied values (Variables, params) become Secrets.
7. Task groups: `plan_groups(validated, groups)` checks a grouping and contracts it into units
   (a group, or a task on its own); `check_group_boundaries` refuses data that would cross a
   group's edge (`outputs_left_in_groups` for run-time reads); `group_pipeline` and `run_group`
   run a group's tasks with the standalone executor inside one orchestrator task; `worst_state`
   is the group's state.
8. Priority and statistics: `priority_keys(validated, expected)`; `resolve_stats_store(stats)`
   and `StatsStore.expected_durations`; `StatsStore.record_task` records one task of a run that
   no single process sees whole (one `runs` row per run, one `task_runs` row per task).
9. Data between tasks: `TaskLifecycle(..., inputs=TaskInputs(name, upstream, outputs))` gives a
   task its upstreams' outputs (`outputs` holds the non-None ones the backend carried over, e.g.
   from XCom); `conclude` puts what the task returned in `TaskResult.output`. For a mapped task
   (`ValidatedPipeline.mapped`: task -> the upstream it maps over) `items_of` turns that
   upstream's output into the items (MapOverError when it is no list), each instance runs as a
   lifecycle of its own with `name=instance_name(task, i)` and `TaskInputs(..., mapped=over,
   item=items[i])`, and the mapped task's output is the list of instance outputs in item order.
   An upstream that does not run here (kept by a resume, left out) is an `UnavailableOutput` in
   `outputs` (`unavailable_output` says why); `check_inputs_available` refuses, before the task starts, a task sure to read one.
"""

from __future__ import annotations

import os

from ._attempt import AttemptState, HandlerDecision
from ._context import TaskContext, deep_merge
from ._dataflow import TaskInputs, UnavailableOutput, check_inputs_available, unavailable_output
from ._defaults import default_listeners
from ._groups import (
    GroupError,
    GroupPlan,
    check_group_boundaries,
    group_pipeline,
    outputs_left_in_groups,
    plan_groups,
    run_group,
    worst_state,
)
from ._hydrators import (
    DEFAULT_ORDER,
    ENVIRONMENT_ORDER,
    Hydrated,
    HydrationRequest,
    build_context,
    hydrate,
    register_hydrator,
    registered_hydrators,
)
from ._lifecycle import TaskLifecycle, may_start
from ._loader import load_pipeline
from ._mapping import instance_name, items_of
from ._pipeline import Pipeline, TaskDefinition, ValidatedPipeline, collecting_pipeline
from ._policies import TaskPolicies
from ._priority import PriorityKey, priority_keys
from ._result import RunResult, TaskResult
from ._runtime import AttemptOutcome, OutcomeKind, run_attempt
from ._secrets import SENSITIVE_WORDS, Secret, error_text, is_sensitive_name, mask_secrets, mask_text
from ._selection import SelectOptions, parse_backend_options
from ._stats import RunStatsRecorder, StatsStore, TaskStatsRecorder, open_stats_store
from ._trace_ids import new_trace_id, settle_trace_id, trace_id_for
from .errors import (
    ContextError,
    HydrationError,
    InvalidArgumentError,
    MapOverError,
    MissingExtraError,
    OutputTransferError,
)
from .events import (
    AttemptFailed,
    AttemptStarted,
    Event,
    EventBus,
    Listener,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskStarted,
    WaitFinished,
    WaitStarted,
)
from .reporters import ConsoleReporter

__all__ = [
    "AIRFLOW_MIN_RESCHEDULE_SECONDS",
    "ContextError",
    "HydrationError",
    "InvalidArgumentError",
    "MapOverError",
    "MissingExtraError",
    "OutputTransferError",
    "AttemptFailed",
    "AttemptOutcome",
    "AttemptStarted",
    "AttemptState",
    "DEFAULT_ORDER",
    "ENVIRONMENT_ORDER",
    "Event",
    "ConsoleReporter",
    "EventBus",
    "GroupError",
    "GroupPlan",
    "HandlerDecision",
    "Hydrated",
    "HydrationRequest",
    "Listener",
    "OutcomeKind",
    "PriorityKey",
    "RetryScheduled",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "SENSITIVE_WORDS",
    "SelectOptions",
    "Secret",
    "RunStatsRecorder",
    "StatsStore",
    "TaskContext",
    "TaskDefinition",
    "TaskFinished",
    "TaskInputs",
    "TaskLifecycle",
    "TaskPolicies",
    "TaskResult",
    "TaskStarted",
    "TaskStatsRecorder",
    "UnavailableOutput",
    "ValidatedPipeline",
    "WaitFinished",
    "WaitStarted",
    "attempt_state",
    "build_context",
    "check_inputs_available",
    "configured_tracing",
    "deep_merge",
    "default_listeners",
    "error_text",
    "group_pipeline",
    "collecting_pipeline",
    "hydrate",
    "load_pipeline",
    "instance_name",
    "is_sensitive_name",
    "items_of",
    "mask_secrets",
    "mask_text",
    "may_start",
    "new_trace_id",
    "parse_backend_options",
    "plan_groups",
    "check_group_boundaries",
    "outputs_left_in_groups",
    "priority_keys",
    "register_hydrator",
    "registered_hydrators",
    "open_stats_store",
    "resolve_stats_store",
    "run_attempt",
    "run_group",
    "settle_trace_id",
    "trace_id_for",
    "unavailable_output",
    "validated_pipeline",
    "worst_state",
]

#: Where a pipeline can run (`check --backend`); the CLI's choices, kept here so listing them imports no checker.
BACKENDS = ("standalone", "airflow", "prefect")

#: The shortest pause between two polls of a resource wait on Airflow (`to_airflow_dag(min_reschedule_seconds=)`).
#: Airflow fails a reschedule-mode task when the executor reports the end of one poll after the
#: next poll was queued (apache/airflow#71172); a poll's process lingers seconds after it ends.
AIRFLOW_MIN_RESCHEDULE_SECONDS = 15.0


def validated_pipeline(pipeline: Pipeline | None = None) -> ValidatedPipeline:
    """`pipeline` (None: the default registry) validated; raises the definition errors a user can fix."""
    return (pipeline if pipeline is not None else collecting_pipeline()).validate()


def attempt_state(lifecycle: TaskLifecycle) -> AttemptState:
    """The lifecycle's AttemptState, created if no attempt ran yet, so a backend can seed it before one.

    A backend whose tries run in separate processes restores there what the state must keep
    across them (`first_poll`: when each resource wait first polled).
    """
    return lifecycle.state or lifecycle._new_state()


def resolve_stats_store(stats: StatsStore | str | os.PathLike[str] | bool | None) -> StatsStore | None:
    """Where statistics go: a StatsStore, a path or postgresql:// URL, None/True ($TASK_ENGINE_STATS, else the default file) or False."""
    return open_stats_store(stats)


def configured_tracing(trace_file: str | os.PathLike[str] | None = None) -> Listener | None:
    """The TracingListener that `trace_file` or the OTEL_* environment asks for, else None (OpenTelemetry loads only then)."""
    from .telemetry import tracing_from_environment

    listener: Listener | None = tracing_from_environment(trace_file)
    return listener
