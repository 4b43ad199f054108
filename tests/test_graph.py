"""Graph algorithms: topological order, cycle finding, critical paths, and linear scaling."""

from __future__ import annotations

import random
import time

import pytest

from task_engine_core import Pipeline
from task_engine_core._graph import critical_path, critical_path_lengths, downstream_map, find_cycle, topological_order
from task_engine_core.errors import CycleError


def test_ready_tasks_keep_registration_order():
    upstream = {"a": (), "b": ("d",), "c": (), "d": ()}
    assert topological_order(["a", "b", "c", "d"], upstream) == ["a", "c", "d", "b"]


def test_downstream_map():
    assert downstream_map({"a": (), "b": ("a",), "c": ("a", "b")}) == {"a": ["b", "c"], "b": ["c"], "c": []}


def test_cycle_found_in_run_order_starting_at_the_first_registered():
    upstream = {"x": (), "a": ("c", "x"), "b": ("a",), "c": ("b",), "d": ("c",)}
    with pytest.raises(CycleError) as info:
        topological_order(list(upstream), upstream)
    assert info.value.cycle == ("a", "b", "c", "a")
    assert find_cycle(["b", "c", "a"], upstream) == ["b", "c", "a", "b"]


def test_critical_path_lengths():
    upstream = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
    durations = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}
    assert critical_path_lengths(["a", "b", "c", "d"], upstream, durations) == {"a": 7.0, "b": 6.0, "c": 3.0, "d": 1.0}


def test_critical_path_lengths_count_dependents_outside_the_order_as_zero() -> None:
    # The --progress ETA passes only the tasks still to run; "b" was left out by a selection.
    upstream = {"a": (), "b": ("a",), "c": ("a",)}
    assert critical_path_lengths(["a", "c"], upstream, {"a": 1.0, "b": 9.0, "c": 2.0}) == {"a": 3.0, "c": 2.0}


def test_critical_path_follows_the_longest_chain_and_ignores_tasks_outside_the_order() -> None:
    upstream = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c"), "e": ("d",)}
    durations = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0, "e": 50.0}
    assert critical_path(["a", "b", "c", "d", "e"], upstream, durations) == ["a", "b", "d", "e"]
    assert critical_path(["a", "b", "c", "d"], upstream, durations) == ["a", "b", "d"]
    assert critical_path(["a", "b"], upstream, {}) == []


def layered_pipeline(size: int, seed: int = 7) -> Pipeline:
    """`size` tasks in layers of 100, each depending on up to 3 tasks of the layer above."""
    rng = random.Random(seed)
    pipeline = Pipeline(f"layered-{size}")

    def noop():
        pass

    for i in range(size):
        layer_start = (i // 100 - 1) * 100
        deps = [f"t{layer_start + rng.randrange(100)}" for _ in range(3)] if layer_start >= 0 else []
        pipeline.add(noop, name=f"t{i}", depends_on=deps)
    return pipeline


def cpu_seconds(pipeline: Pipeline) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        pipeline.validate()
        best = min(best, time.process_time() - started)
    return best


def test_validation_and_ordering_stay_linear_at_100k_tasks():
    small, large = layered_pipeline(10_000), layered_pipeline(100_000)
    order = large.validate().order
    assert len(order) == 100_000
    position = {name: i for i, name in enumerate(order)}
    validated = large.validate()
    assert all(position[parent] < position[name] for name, ups in validated.upstream.items() for parent in ups)
    ratio = cpu_seconds(large) / cpu_seconds(small)
    # Linear work grows ~10x; a quadratic ordering would grow ~100x. The margin absorbs a noisy machine.
    assert ratio < 30, f"100k/10k CPU time ratio {ratio:.1f} suggests super-linear ordering"


def test_ready_queue_speaks_graphlibs_protocol_and_hands_out_by_rank():
    import graphlib
    import random

    from task_engine_core._graph import ReadyQueue

    rng = random.Random(3)
    names = [f"t{i}" for i in range(60)]
    upstream = {name: rng.sample(names[:i], min(i, rng.randint(0, 3))) for i, name in enumerate(names)}
    rank = {name: place for place, name in enumerate(sorted(names, key=lambda n: rng.random()))}
    ours, theirs = ReadyQueue(upstream, rank), graphlib.TopologicalSorter(upstream)
    ours.prepare()
    theirs.prepare()
    while theirs.is_active():
        assert ours.is_active()
        ready = ours.get_ready()
        assert set(ready) == set(theirs.get_ready())
        assert list(ready) == sorted(ready, key=rank.__getitem__)  # best-ranked first
        for name in ready:
            ours.done(name)
            theirs.done(name)
    assert not ours.is_active() and ours.finished == len(names)


def test_ready_queue_skips_left_out_tasks_and_keeps_a_failures_dependents_blocked():
    from task_engine_core._graph import ReadyQueue

    upstream = {"A": [], "B": ["A"], "C": ["B"], "D": ["A"], "E": []}
    queue = ReadyQueue(upstream, skip={"E"})
    queue.prepare()
    assert queue.pop() == "A" and queue.running == 1
    assert queue.done("A") == 2  # B and D
    assert queue.get_ready(1) == ("B",)
    assert queue.done("B", release=False) == 0  # B failed: C never becomes ready
    assert queue.pop() == "D"
    queue.done("D")
    assert queue.pop() is None and not queue.is_active()
    assert ReadyQueue(upstream, skip={"E"}).static_order() == ["A", "B", "C", "D"]


def test_ready_queue_static_order_names_a_cycle():
    from task_engine_core._graph import ReadyQueue

    with pytest.raises(CycleError, match="B -> C -> B"):
        ReadyQueue({"A": [], "B": ["A", "C"], "C": ["B"]}).static_order()


def test_ready_queue_fans_a_handed_out_task_into_instances_at_its_place():
    from task_engine_core._graph import ReadyQueue

    # M maps over A; B is ranked after M, C depends on M.
    upstream = {"A": [], "M": ["A"], "B": ["A"], "C": ["M"]}
    queue = ReadyQueue(upstream)
    queue.prepare()
    assert queue.take() == ("A", -1)
    assert queue.done("A") == 2
    assert queue.take() == ("M", -1)
    queue.map_over("M", 3)
    assert queue.running == 0  # M itself is no longer out: a stopped run ends with no instance running
    assert queue.is_active()
    # Instances keep M's place (before B), in item order.
    assert [queue.take(), queue.take()] == [("M", 0), ("M", 1)]
    assert queue.running == 2
    assert queue.done("M", instance=1) == 0
    assert queue.done("M", instance=0) == 0
    assert queue.take() == ("M", 2)
    assert queue.done("M", instance=2) == 0
    assert queue.take() == ("B", -1)
    assert queue.done("B") == 0
    assert queue.running == 0 and queue.take() is None
    assert queue.done("M") == 1  # the rolled-up task releases its dependents
    assert queue.take() == ("C", -1)
    queue.done("C")
    assert not queue.is_active()
    assert queue.finished == 4
