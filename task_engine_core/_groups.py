"""Task groups: run a connected part of a pipeline as one orchestrator task (Airflow task, Prefect task run).

`plan_groups` is a pure function over a validated pipeline: it checks the groups and contracts
each into one unit of a smaller graph, which an adapter then compiles unit by unit. A unit is a
group (several tasks, run inside it by the standalone executor) or a task on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._dataflow import UnavailableOutput, check_inputs_available
from ._graph import downstream_map, topological_order
from ._pipeline import Pipeline, ValidatedPipeline
from ._result import RunResult
from .errors import CycleError, DefinitionError, closest_names
from .events import Listener

__all__ = [
    "GroupError",
    "GroupPlan",
    "check_group_boundaries",
    "group_pipeline",
    "outputs_left_in_groups",
    "plan_groups",
    "run_group",
    "worst_state",
]


class GroupError(DefinitionError):
    """A task group cannot run as one orchestrator task: unknown or shared tasks, not connected, a cycle."""


@dataclass(frozen=True)
class GroupPlan:
    """A pipeline contracted along its groups: units in run order, their members and upstream units."""

    units: tuple[str, ...]
    members: dict[str, tuple[str, ...]]
    upstream: dict[str, tuple[str, ...]]
    unit_of: dict[str, str]
    groups: frozenset[str]

    def is_group(self, unit: str) -> bool:
        """True when `unit` is a group (run by the standalone executor inside one orchestrator task)."""
        return unit in self.groups


def plan_groups(validated: ValidatedPipeline, groups: Mapping[str, Sequence[str]] | None) -> GroupPlan:
    """Check `groups` (group name -> task names) against `validated` and contract each group into one unit.

    Raises GroupError naming the group and the tasks when a group is empty, names an unknown task,
    shares a task with another group, takes the name of a task outside it, is not connected by
    dependencies inside it, or would close a cycle with the rest of the pipeline.
    """
    groups = dict(groups or {})
    unit_of = {name: name for name in validated.order}
    members_of: dict[str, set[str]] = {}
    for group, names in groups.items():
        members_of[group] = _check_members(validated, group, names, unit_of, groups)
        for name in members_of[group]:
            unit_of[name] = group
    for group, names_in_group in members_of.items():
        _check_connected(validated, group, names_in_group)

    rank = {name: i for i, name in enumerate(validated.order)}
    members: dict[str, list[str]] = {}
    for name in validated.order:
        members.setdefault(unit_of[name], []).append(name)
    upstream: dict[str, list[str]] = {unit: [] for unit in members}
    for name in validated.order:
        unit = unit_of[name]
        for parent in validated.upstream[name]:
            above = unit_of[parent]
            if above != unit and above not in upstream[unit]:
                upstream[unit].append(above)
    # Ready units keep the core's order: a unit ranks where its first task does.
    names = sorted(members, key=lambda unit: rank[members[unit][0]])
    try:
        order = topological_order(names, upstream)
    except CycleError as error:
        raise _cycle_error(validated, error.cycle, members_of, unit_of) from None
    return GroupPlan(
        units=tuple(order),
        members={unit: tuple(members[unit]) for unit in order},
        upstream={unit: tuple(upstream[unit]) for unit in order},
        unit_of=unit_of,
        groups=frozenset(members_of),
    )


def _check_members(
    validated: ValidatedPipeline,
    group: str,
    names: Sequence[str],
    unit_of: Mapping[str, str],
    groups: Mapping[str, Sequence[str]],
) -> set[str]:
    if not isinstance(group, str) or not group:
        raise GroupError(f"task group name {group!r} must be a non-empty string")
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise GroupError(
            f"task group {group!r} must list task names, e.g. groups={{{group!r}: ['A', 'B']}}; got {names!r}"
        )
    if not names:
        raise GroupError(f"task group {group!r} has no tasks; list the names of the tasks it runs")
    for name in names:
        if name not in validated.definitions:
            suggestions = closest_names(name, validated.definitions)
            hint = f"; did you mean {' or '.join(map(repr, suggestions))}?" if suggestions else ""
            raise GroupError(f"task group {group!r} names unknown task {name!r} of pipeline {validated.name!r}{hint}")
        if unit_of[name] != name:
            raise GroupError(
                f"task {name!r} is in task groups {unit_of[name]!r} and {group!r}; a task belongs to at most one group"
            )
    if group in validated.definitions and group not in names:
        raise GroupError(
            f"task group {group!r} has the name of task {group!r}, which is not in it; the group becomes one "
            f"orchestrator task of that name, so give the group another name"
        )
    return set(names)


def _check_connected(validated: ValidatedPipeline, group: str, members: set[str]) -> None:
    """A group runs as one standalone run: its tasks must be linked by dependencies inside it."""
    neighbours: dict[str, set[str]] = {name: set() for name in members}
    for name in members:
        for parent in validated.upstream[name]:
            if parent in members:
                neighbours[name].add(parent)
                neighbours[parent].add(name)
    order = [name for name in validated.order if name in members]
    parts: list[list[str]] = []
    seen: set[str] = set()
    for start in order:
        if start in seen:
            continue
        part, stack = set(), [start]
        while stack:
            name = stack.pop()
            if name not in part:
                part.add(name)
                stack.extend(neighbours[name] - part)
        seen |= part
        parts.append([name for name in order if name in part])
    if len(parts) > 1:
        shown = " and ".join("{" + ", ".join(map(repr, part)) + "}" for part in parts)
        raise GroupError(
            f"task group {group!r} is not connected: {shown} share no dependency inside the group; "
            f"a group runs one connected part of the pipeline, so make one group of each part"
        )


def _cycle_error(
    validated: ValidatedPipeline, cycle: Sequence[str], members_of: Mapping[str, set[str]], unit_of: Mapping[str, str]
) -> GroupError:
    units = list(cycle[:-1])
    group = next(unit for unit in units if unit in members_of)
    at = units.index(group)
    units = units[at:] + units[:at]  # the loop starts and ends at the group
    # Name the tasks where the path leaves the group and where it comes back in.
    downstream = downstream_map(validated.upstream)
    leaves = sorted(m for m in members_of[group] if any(unit_of[c] == units[1] for c in downstream[m]))
    enters = sorted(m for m in members_of[group] if any(unit_of[p] == units[-1] for p in validated.upstream[m]))
    outside = ", ".join(map(repr, units[1:]))
    return GroupError(
        f"task group {group!r} would create a dependency cycle with the rest of the pipeline: "
        f"{' -> '.join([*units, group])}; a path leaves the group after {', '.join(map(repr, leaves))} and comes "
        f"back before {', '.join(map(repr, enters))} through {outside}; add {outside} to the group or take "
        f"{', '.join(map(repr, enters))} out of it"
    )


def outputs_left_in_groups(
    validated: ValidatedPipeline, plan: GroupPlan, task: str, orchestrator: str
) -> dict[str, UnavailableOutput]:
    """The upstream outputs `task` cannot read: a group passes outputs in memory, and only between its own tasks."""
    unit = plan.unit_of[task]
    unavailable = {}
    for parent in validated.upstream[task]:
        if plan.unit_of[parent] == unit:
            continue
        if plan.is_group(unit):
            unavailable[parent] = UnavailableOutput(
                f"runs outside the {orchestrator} task group {unit!r} of {task!r}, and a group's tasks "
                f"get outputs only from each other",
                f"put {parent!r} in that group too, or {task!r} in none",
            )
        elif plan.is_group(plan.unit_of[parent]):
            unavailable[parent] = UnavailableOutput(
                f"runs inside the {orchestrator} task group {plan.unit_of[parent]!r}, whose outputs stay in it",
                f"put {task!r} in that group too, or {parent!r} in none",
            )
    return unavailable


def check_group_boundaries(validated: ValidatedPipeline, plan: GroupPlan, orchestrator: str) -> None:
    """Refuse, before anything runs, data that would have to cross the edge of a group.

    A mapped task and the task it maps over in different units raise GroupError; a function task
    with a parameter named after an upstream on the other side of a group's edge raises
    InputUnavailableError. A Task subclass reading `self.inputs` is told when it reads.
    """
    if not plan.groups:
        return
    for task in validated.order:
        over = validated.mapped.get(task)
        # Units differ and one is a group: a task on its own is a unit of its own name.
        if over is not None and plan.unit_of[over] != plan.unit_of[task]:
            grouped = next((name for name in (task, over) if plan.is_group(plan.unit_of[name])), None)
            if grouped is not None:
                raise GroupError(
                    f"task {task!r} maps over the output of {over!r}, but only {grouped!r} is in the task group "
                    f"{plan.unit_of[grouped]!r}: put both in the group, or neither"
                )
        definition = validated.definitions[task]
        check_inputs_available(
            task,
            definition.target if definition.is_function else None,
            over,
            outputs_left_in_groups(validated, plan, task, orchestrator),
        )


def group_pipeline(validated: ValidatedPipeline, plan: GroupPlan, group: str) -> Pipeline:
    """The tasks of `group` as a pipeline of their own: same name (so statistics are the pipeline's), inner edges only."""
    inside = set(plan.members[group])
    pipeline = Pipeline(validated.name)
    # Registration order, as in the whole pipeline: ready tasks inside the group start in the same order.
    for name in validated.registration_order:
        if name in inside:
            definition = validated.definitions[name]
            over = validated.mapped.get(name)
            pipeline.add(
                definition.target,
                depends_on=[parent for parent in validated.upstream[name] if parent in inside],
                name=name,
                priority=definition.explicit_priority,
                tags=definition.tags,
                # Mapped inside the group's run; mapped over a task outside it, validation names the missing input.
                map_over=over if over in inside else None,
            )
    return pipeline


def run_group(
    pipeline: Pipeline,
    *,
    context: Any,
    keep_going: bool,
    listeners: Iterable[Listener] = (),
    reporters: Iterable[Listener] | None = None,
    stats: Any = None,
) -> RunResult:
    """Run a group's pipeline with the standalone executor on one worker; return its result, also after a failure."""
    from ._defaults import PipelineExecutor  # the standard executor sits a layer above this module

    executor = PipelineExecutor(
        pipeline,
        workers=1,
        context=context,
        keep_going=keep_going,
        listeners=listeners,
        reporters=reporters,
        # The orchestrator's task process owns the signals (Airflow's SIGTERM on a kill, Prefect's cancel).
        handle_signals=False,
        stats=stats,
    )
    try:
        executor.run()
    except Exception:
        if executor.result is None:
            raise  # nothing started: a definition or context error, not a task's failure
    assert executor.result is not None
    return executor.result


# Worst first: the order in which a group's inner states decide the group's own state.
_SEVERITY = ("failed", "upstream_failed", "not_run", "skipped", "success")


def worst_state(states: Sequence[str]) -> str:
    """The state a group shows: the worst of its tasks' states (failed > upstream_failed > not_run > skipped > success)."""
    present = {str(state) for state in states}
    return next((state for state in _SEVERITY if state in present), "success")
