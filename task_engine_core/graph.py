"""Graph algorithms over task names: validation, topological order, critical paths. All O(V+E)."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from .errors import CycleError

__all__ = ["topological_order", "find_cycle", "downstream_map", "critical_path_lengths"]


def downstream_map(upstream: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Invert an upstream map: for each task, the tasks that depend on it."""
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, parents in upstream.items():
        for parent in parents:
            downstream[parent].append(name)
    return downstream


def topological_order(names: Sequence[str], upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """Order `names` so every task follows its upstreams; ready tasks keep `names` order.

    Raises CycleError naming the cycle when there is none.
    """
    rank = {name: i for i, name in enumerate(names)}
    waiting = {name: len(upstream[name]) for name in names}
    downstream = downstream_map(upstream)
    ready = [rank[name] for name in names if not waiting[name]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in downstream[name]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, rank[child])
    if len(order) != len(names):
        blocked = [name for name in names if waiting[name]]
        raise CycleError(find_cycle(blocked, upstream))
    return order


def find_cycle(candidates: Sequence[str], upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """Return one cycle among `candidates` in run order, first task repeated: [A, B, C, A]."""
    allowed = set(candidates)
    # Walk upstream edges from the first candidate; every blocked task has a blocked upstream,
    # so the walk must revisit a task, and the revisited stretch is a cycle.
    position: dict[str, int] = {}
    path: list[str] = []
    node = candidates[0]
    while node not in position:
        position[node] = len(path)
        path.append(node)
        node = next(parent for parent in upstream[node] if parent in allowed)
    cycle = path[position[node]:]
    cycle.reverse()  # upstream walk -> run order (A -> B means A runs before B)
    rank = {name: i for i, name in enumerate(candidates)}
    start = min(range(len(cycle)), key=lambda i: rank[cycle[i]])  # begin at the first registered
    cycle = cycle[start:] + cycle[:start]
    return cycle + [cycle[0]]


def critical_path_lengths(
    order: Sequence[str], upstream: Mapping[str, Sequence[str]], durations: Mapping[str, float]
) -> dict[str, float]:
    """For each task: its expected duration plus the longest expected path below it."""
    downstream = downstream_map(upstream)
    lengths: dict[str, float] = {}
    for name in reversed(order):
        below = max((lengths[child] for child in downstream[name]), default=0.0)
        lengths[name] = durations.get(name, 0.0) + below
    return lengths
