"""What passing data and fanning out cost: ratios measured in this one process, never asserted.

    python bench/bench_dataflow.py            # 1k layered graph, 10,000-item fan-out
    python bench/bench_dataflow.py --quick    # fewer repeats
    .venvs/prefect/bin/python bench/bench_dataflow.py --prefect 500   # also Prefect .map on 500 items

1. Per-task overhead with outputs against without, on the layered 1k graph of bench_engine.py:
   every task returns a value and reads its upstreams' outputs (function parameters named after
   them, or `self.inputs`), against the same graph of no-op tasks. Target: at most 1.10x.
2. A 10,000-item fan-out (`map_over=`) against the same engine running 10,000 tasks registered
   statically, and against the floor (ThreadPoolExecutor.map over the items).
3. With --prefect N (in the Prefect venv): N items through the adapter-free Prefect `.map` against
   the engine's fan-out of N items, per item.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_engine import layered
from task_engine_core import Pipeline, PipelineExecutor, Task


def best_of(repeats: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return min(times)


def run(pipeline: Pipeline, workers: int) -> Callable[[], object]:
    return lambda: PipelineExecutor(pipeline, workers=workers, reporters=[], stats=False).run()


# -- 1. outputs against none ---------------------------------------------------------------------
def without_outputs(graph: dict[str, list[str]]) -> Pipeline:
    pipeline = Pipeline("no_outputs")
    for name, parents in graph.items():

        def noop() -> None:
            pass

        noop.__name__ = name
        pipeline.add(noop, name=name, depends_on=parents)
    return pipeline


def with_function_outputs(graph: dict[str, list[str]]) -> Pipeline:
    """Each task is `def tN(parent1, parent2): return 1 + parent1 + parent2` (the sum of its inputs)."""
    pipeline = Pipeline("function_outputs")
    for name, parents in graph.items():
        namespace: dict = {}
        exec(f"def {name}({', '.join(parents)}):\n    return 1 + {' + '.join(parents) or '0'}\n", namespace)
        pipeline.add(namespace[name], name=name, depends_on=parents)
    return pipeline


def with_task_outputs(graph: dict[str, list[str]]) -> Pipeline:
    """Each task is a Task subclass summing `self.inputs`."""
    pipeline = Pipeline("task_outputs")
    for name, parents in graph.items():

        class Step(Task):
            def perform_task(self) -> int:
                inputs = self.inputs
                return 1 + sum(inputs[parent] for parent in inputs)

        Step.__name__ = name
        pipeline.add(Step, name=name, depends_on=parents)
    return pipeline


def outputs_rows(repeats: int) -> list[tuple[str, int, float, float, float]]:
    graph = layered(1000)
    plain, functions, tasks = without_outputs(graph), with_function_outputs(graph), with_task_outputs(graph)
    rows = []
    for workers in (1, 4):
        # Alternate the three so a slow moment of the shared machine hits all of them alike.
        samples: dict[str, list[float]] = {"plain": [], "functions": [], "tasks": []}
        for _ in range(repeats):
            for key, pipeline in (("plain", plain), ("functions", functions), ("tasks", tasks)):
                samples[key].append(best_of(1, run(pipeline, workers)))
        # Best of the repeats: on a shared machine the minimum is the run least disturbed by others.
        base = min(samples["plain"])
        rows.append(
            ("layered 1k", workers, base / 1000 * 1e6, min(samples["functions"]) / base, min(samples["tasks"]) / base)
        )
    return rows


# -- 2. fan-out ----------------------------------------------------------------------------------
def mapped(n: int) -> Pipeline:
    pipeline = Pipeline("mapped")

    @pipeline.register
    def items() -> list[int]:
        return list(range(n))

    @pipeline.register(map_over=items)
    def poll(items: int) -> int:
        return items

    return pipeline


def static(n: int) -> Pipeline:
    pipeline = Pipeline("static")

    @pipeline.register
    def items() -> list[int]:
        return list(range(n))

    for i in range(n):

        def poll() -> int:
            return i

        pipeline.add(poll, name=f"poll{i}", depends_on=[items])
    return pipeline


def fan_out_rows(n: int, repeats: int) -> list[tuple[str, int, float, float, float]]:
    rows = []
    for workers in (1, 4):
        floor = best_of(repeats, lambda: list(ThreadPoolExecutor(workers).map(int, range(n))))
        fan = best_of(repeats, run(mapped(n), workers))
        fixed = best_of(repeats, run(static(n), workers))
        rows.append((f"fan-out {n:,}", workers, fan / n * 1e6, fan / fixed, fan / floor))
    return rows


# -- 3. Prefect .map -----------------------------------------------------------------------------
def prefect_rows(n: int, repeats: int) -> list[tuple[str, int, float, float]]:
    import tempfile

    home = tempfile.mkdtemp(prefix="task-engine-bench-prefect-")
    os.environ.update(PREFECT_HOME=home, PREFECT_LOGGING_LEVEL="WARNING", DO_NOT_TRACK="1")
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    @task
    def poll(item: int) -> int:
        return item

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def mapped_flow() -> list[int]:
        return poll.map(list(range(n))).result()

    mapped_flow()  # start the temporary API once, outside the measurement
    prefect_time = best_of(repeats, mapped_flow)
    engine_time = best_of(repeats, run(mapped(n), 4))
    return [(f"fan-out {n:,}", 4, prefect_time / n * 1e6, engine_time / prefect_time)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--items", type=int, default=10_000, help="items of the fan-out (default 10,000)")
    parser.add_argument("--prefect", type=int, default=0, metavar="N", help="also Prefect .map over N items")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    print("Outputs: per-task time of a no-op graph, and the ratio when every task returns and reads outputs")
    print(f"{'graph':<12} {'workers':>7} {'no-op µs/task':>14} {'functions':>10} {'self.inputs':>12}")
    for graph, workers, per_task, functions, tasks in outputs_rows(repeats):
        print(f"{graph:<12} {workers:>7} {per_task:>14.1f} {functions:>9.2f}x {tasks:>11.2f}x")
    print("\nFan-out: µs per instance, and the ratio against the same tasks registered statically / the floor")
    print(f"{'graph':<16} {'workers':>7} {'µs/item':>8} {'vs static':>10} {'vs floor':>9}")
    for graph, workers, per_item, vs_static, vs_floor in fan_out_rows(args.items, max(1, repeats // 2)):
        print(f"{graph:<16} {workers:>7} {per_item:>8.1f} {vs_static:>9.2f}x {vs_floor:>8.1f}x")
    if args.prefect:
        print("\nPrefect .map: µs per item, and the engine's fan-out time as a ratio of Prefect's")
        for graph, workers, per_item, ratio in prefect_rows(args.prefect, max(1, repeats // 2)):
            print(f"{graph:<16} {workers:>7} {per_item:>8.1f} engine/prefect {ratio:.3f}x")


if __name__ == "__main__":
    main()
