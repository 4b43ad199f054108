"""Priority of ready tasks: explicit priority, then longest remaining critical path, then registration.

The executor keeps ready tasks in a heap keyed by `priority_keys`; the smallest key starts first,
so the heap acts as a max-heap on (explicit priority, critical path). Expected durations come
from recorded statistics (see `task_engine_core._stats`); without them every critical path is 0
and ready tasks start in registration order, exactly as on a first run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ._graph import ReadyQueue, critical_path_lengths
from ._pipeline import ValidatedPipeline

__all__ = [
    "PriorityKey",
    "fill_unknown_durations",
    "planned_order",
    "priority_keys",
    "registration_keys",
    "start_ranks",
]

#: (minus explicit priority, minus critical path seconds, registration index): smallest starts first.
PriorityKey = tuple[float, float, int]


def fill_unknown_durations(names: list[str] | tuple[str, ...], known: Mapping[str, float]) -> dict[str, float]:
    """Expected seconds for every task; a task without history counts as the mean of those with one."""
    if not known:
        return {}
    guess = math.fsum(known.values()) / len(known)  # statistics.fmean, without importing statistics
    return {name: known.get(name, guess) for name in names}


def priority_keys(validated: ValidatedPipeline, expected: Mapping[str, float] | None = None) -> dict[str, PriorityKey]:
    """Heap keys for every task of `validated`.

    An explicit `@register(priority=...)` wins (higher first); among equal explicit priorities the
    task with the longest remaining critical path (its expected duration plus the longest chain
    of expected durations below it) starts first; ties and the no-statistics case fall back to
    registration order.
    """
    lengths = (
        critical_path_lengths(validated.order, validated.upstream, fill_unknown_durations(validated.order, expected))
        if expected
        else {}
    )
    keys: dict[str, PriorityKey] = {}
    for name, definition in validated.definitions.items():
        explicit = validated.policies[name].priority
        keys[name] = (-(explicit or 0.0), -lengths.get(name, 0.0), definition.index)
    return keys


def registration_keys(validated: ValidatedPipeline) -> dict[str, PriorityKey]:
    """Heap keys that start ready tasks in registration order, ignoring priorities (`--no-priority`)."""
    return {name: (0.0, 0.0, definition.index) for name, definition in validated.definitions.items()}


def start_ranks(keys: Mapping[str, PriorityKey]) -> dict[str, int]:
    """Each task's place in the start preference (0 first), so a ready heap can hold plain ints."""
    if all(key[0] == 0.0 and key[1] == 0.0 for key in keys.values()):
        return {name: key[2] for name, key in keys.items()}  # registration indexes are already 0..n-1
    return {name: rank for rank, name in enumerate(sorted(keys, key=keys.__getitem__))}


def planned_order(validated: ValidatedPipeline, keys: Mapping[str, PriorityKey]) -> tuple[str, ...]:
    """The order one worker would start the tasks in, given the heap keys (the plan line)."""
    if all(key[0] == 0.0 and key[1] == 0.0 for key in keys.values()):
        return validated.order  # registration order: validation already computed it
    return tuple(ReadyQueue(validated.upstream, start_ranks(keys)).static_order())
