"""Graph algorithms over task names: the ready queue, topological order, cycles, critical paths. All O(V+E)."""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence

from .errors import CycleError

__all__ = [
    "ReadyQueue",
    "topological_order",
    "find_cycle",
    "downstream_map",
    "critical_path_lengths",
    "critical_path",
]


def downstream_map(upstream: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Invert an upstream map: for each task, the tasks that depend on it."""
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, parents in upstream.items():
        for parent in parents:
            downstream[parent].append(name)
    return downstream


# A heap entry is a task's rank shifted left, plus 1 + the item index for an instance of a mapped
# task: instances keep their task's place in the start order, in item order among themselves.
_INDEX_BITS = 32
_INDEX_MASK = (1 << _INDEX_BITS) - 1


class ReadyQueue:
    """graphlib.TopologicalSorter's protocol over task names, handing out ready tasks best-ranked first.

    `prepare()`, then repeatedly `get_ready()` (or `pop()` for the one best task), `done(name)`,
    while `is_active()`. `rank` gives each task's place in the start preference (0 first; ints,
    because a fan-out keeps thousands of ready tasks in the heap and ints compare fast); by
    default registration order, the order of `upstream`. Tasks in `skip` never become ready and
    count as done for their dependents (left out by a selection, kept by a resume). A task that
    ended without releasing its dependents (a failure) is `done(name, release=False)`. A handed-out
    task can fan out at run time (`map_over(name, count)`): its instances are handed out by `take()`
    and each is `done(name, instance=i)`; `done(name)` once they ended releases its dependents.
    The order is decided by the ranks alone, so every user of this queue plans the same order;
    callers on several threads hold one lock around it.
    """

    __slots__ = (
        "_by_rank",
        "_downstream",
        "_expanded",
        "_finished",
        "_handed",
        "_heap",
        "_rank",
        "_skip",
        "_upstream",
        "_waiting",
    )

    def __init__(
        self,
        upstream: Mapping[str, Sequence[str]],
        rank: Mapping[str, int] | None = None,
        *,
        skip: Collection[str] = (),
    ) -> None:
        self._upstream = upstream
        self._rank = rank if rank is not None else {name: i for i, name in enumerate(upstream)}
        self._by_rank = [""] * (max(self._rank.values(), default=-1) + 1)
        for name, place in self._rank.items():
            self._by_rank[place] = name
        self._skip = skip
        self._waiting: dict[str, int] = {}
        self._downstream: dict[str, list[str]] = {}
        self._heap: list[int] = []
        self._expanded: set[str] = set()  # mapped tasks fanned out, waiting for their instances
        self._handed = 0
        self._finished = 0

    def prepare(self) -> None:
        """Count each task's unfinished upstreams and make the tasks without any ready."""
        upstream, skip = self._upstream, self._skip
        if skip:
            never = len(upstream) + 1  # more upstreams than exist: never released
            self._waiting = {
                name: never if name in skip else sum(1 for parent in parents if parent not in skip)
                for name, parents in upstream.items()
            }
        else:
            self._waiting = {name: len(parents) for name, parents in upstream.items()}
        self._downstream = downstream_map(upstream)
        rank = self._rank
        self._heap = [rank[name] << _INDEX_BITS for name, count in self._waiting.items() if not count]
        heapq.heapify(self._heap)
        self._expanded = set()

    def take(self) -> tuple[str, int] | None:
        """The best-ranked ready entry, handed out: (task, -1), or (mapped task, instance index); None when none is ready."""
        if not self._heap:
            return None
        self._handed += 1
        entry = heapq.heappop(self._heap)
        return self._by_rank[entry >> _INDEX_BITS], (entry & _INDEX_MASK) - 1

    def pop(self) -> str | None:
        """The best-ranked ready task, handed out (None when none is ready)."""
        if not self._heap:
            return None
        self._handed += 1
        return self._by_rank[heapq.heappop(self._heap) >> _INDEX_BITS]

    def get_ready(self, limit: int | None = None) -> tuple[str, ...]:
        """Every ready task (at most `limit`), best-ranked first, handed out."""
        ready: list[str] = []
        while self._heap and (limit is None or len(ready) < limit):
            ready.append(self._by_rank[heapq.heappop(self._heap) >> _INDEX_BITS])
        self._handed += len(ready)
        return tuple(ready)

    def map_over(self, name: str, count: int) -> None:
        """Handed-out task `name` fans out into `count` (>= 1) ready instances, taken at its place in the order."""
        self._handed -= 1  # the task itself is no longer out; each instance is, once taken
        self._expanded.add(name)
        entry = self._rank[name] << _INDEX_BITS
        heap = self._heap
        for i in range(count):
            heapq.heappush(heap, entry + 1 + i)

    def done(self, name: str, release: bool = True, *, instance: int | None = None) -> int:
        """`name` (or one `instance` of it) finished; with `release`, its dependents whose upstreams are all done become ready. Returns how many did."""
        if instance is not None:
            self._handed -= 1  # an instance releases nothing: its mapped task's `done` does
            return 0
        if self._expanded and name in self._expanded:
            self._expanded.discard(name)  # not handed out itself since it fanned out
        else:
            self._handed -= 1
        self._finished += 1
        if not release:
            return 0
        waiting, heap, rank = self._waiting, self._heap, self._rank
        released = 0
        for child in self._downstream[name]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(heap, rank[child] << _INDEX_BITS)
                released += 1
        return released

    def is_active(self) -> bool:
        """True while a task is ready or handed out and not done."""
        return bool(self._heap) or self._handed > 0 or bool(self._expanded)

    @property
    def running(self) -> int:
        """How many tasks (or instances) are handed out and not done."""
        return self._handed

    @property
    def finished(self) -> int:
        """How many tasks were done so far."""
        return self._finished

    def static_order(self) -> list[str]:
        """Every task in the order one worker would run them; raises CycleError naming a cycle if some never get ready."""
        self.prepare()
        order: list[str] = []
        while (name := self.pop()) is not None:
            order.append(name)
            self.done(name)
        expected = len(self._upstream) - len(self._skip)
        if len(order) != expected:
            blocked = [name for name, count in self._waiting.items() if count and name not in self._skip]
            blocked.sort(key=self._rank.__getitem__)
            raise CycleError(find_cycle(blocked, self._upstream))
        return order


def topological_order(names: Sequence[str], upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """Order `names` so every task follows its upstreams; ready tasks keep `names` order.

    Raises CycleError naming the cycle when there is none.
    """
    if len(upstream) != len(names) or list(upstream) != list(names):
        upstream = {name: upstream[name] for name in names}
    return ReadyQueue(upstream).static_order()


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
    cycle = path[position[node] :]
    cycle.reverse()  # upstream walk -> run order (A -> B means A runs before B)
    rank = {name: i for i, name in enumerate(candidates)}
    start = min(range(len(cycle)), key=lambda i: rank[cycle[i]])  # begin at the first registered
    cycle = cycle[start:] + cycle[:start]
    return [*cycle, cycle[0]]


def critical_path_lengths(
    order: Sequence[str], upstream: Mapping[str, Sequence[str]], durations: Mapping[str, float]
) -> dict[str, float]:
    """For each task of `order` (a topological order): its duration plus the longest path below it.

    Dependents outside `order` (left out, already finished) count as 0 s, as do tasks without a duration.
    """
    downstream = downstream_map(upstream)
    lengths: dict[str, float] = {}
    for name in reversed(order):
        below = max((lengths.get(child, 0.0) for child in downstream.get(name, ())), default=0.0)
        lengths[name] = durations.get(name, 0.0) + below
    return lengths


def critical_path(
    order: Sequence[str], upstream: Mapping[str, Sequence[str]], durations: Mapping[str, float]
) -> list[str]:
    """The chain of dependent tasks whose durations add up to the longest time, first task first; [] when all are 0.

    `order` is a topological order of the tasks; upstreams outside it are ignored.
    """
    present = set(order)
    graph = {name: [parent for parent in upstream.get(name, ()) if parent in present] for name in order}
    lengths = critical_path_lengths(order, graph, durations)
    if not lengths or max(lengths.values()) <= 0:
        return []
    downstream = downstream_map(graph)
    # Start at the root with the longest path below it, then follow the child that keeps it longest.
    node = max((name for name in order if not graph[name]), key=lengths.__getitem__)
    path = [node]
    while downstream[node]:
        node = max(downstream[node], key=lengths.__getitem__)
        path.append(node)
    return path
