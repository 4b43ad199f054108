"""Conformance scenarios: pipelines every backend must run to the same per-task states and attempts.

Each scenario is a module in `tests/conformance/scenarios/` that defines

- `pipeline`: a `Pipeline` with its tasks registered,
- `EXPECTED`: task name -> (TaskState, attempts) after a run,
- `KEEP_GOING`: whether the run uses keep-going instead of fail-fast,
- `FEATURES`: the capability-matrix rows (see `FEATURES` below) a passing run of it proves,
- optionally `DIFFERENCES`: matrix column -> how those features differ there (a `~` cell),

and optionally `OUTPUTS` (task name -> the output every backend must give it, compared with
`output_mismatches()`) and `PARALLEL_SAFE = False` when the expected states assume tasks start one at a time
(fail-fast with an independent branch: with several workers the branch may already be running),
with `WITHOUT_START_ORDER`: task -> the other outcome it may have on a backend that cannot honour
the core's start order (Airflow), compared with `mismatches(..., start_order=False)`.

Two more kinds run with options of their own, so they are listed apart:

- `SELECTION_SCENARIOS` also define `RUN_OPTIONS`, the `task_engine` options a backend is given
  (`{"only": [...], "from": [...], "tags": [...]}`: CLI flags, Airflow `dag_run.conf`, Prefect
  flow parameter); `EXPECTED` is the selected run.
- `RESUME_SCENARIOS` define `FIRST` (the expected first, failing run), `EXPECTED` (the run that
  resumes it, with `{"resume": <first run id>}`), `KEPT` (tasks kept from the first run),
  `reset()` (call before the first run) and `fix()` (call before the resumed one).
`scenarios_for(column)` is what each backend's test runs, and what the README's capability matrix
(`scripts/capability_matrix.py`) says those runs prove.
Backoff delays in scenarios are 0 s so every backend runs them quickly. A backend adapter runs a
scenario its own way, collects {task: (state, attempts)}, and compares with `mismatches()`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from task_engine_core import Pipeline, TaskState

SCENARIOS: tuple[str, ...] = (
    "seed_tasks_run1",
    "seed_tasks_run2",
    "seed_jobs",
    "retries_exhausted",
    "retry_handler_refuses",
    "skip_outer",
    "skip_inner",
    "diamond",
    "fail_fast_independent_branch",
    "keep_going",
    "cross_module_jobs",
    "rate_limited",
    "resource_wait",
    "priority_first",
)

#: Scenarios that pass data between tasks and fan out at run time (`map_over=`).
DATA_SCENARIOS: tuple[str, ...] = (
    "outputs_diamond",
    "fan_out_empty",
    "fan_out_one",
    "fan_out_fifty",
    "fan_out_rate_limited",
    "fan_out_keep_going",
)

#: Selection: run with the scenario's RUN_OPTIONS.
SELECTION_SCENARIOS: tuple[str, ...] = ("selection_from_tags",)
#: Resume: a failing first run, then a run resuming it.
RESUME_SCENARIOS: tuple[str, ...] = ("resume_after_failure",)
#: Rows of the README's capability matrix, in order. The check rules' `feature`s are rows too.
FEATURES: tuple[str, ...] = (
    "dependencies and start order",
    "function tasks",
    "cross-module dependencies",
    "retries (`@retries`, `retry_handler`)",
    "skip (`@skippable`, `SkipTask`)",
    "fail-fast",
    "keep-going",
    "rate limits (`@rate_limit`)",
    "resource waits (`wait_for_resource`)",
    "priority (`priority=`, statistics)",
    "task outputs (return values)",
    "mapped tasks (`map_over=`)",
)

#: The capability matrix's columns: the standalone executor on one worker and on threads, the adapters.
COLUMNS: tuple[str, ...] = ("sequential", "threads", "airflow", "prefect")

Observed = dict[str, tuple[TaskState, int]]


@dataclass(frozen=True)
class Scenario:
    """One conformance scenario, loaded."""

    name: str
    module: ModuleType
    pipeline: Pipeline
    expected: Observed
    keep_going: bool
    parallel_safe: bool
    features: tuple[str, ...]
    differences: dict[str, str]
    without_start_order: Observed
    run_options: dict | None = None
    first_expected: Observed | None = None
    outputs: dict[str, Any] | None = None

    @property
    def module_name(self) -> str:
        """The importable module that defines the scenario's pipeline."""
        return self.module.__name__

    @property
    def fails(self) -> bool:
        """True when some task is expected to end FAILED (the run raises)."""
        return any(state is TaskState.FAILED for state, _ in self.expected.values())


def load(name: str) -> Scenario:
    """Import scenario `name` and return it."""
    module = importlib.import_module(f"{__name__}.scenarios.{name}")
    features = tuple(getattr(module, "FEATURES", ()))
    unknown = [feature for feature in features if feature not in FEATURES]
    if unknown:
        raise ValueError(f"scenario {name!r} declares unknown features {unknown}; use rows of FEATURES: {FEATURES}")
    return Scenario(
        name=name,
        module=module,
        pipeline=module.pipeline,
        expected=dict(module.EXPECTED),
        keep_going=getattr(module, "KEEP_GOING", False),
        parallel_safe=getattr(module, "PARALLEL_SAFE", True),
        run_options=getattr(module, "RUN_OPTIONS", None),
        first_expected=dict(module.FIRST) if hasattr(module, "FIRST") else None,
        features=features,
        differences=dict(getattr(module, "DIFFERENCES", {})),
        without_start_order=dict(getattr(module, "WITHOUT_START_ORDER", {})),
        outputs=getattr(module, "OUTPUTS", None),
    )


def scenarios_for(column: str) -> list[str]:
    """The scenarios a backend's conformance test runs: every one, on threads only the parallel-safe ones."""
    if column not in COLUMNS:
        raise ValueError(f"unknown backend column {column!r}; one of {COLUMNS}")
    return [name for name in SCENARIOS + DATA_SCENARIOS if column != "threads" or load(name).parallel_safe]


def connected_groups(scenario: Scenario) -> dict[str, list[str]]:
    """Every task of `scenario` in a task group: one group per connected part (`part1`, `part2`, ...)."""
    validated = scenario.pipeline.validate()
    part_of: dict[str, int] = {}
    parts: list[list[str]] = []
    for name in validated.order:  # upstreams come first, so a task joins (and merges) its parents' parts
        joined = sorted({part_of[parent] for parent in validated.upstream[name]})
        if not joined:
            parts.append([])
            joined = [len(parts) - 1]
        target = joined[0]
        for other in joined[1:]:
            for moved in parts[other]:
                part_of[moved] = target
            parts[target].extend(parts[other])
            parts[other] = []
        parts[target].append(name)
        part_of[name] = target
    return {f"part{i}": part for i, part in enumerate((p for p in parts if p), start=1)}


def mismatches(
    scenario: Scenario, observed: Observed, expected: Observed | None = None, start_order: bool = True
) -> list[str]:
    """Human-readable differences between what a backend observed and `expected` (the scenario's EXPECTED).

    `start_order=False`: the backend starts ready tasks in its own order, so a task may also end
    as the scenario's WITHOUT_START_ORDER says.
    """
    problems = []
    expected = scenario.expected if expected is None else expected
    for task, (state, attempts) in expected.items():
        if task not in observed:
            problems.append(f"{scenario.name}: task {task!r} missing from the backend's result")
            continue
        got_state, got_attempts = observed[task]
        got = (TaskState(got_state), got_attempts)
        if not start_order and got == scenario.without_start_order.get(task):
            continue
        if got != (state, attempts):
            problems.append(
                f"{scenario.name}: task {task!r} ended {TaskState(got_state).value} after {got_attempts} "
                f"attempt(s); expected {state.value} after {attempts}"
            )
    for task in observed.keys() - expected.keys():
        problems.append(f"{scenario.name}: unexpected task {task!r}")
    return problems


def output_mismatches(scenario: Scenario, observed: dict[str, Any]) -> list[str]:
    """Differences between the outputs a backend observed (task -> output) and the scenario's OUTPUTS."""
    if scenario.outputs is None:
        return []
    problems = []
    for task, output in scenario.outputs.items():
        got = observed.get(task)
        if got != output:
            problems.append(f"{scenario.name}: task {task!r} output {got!r}; expected {output!r}")
    return problems


def lifecycle_events(events: list[object]) -> dict[str, list[tuple[object, ...]]]:
    """Per task, the lifecycle events a backend emitted, in order and in backend-neutral terms.

    Started, attempt failed, retry scheduled (with its delay), waits by reason, finished (with the
    result's state, attempts, reason and which waits it recorded). A backend that starts the task
    once per try (Airflow) repeats TaskStarted; only the first counts.
    """
    from task_engine_core.backend import (
        AttemptFailed,
        RetryScheduled,
        TaskFinished,
        TaskStarted,
        WaitFinished,
        WaitStarted,
    )

    per_task: dict[str, list[tuple[object, ...]]] = {}
    for event in events:
        task = getattr(event, "task", None)
        if task is None:
            continue
        seen = per_task.setdefault(task, [])
        if isinstance(event, TaskStarted):
            if ("started",) not in seen:
                seen.append(("started",))
        elif isinstance(event, AttemptFailed):
            seen.append(("attempt failed", event.attempt, type(event.error).__name__))
        elif isinstance(event, RetryScheduled):
            seen.append(("retry scheduled", event.next_attempt, event.delay))
        elif isinstance(event, (WaitStarted, WaitFinished)):
            seen.append(("wait started" if isinstance(event, WaitStarted) else "wait finished", event.reason))
        elif isinstance(event, TaskFinished):
            result = event.result
            seen.append(("finished", result.state.value, result.attempts, result.reason, tuple(sorted(result.waits))))
    return per_task
