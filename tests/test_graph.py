"""Graph algorithms: topological order, cycle finding, critical paths, and linear scaling."""

from __future__ import annotations

import random
import time

import pytest

from task_engine_core import CycleError, Pipeline
from task_engine_core.graph import critical_path_lengths, downstream_map, find_cycle, topological_order


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
