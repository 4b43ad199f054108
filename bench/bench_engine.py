"""Benchmark the executor against peers it runs itself, in one process, and print ratios.

    python bench/bench_engine.py            # the full table (a few minutes on 2 cores)
    python bench/bench_engine.py --quick    # fewer repeats, 1k tasks only

Peers, all run here on the same graphs:
- floor:   graphlib.TopologicalSorter + concurrent.futures.ThreadPoolExecutor (threads), or a plain
           `for name in static_order(): call()` loop (sequential) - the least any scheduler can do;
- dask:    dask.threaded.get, when dask is installed (pip install dask);
- seed:    the seed's ordering, re-implemented: scan every remaining task for one whose
           dependencies are done, repeat (quadratic).
Not part of the test suite: timing is reported as ratios, never asserted.
"""

from __future__ import annotations

import argparse
import graphlib
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from task_engine_core import Pipeline, PipelineExecutor  # noqa: E402
from task_engine_core.graph import critical_path_lengths, topological_order  # noqa: E402
from task_engine_core.stats import StatsStore  # noqa: E402

Graph = dict[str, list[str]]  # task -> upstream tasks, in registration order


# -- graphs ------------------------------------------------------------------------------------
def chain(n: int) -> Graph:
    """t0 -> t1 -> ... -> t(n-1)."""
    return {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)}


def fan_out(n: int) -> Graph:
    """One root, n-1 children."""
    return {f"t{i}": ["t0"] if i else [] for i in range(n)}


def layered(n: int, width: int = 50, seed: int = 1) -> Graph:
    """Random layers of `width` tasks; each task depends on 1-3 tasks of the layer above."""
    rng = random.Random(seed)
    graph: Graph = {}
    previous: list[str] = []
    names = [f"t{i}" for i in range(n)]
    for start in range(0, n, width):
        layer = names[start : start + width]
        for name in layer:
            graph[name] = rng.sample(previous, min(len(previous), rng.randint(1, 3))) if previous else []
        previous = layer
    return graph


def pipeline_of(name: str, graph: Graph, work: Callable[[str], Callable[[], None]]) -> Pipeline:
    pipeline = Pipeline(name)
    for task, parents in graph.items():
        pipeline.add(work(task), name=task, depends_on=parents)
    return pipeline


def noop() -> None:
    """A task that does nothing: what is measured is the scheduler."""


# -- peers -------------------------------------------------------------------------------------
def graphlib_sequential(graph: Graph, call: Callable[[str], None]) -> None:
    for name in graphlib.TopologicalSorter(graph).static_order():
        call(name)


def graphlib_threads(graph: Graph, call: Callable[[str], None], workers: int) -> None:
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    with ThreadPoolExecutor(workers) as pool:
        pending: dict = {}
        while sorter.is_active():
            for name in sorter.get_ready():
                pending[pool.submit(call, name)] = name
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                sorter.done(pending.pop(future))


def dask_threads(graph: Graph, call: Callable[[str], None], workers: int) -> None:
    import dask.threaded

    def task(name: str) -> Callable[..., None]:
        return lambda *_: call(name)

    dsk = {name: (task(name), *parents) for name, parents in graph.items()}
    dask.threaded.get(dsk, list(graph), num_workers=workers)


def seed_order(graph: Graph) -> list[str]:
    """The seed's ordering: pass over every remaining task, take those whose upstreams are done, repeat.

    One full pass per round makes it O(V x depth): quadratic on a chain.
    """
    done: set[str] = set()
    order: list[str] = []
    remaining = list(graph)
    while remaining:
        ready = [name for name in remaining if all(parent in done for parent in graph[name])]
        if not ready:
            raise ValueError("cycle")
        order.extend(ready)
        done.update(ready)
        remaining = [name for name in remaining if name not in done]
    return order


# -- measuring ---------------------------------------------------------------------------------
def best_of(repeats: int, action: Callable[[], object]) -> float:
    return compare(repeats, {"only": action})["only"]


def compare(repeats: int, actions: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best time of each action; rounds interleave the actions so load changes hit all of them alike."""
    best = {label: float("inf") for label in actions}
    for _ in range(repeats):
        for label, action in actions.items():
            started = time.perf_counter()
            action()
            best[label] = min(best[label], time.perf_counter() - started)
    return best


def engine(pipeline: Pipeline, workers: int, stats: object = False) -> Callable[[], object]:
    return lambda: PipelineExecutor(pipeline, workers=workers, reporters=[], stats=stats).run()


def overhead_rows(sizes: list[int], workers: int, repeats: int, has_dask: bool) -> list[tuple]:
    rows = []
    for size in sizes:
        for shape, make in (("chain", chain), ("fan-out", fan_out), ("layered", layered)):
            graph = make(size)
            pipeline = pipeline_of(f"{shape}-{size}", graph, lambda _: noop)
            call = lambda _name: noop()  # noqa: E731
            reps = repeats if size <= 1000 else max(1, repeats // 2)
            actions = {
                "floor_seq": lambda: graphlib_sequential(graph, call),
                "ours_seq": engine(pipeline, 1),
                "floor_thr": lambda: graphlib_threads(graph, call, workers),
                "ours_thr": engine(pipeline, workers),
            }
            if has_dask:
                actions["dask_thr"] = lambda: dask_threads(graph, call, workers)
            best = compare(reps, actions)
            floor_seq, ours_seq, floor_thr, ours_thr = (best[k] for k in ("floor_seq", "ours_seq", "floor_thr", "ours_thr"))
            dask_thr = best.get("dask_thr")
            rows.append((shape, size, floor_seq, ours_seq, floor_thr, ours_thr, dask_thr))
    return rows


def ordering_rows(repeats: int) -> list[tuple]:
    rows = []
    for shape, graph in (("layered", layered(100_000, width=200)), ("chain", chain(100_000))):
        names = list(graph)
        best = compare(
            repeats,
            {
                "ours": lambda: topological_order(names, graph),
                "floor": lambda: list(graphlib.TopologicalSorter(graph).static_order()),
            },
        )
        rows.append((shape, len(graph), best["floor"], best["ours"], None))
    for shape, graph in (("chain", chain(1_000)), ("chain", chain(3_000)), ("layered", layered(10_000))):
        names = list(graph)
        best = compare(1, {"seed": lambda: seed_order(graph), "ours": lambda: topological_order(names, graph)})
        rows.append((shape, len(graph), None, best["ours"], best["seed"]))
    return rows


def sleeping_graph(family: str, n: int, seed: int) -> tuple[Graph, dict[str, float]]:
    """A random DAG of `n` tasks sleeping 5-40 ms each."""
    rng = random.Random(seed)
    if family == "layered":
        graph = layered(n, width=12, seed=seed)
    else:  # sparse: each task depends on up to two random earlier tasks
        names = [f"t{i}" for i in range(n)]
        graph = {name: rng.sample(names[:i], min(i, rng.randint(0, 2))) for i, name in enumerate(names)}
    durations = {name: rng.uniform(0.005, 0.04) for name in graph}
    return graph, durations


def lower_bound(graph: Graph, durations: dict[str, float], workers: int) -> float:
    order = topological_order(list(graph), graph)
    longest = max(critical_path_lengths(order, graph, durations).values())
    return max(longest, sum(durations.values()) / workers)


def makespan_rows(workers: int, database: Path) -> list[tuple]:
    rows = []
    for family, seed in (("sparse", 1), ("sparse", 2), ("layered", 1), ("layered", 2)):
        graph, durations = sleeping_graph(family, 96, seed)
        pipeline = pipeline_of(f"sleep-{family}-{seed}", graph, lambda name: (lambda s=durations[name]: time.sleep(s)))
        bound = lower_bound(graph, durations, workers)
        store = StatsStore(database)
        first = best_of(1, engine(pipeline, workers, store))
        second = best_of(1, engine(pipeline, workers, store))
        floor = best_of(1, lambda: graphlib_threads(graph, lambda name: time.sleep(durations[name]), workers))
        rows.append((f"random {family} #{seed}", len(graph), bound, floor, first, second))
    return rows


def trap_rows(workers: int, database: Path) -> list[tuple]:
    # Short tasks registered first, one long chain last: total short work = 3 x the chain, so with
    # 4 workers the lower bound is the chain itself, and registration order gives ~1.75x it.
    chain_length, link = 3, 0.2
    shorts, short = 90, 3 * chain_length * link / 90
    graph: Graph = {f"short{i}": [] for i in range(shorts)}
    graph |= {f"long{i}": [f"long{i - 1}"] if i else [] for i in range(chain_length)}
    durations = {name: (link if name.startswith("long") else short) for name in graph}
    pipeline = pipeline_of("trap", graph, lambda name: (lambda s=durations[name]: time.sleep(s)))
    bound = lower_bound(graph, durations, workers)
    store = StatsStore(database)
    first = best_of(1, engine(pipeline, workers, store))
    second = best_of(1, engine(pipeline, workers, store))
    return [("priority trap", len(graph), bound, first, second)]


# -- report ------------------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1k tasks only, fewer repeats")
    parser.add_argument("--workers", type=int, default=4, help="worker threads for the thread runs (default 4)")
    args = parser.parse_args()
    try:
        import dask

        dask_version = dask.__version__
    except ImportError:
        dask_version = None
    workers = args.workers
    repeats = 3 if args.quick else 5
    sizes = [1_000] if args.quick else [1_000, 10_000]

    print(f"Task Engine bench, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
        f"dask {dask_version or 'not installed'}; {workers} workers for thread runs; best of {repeats}"
    )
    print()
    print("Per-task overhead, no-op tasks (us per task; ratio = engine / floor, dask / engine)")
    header = (
        f"{'graph':<9}{'tasks':>7}{'seq floor':>11}{'engine':>9}{'ratio':>8}"
        f"{'thr floor':>11}{'engine':>9}{'ratio':>8}{'dask':>9}{'dask/eng':>10}"
    )
    print(header)
    for shape, size, floor_seq, ours_seq, floor_thr, ours_thr, dask_thr in overhead_rows(
        sizes, workers, repeats, dask_version is not None
    ):
        us = lambda t: f"{t / size * 1e6:.1f}" if t is not None else "-"  # noqa: E731
        print(
            f"{shape:<9}{size:>7}{us(floor_seq):>11}{us(ours_seq):>9}{ratio(ours_seq, floor_seq):>8}"
            f"{us(floor_thr):>11}{us(ours_thr):>9}{ratio(ours_thr, floor_thr):>8}"
            f"{us(dask_thr):>9}{ratio(dask_thr, ours_thr):>10}"
        )
    with tempfile.TemporaryDirectory() as folder:
        graph = layered(1_000)
        pipeline = pipeline_of("layered-stats", graph, lambda _: noop)
        store = StatsStore(Path(folder) / "stats.sqlite3")
        best = compare(repeats, {"off": engine(pipeline, 1), "on": engine(pipeline, 1, store)})
        print(
            f"statistics on (one SQLite transaction per run), layered 1000, sequential: "
            f"{best['on'] / 1000 * 1e6:.1f} us/task vs {best['off'] / 1000 * 1e6:.1f} off"
        )
    print()
    print("Ordering (ms; ratio = engine / graphlib static_order, seed / engine)")
    print(f"{'graph':<9}{'tasks':>8}{'graphlib':>10}{'engine':>9}{'ratio':>8}{'seed':>10}{'seed/eng':>10}")
    for shape, size, floor, ours, seed in ordering_rows(repeats):
        ms = lambda t: f"{t * 1e3:.1f}" if t is not None else "-"  # noqa: E731
        print(f"{shape:<9}{size:>8}{ms(floor):>10}{ms(ours):>9}{ratio(ours, floor):>8}{ms(seed):>10}{ratio(seed, ours):>10}")
    print()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "stats.sqlite3"
        print(f"Makespan, sleeping tasks, {workers} workers (s; ratio = makespan / max(critical path, work / workers))")
        print(f"{'graph':<22}{'tasks':>6}{'bound':>7}{'floor':>7}{'ratio':>7}{'run 1':>7}{'ratio':>7}{'run 2':>7}{'ratio':>7}")
        for name, size, bound, floor, first, second in makespan_rows(workers, database):
            print(
                f"{name:<22}{size:>6}{bound:>7.3f}{floor:>7.3f}{ratio(floor, bound):>7}"
                f"{first:>7.3f}{ratio(first, bound):>7}{second:>7.3f}{ratio(second, bound):>7}"
            )
        for name, size, bound, first, second in trap_rows(workers, database):
            print(
                f"{name:<22}{size:>6}{bound:>7.3f}{'':>7}{'':>7}"
                f"{first:>7.3f}{ratio(first, bound):>7}{second:>7.3f}{ratio(second, bound):>7}"
            )
    print()
    print("run 1: no statistics (registration order); run 2: ordered by the durations run 1 recorded")


if __name__ == "__main__":
    main()
