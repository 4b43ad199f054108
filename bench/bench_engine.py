"""Benchmark the executor against peers it runs itself, in one process, and print ratios.

    python bench/bench_engine.py            # the targets of issue 20, then ordering and makespan tables
    python bench/bench_engine.py --quick    # the targets only, fewer repeats (a couple of minutes)
    python bench/bench_engine.py --tiny     # seconds, tiny graphs: what the smoke test runs

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
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from task_engine_core import Pipeline, PipelineExecutor
from task_engine_core._graph import critical_path_lengths, topological_order
from task_engine_core._stats import StatsStore, _task_rows

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


def compare(
    repeats: int, actions: dict[str, Callable[[], object]], clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Best time of each action; rounds interleave the actions so load changes hit all of them alike.

    `clock=time.process_time` measures the CPU time of this process instead of the wall clock:
    for single-threaded work on a machine shared with other jobs, time spent preempted is not
    the engine's.
    """
    best = {label: float("inf") for label in actions}
    for _ in range(repeats):
        for label, action in actions.items():
            started = clock()
            action()
            best[label] = min(best[label], clock() - started)
    return best


def engine(pipeline: Pipeline, workers: int, stats: object = False) -> Callable[[], object]:
    return lambda: PipelineExecutor(pipeline, workers=workers, reporters=[], stats=stats).run()


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
        pipeline = pipeline_of(f"sleep-{family}-{seed}", graph, lambda name: lambda s=durations[name]: time.sleep(s))
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
    pipeline = pipeline_of("trap", graph, lambda name: lambda s=durations[name]: time.sleep(s))
    bound = lower_bound(graph, durations, workers)
    store = StatsStore(database)
    first = best_of(1, engine(pipeline, workers, store))
    second = best_of(1, engine(pipeline, workers, store))
    return [("priority trap", len(graph), bound, first, second)]


# -- issue 20's targets ------------------------------------------------------------------------
@dataclass
class Target:
    """One target row: what was measured, its ratio, and the limit the ratio must stay under (or above)."""

    section: str
    row: str
    ours: str
    peer: str
    ratio: float | None
    limit: float | None  # None: shown for information, no target
    at_least: bool = False  # True: the ratio must be >= limit (dask / engine), else <= limit

    @property
    def verdict(self) -> str:
        if self.limit is None or self.ratio is None:
            return "info"
        met = self.ratio >= self.limit if self.at_least else self.ratio <= self.limit
        return "met" if met else "missed"


def us_per_task(seconds: float, tasks: int) -> str:
    return f"{seconds / tasks * 1e6:.1f} us"


def lifecycle_loop(pipeline: Pipeline) -> Callable[[], None]:
    """The engine's own per-task work without its scheduler: each TaskLifecycle in static order."""
    from task_engine_core._lifecycle import TaskLifecycle
    from task_engine_core.events import EventBus

    def run() -> None:
        validated = pipeline.validate()
        events = EventBus([])
        for name in validated.order:
            lifecycle = TaskLifecycle(validated.definitions[name], validated.policies[name], "bench", events)
            lifecycle.start()
            lifecycle.run_to_end()
            lifecycle.finish()

    return run


def noop_graphs(sizes: list[int], repeats: int, prefix: str) -> Iterator[tuple[str, int, int, Graph, Pipeline]]:
    """(label, size, repeats, graph, pipeline of no-op tasks) for chain, fan-out and layered graphs of each size."""
    for size in sizes:
        reps = repeats if size <= 1000 else max(1, repeats // 2)
        for shape, make in (("chain", chain), ("fan-out", fan_out), ("layered", layered)):
            graph = make(size)
            yield f"{shape} {size}", size, reps, graph, pipeline_of(f"{prefix}-{shape}-{size}", graph, lambda _: noop)


def sequential_targets(sizes: list[int], repeats: int, folder: Path) -> list[Target]:
    """Sequential no-op runs, statistics off and on, against the graphlib loop (CPU time of this process)."""
    rows: list[Target] = []
    call = lambda _name: noop()  # noqa: E731
    for label, size, reps, graph, pipeline in noop_graphs(sizes, repeats, "seq"):
        store = StatsStore(folder / f"seq-{label.replace(' ', '-')}.sqlite3")
        best = compare(
            reps,
            {
                "floor": lambda: graphlib_sequential(graph, call),
                "off": engine(pipeline, 1),
                "on": engine(pipeline, 1, store),
            },
            clock=time.process_time,
        )
        store.close()
        floor = us_per_task(best["floor"], size)
        rows.append(
            Target(
                "sequential, stats off (<= 2x floor)",
                label,
                us_per_task(best["off"], size),
                floor,
                best["off"] / best["floor"],
                2.0,
            )
        )
        rows.append(
            Target(
                "sequential, stats on (<= 3x floor)",
                label,
                us_per_task(best["on"], size),
                floor,
                best["on"] / best["floor"],
                3.0,
            )
        )
    return rows


def feature_targets(size: int, repeats: int) -> list[Target]:
    """What earlier issues added, used and unused, on a layered graph run sequentially with statistics off."""
    graph = layered(size)
    pipeline = pipeline_of(f"features-{size}", graph, lambda _: noop)
    roots = [name for name, parents in graph.items() if not parents]
    outputs = pipeline_of(f"outputs-{size}", graph, lambda _: lambda: 1)
    actions = {
        "plain": engine(pipeline, 1),
        "lifecycle": lifecycle_loop(pipeline),
        "selection": lambda: PipelineExecutor(pipeline, reporters=[], stats=False, select={"from_": roots}).run(),
        "backend": lambda: PipelineExecutor(
            pipeline, reporters=[], stats=False, run_task=lambda lifecycle: lifecycle.run_to_end()
        ).run(),
        "outputs": engine(outputs, 1),
    }
    best = compare(repeats, actions, clock=time.process_time)
    plain = best["plain"]
    label = f"layered {size}"
    unused = "features unused (<= 1.10x the lifecycle loop)"
    used = "features used (info: used / unused)"
    return [
        Target(
            unused,
            f"{label}: engine vs its lifecycle in a loop",
            us_per_task(plain, size),
            us_per_task(best["lifecycle"], size),
            plain / best["lifecycle"],
            1.10,
        ),
        Target(
            used,
            f"{label}: selection (from_ every root)",
            us_per_task(best["selection"], size),
            us_per_task(plain, size),
            best["selection"] / plain,
            None,
        ),
        Target(
            used,
            f"{label}: lifecycle via run_task= (backend seam)",
            us_per_task(best["backend"], size),
            us_per_task(plain, size),
            best["backend"] / plain,
            None,
        ),
        Target(
            used,
            f"{label}: every task returns a value (outputs)",
            us_per_task(best["outputs"], size),
            us_per_task(plain, size),
            best["outputs"] / plain,
            None,
        ),
    ]


def stats_write_targets(size: int, repeats: int, folder: Path) -> list[Target]:
    """The statistics write alone: (write of `size` task rows - write of 1) / (size - 1), one transaction each."""
    results = {}
    for n in (1, size):
        pipeline = pipeline_of(f"write-{n}", layered(n), lambda _: noop)
        executor = PipelineExecutor(pipeline, reporters=[], stats=False)
        results[n] = (executor.run(), pipeline.validate().upstream)
    store = StatsStore(folder / "write.sqlite3")
    store.record(*results[1])  # create the schema outside the timing

    def write(n: int) -> Callable[[], None]:
        def action() -> None:
            result, upstream = results[n]
            result.run_id = uuid.uuid4().hex
            store.record(result, upstream)

        return action

    def prepare(n: int) -> Callable[[], object]:
        result, upstream = results[n]
        return lambda: list(_task_rows(result, upstream))

    best = compare(
        repeats,
        {"one": write(1), "many": write(size), "rows": prepare(size), "row": prepare(1)},
        clock=time.process_time,
    )
    store.close()
    per_row = (best["many"] - best["one"]) / (size - 1)
    rows_part = (best["rows"] - best["row"]) / (size - 1)
    section = "statistics write (<= 3 us per task row)"
    return [
        Target(
            section, f"{size} task rows, one transaction", f"{per_row * 1e6:.2f} us", "3 us", per_row * 1e6 / 3.0, 1.0
        ),
        Target(
            section,
            "  of which preparing the rows (Python)",
            f"{rows_part * 1e6:.2f} us",
            f"{per_row * 1e6:.2f} us",
            rows_part / per_row if per_row > 0 else None,
            None,
        ),
    ]


def thread_targets(sizes: list[int], workers: int, repeats: int, has_dask: bool) -> list[Target]:
    """Worker-thread runs against graphlib + ThreadPoolExecutor and against dask.threaded.get (wall clock)."""
    rows: list[Target] = []
    call = lambda _name: noop()  # noqa: E731
    for label, size, reps, graph, pipeline in noop_graphs(sizes, repeats, "thr"):
        actions = {"floor": lambda: graphlib_threads(graph, call, workers), "ours": engine(pipeline, workers)}
        if has_dask:
            actions["dask"] = lambda: dask_threads(graph, call, workers)
        best = compare(reps, actions)
        ours = us_per_task(best["ours"], size)
        rows.append(
            Target(
                f"threads, {workers} workers (<= 1.0x floor)",
                label,
                ours,
                us_per_task(best["floor"], size),
                best["ours"] / best["floor"],
                1.0,
            )
        )
        if has_dask:
            rows.append(
                Target(
                    "threads vs dask.threaded.get (dask / engine >= 4x)",
                    label,
                    ours,
                    us_per_task(best["dask"], size),
                    best["dask"] / best["ours"],
                    4.0,
                    at_least=True,
                )
            )
    return rows


ONE_TASK_PIPELINE = '''from task_engine_core import register


@register
def only():
    """The one task."""
'''


def startup_targets(runs: int) -> list[Target]:
    """`python -m task_engine_core run` of a one-task file vs `python -c pass`: whole-process wall and CPU, median."""
    repository = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as folder:
        # Bytecode is cached (in the temporary folder) as on an installed system, even where
        # PYTHONDONTWRITEBYTECODE is set: compiling every module on each start is not start-up.
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env |= {
            "PYTHONPATH": repository + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONPYCACHEPREFIX": str(Path(folder) / "pycache"),
        }
        (Path(folder) / "one.py").write_text(ONE_TASK_PIPELINE)
        commands = {
            "floor": [sys.executable, "-c", "pass"],
            "ours": [sys.executable, "-m", "task_engine_core", "run", "one.py"],
        }
        wall: dict[str, list[float]] = {label: [] for label in commands}
        cpu: dict[str, list[float]] = {label: [] for label in commands}
        for argv in commands.values():  # warm-up: writes the bytecode cache
            subprocess.run(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL, check=True)
        for _ in range(runs):
            for label, argv in commands.items():  # interleaved, so load changes hit both alike
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL, check=True)
                wall[label].append(time.perf_counter() - started)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[label].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    rows = []
    for kind, values in (("wall", wall), ("CPU", cpu)):
        ours, floor = statistics.median(values["ours"]), statistics.median(values["floor"])
        rows.append(
            Target(
                "start-up, one-task `run` (<= 3x `python -c pass`)",
                f"{kind}, median of {runs}",
                f"{ours * 1e3:.0f} ms",
                f"{floor * 1e3:.0f} ms",
                ours / floor if floor else None,
                3.0,
            )
        )
    return rows


def load_targets(tasks: int, workers: int) -> list[Target]:
    """A layered run of `tasks` tasks on `workers` threads with statistics, each side in a fresh process."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_load import measure  # its child processes own the peak-RSS measurement

    floor = measure("floor", tasks, workers)
    ours = measure("engine", tasks, workers)
    section = f"{tasks:,} layered, {workers} workers, stats on"
    return [
        Target(
            f"{section} (<= 1.5x floor)",
            "run to completion",
            f"{ours['run']:.2f} s",
            f"{floor['run']:.2f} s",
            ours["run"] / floor["run"],
            1.5,
        ),
        Target(
            f"{section} (<= 1 KiB peak RSS per task)",
            "peak RSS per task",
            f"{ours['rss_per_task'] / 1024:.2f} KiB",
            "1 KiB",
            ours["rss_per_task"] / 1024,
            1.0,
        ),
    ]


def print_targets(rows: list[Target]) -> None:
    sections: dict[str, list[Target]] = {}
    for row in rows:
        sections.setdefault(row.section, []).append(row)
    print(f"{'row':<52}{'engine':>11}{'peer':>11}{'ratio':>8}  verdict")
    for section, members in sections.items():
        print(section)
        for row in members:
            print_row(row)
    counted = [row for row in rows if row.verdict != "info"]
    missed = [row for row in counted if row.verdict == "missed"]
    print(f"targets: {len(counted) - len(missed)} met, {len(missed)} missed")


def print_row(row: Target) -> None:
    ratio_text = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
    print(f"  {row.row:<50}{row.ours:>11}{row.peer:>11}{ratio_text:>8}  {row.verdict}")


# -- report ------------------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


MODES = {
    # mode: (sizes, repeats, start-up runs, load tasks, extra tables)
    "full": ([1_000, 10_000], 5, 11, 100_000, True),
    "quick": ([1_000, 10_000], 5, 7, 100_000, False),
    "tiny": ([200], 1, 3, 2_000, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no ordering / makespan tables")
    parser.add_argument(
        "--tiny", action="store_true", help="seconds: tiny graphs, for the smoke test (ratios mean little)"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker threads for the thread runs (default 4)")
    args = parser.parse_args()
    try:
        import dask

        dask_version = dask.__version__
    except ImportError:
        dask_version = None
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    sizes, repeats, startup_runs, load_tasks, extra = MODES[mode]
    workers = args.workers

    print(f"Task Engine bench ({mode}), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; dask {dask_version or 'not installed'}; {workers} workers for thread runs; "
        f"best of {repeats}"
    )
    print()
    print("Targets of issue 20 (ratio = engine / peer unless said otherwise; us are per task). Sequential,")
    print("statistics-write and feature rows are CPU time of this process; thread, start-up and load rows wall time.")
    with tempfile.TemporaryDirectory() as folder:
        rows = sequential_targets(sizes, repeats, Path(folder))
        rows += stats_write_targets(max(sizes), repeats, Path(folder))
        rows += thread_targets(sizes, workers, repeats, dask_version is not None)
        rows += startup_targets(startup_runs)
        rows += load_targets(load_tasks, 8)
        rows += feature_targets(min(sizes), repeats)
    print_targets(rows)
    if not extra:
        return
    print()
    print("Ordering (ms; ratio = engine / graphlib static_order, seed / engine)")
    print(f"{'graph':<9}{'tasks':>8}{'graphlib':>10}{'engine':>9}{'ratio':>8}{'seed':>10}{'seed/eng':>10}")
    for shape, size, floor, ours, seed in ordering_rows(repeats):
        ms = lambda t: f"{t * 1e3:.1f}" if t is not None else "-"  # noqa: E731
        print(
            f"{shape:<9}{size:>8}{ms(floor):>10}{ms(ours):>9}{ratio(ours, floor):>8}{ms(seed):>10}{ratio(seed, ours):>10}"
        )
    print()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "stats.sqlite3"
        print(f"Makespan, sleeping tasks, {workers} workers (s; ratio = makespan / max(critical path, work / workers))")
        print(
            f"{'graph':<22}{'tasks':>6}{'bound':>7}{'floor':>7}{'ratio':>7}{'run 1':>7}{'ratio':>7}{'run 2':>7}{'ratio':>7}"
        )
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
