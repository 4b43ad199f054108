"""Conformance scenarios: pipelines every backend must run to the same per-task states and attempts.

Each scenario is a module in `tests/conformance/scenarios/` that defines

- `pipeline`: a `Pipeline` with its tasks registered,
- `EXPECTED`: task name -> (TaskState, attempts) after a run,
- `KEEP_GOING`: whether the run uses keep-going instead of fail-fast,

and optionally `PARALLEL_SAFE = False` when the expected states assume tasks start one at a time
(fail-fast with an independent branch: with several workers the branch may already be running).

Two more kinds run with options of their own, so they are listed apart:

- `SELECTION_SCENARIOS` also define `RUN_OPTIONS`, the `task_engine` options a backend is given
  (`{"only": [...], "from": [...], "tags": [...]}`: CLI flags, Airflow `dag_run.conf`, Prefect
  flow parameter); `EXPECTED` is the selected run.
- `RESUME_SCENARIOS` define `FIRST` (the expected first, failing run), `EXPECTED` (the run that
  resumes it, with `{"resume": <first run id>}`), `KEPT` (tasks kept from the first run),
  `reset()` (call before the first run) and `fix()` (call before the resumed one).
Backoff delays in scenarios are 0 s so every backend runs them quickly. A backend adapter runs a
scenario its own way, collects {task: (state, attempts)}, and compares with `mismatches()`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

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
)

#: Selection: run with the scenario's RUN_OPTIONS.
SELECTION_SCENARIOS: tuple[str, ...] = ("selection_from_tags",)
#: Resume: a failing first run, then a run resuming it.
RESUME_SCENARIOS: tuple[str, ...] = ("resume_after_failure",)

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
    run_options: dict | None = None
    first_expected: Observed | None = None

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
    return Scenario(
        name=name,
        module=module,
        pipeline=module.pipeline,
        expected=dict(module.EXPECTED),
        keep_going=getattr(module, "KEEP_GOING", False),
        parallel_safe=getattr(module, "PARALLEL_SAFE", True),
        run_options=getattr(module, "RUN_OPTIONS", None),
        first_expected=dict(module.FIRST) if hasattr(module, "FIRST") else None,
    )


def mismatches(scenario: Scenario, observed: Observed, expected: Observed | None = None) -> list[str]:
    """Human-readable differences between what a backend observed and `expected` (the scenario's EXPECTED)."""
    problems = []
    expected = scenario.expected if expected is None else expected
    for task, (state, attempts) in expected.items():
        if task not in observed:
            problems.append(f"{scenario.name}: task {task!r} missing from the backend's result")
            continue
        got_state, got_attempts = observed[task]
        if (TaskState(got_state), got_attempts) != (state, attempts):
            problems.append(
                f"{scenario.name}: task {task!r} ended {TaskState(got_state).value} after {got_attempts} "
                f"attempt(s); expected {state.value} after {attempts}"
            )
    for task in observed.keys() - expected.keys():
        problems.append(f"{scenario.name}: unexpected task {task!r}")
    return problems
