"""Load: a 100,000-task layered DAG of no-op tasks on 8 worker threads, statistics written.

    python bench/bench_load.py                 # 100,000 tasks
    python bench/bench_load.py --tasks 20000   # smaller, for a quick look

Each measurement runs in a fresh child process, so peak RSS (`resource.getrusage`) belongs to that
measurement alone; memory per task is (peak RSS - RSS before the graph was built) / tasks. The
floor is `graphlib.TopologicalSorter` + `ThreadPoolExecutor` on the same graph, measured in the
same invocation; the engine runs with `reporters=[]` and a fresh statistics file. Not part of the
test suite: it prints ratios and asserts no time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import graphlib_threads, layered, noop, pipeline_of

from task_engine_core import PipelineExecutor, TaskState
from task_engine_core._stats import StatsStore


def rss_now() -> int:
    """Resident set size of this process in bytes (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_peak() -> int:
    """Peak resident set size of this process in bytes (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class TimedStore(StatsStore):
    """A StatsStore that remembers how long writing the run took."""

    write_seconds: float | None = None

    def record(self, result):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return super().record(result)
        finally:
            self.write_seconds = time.perf_counter() - started


def child(kind: str, tasks: int, workers: int) -> dict[str, object]:
    """One measurement in this (fresh) process."""
    baseline = rss_now()
    started = time.perf_counter()
    graph = layered(tasks)
    out: dict[str, object] = {"kind": kind}
    if kind == "floor":
        out["build"] = time.perf_counter() - started
        calls = [0]

        def call(name: str) -> None:
            calls[0] += 1  # the GIL makes this count exact enough for a check

        began = time.perf_counter()
        graphlib_threads(graph, call, workers)
        out["run"] = time.perf_counter() - began
        out["completed"] = calls[0]
    else:
        pipeline = pipeline_of("load", graph, lambda name: noop)
        out["build"] = time.perf_counter() - started
        folder = tempfile.mkdtemp(prefix="bench-load-")
        database = Path(folder) / "stats.sqlite3"
        store = TimedStore(database)
        began = time.perf_counter()
        result = PipelineExecutor(pipeline, workers=workers, reporters=[], stats=store).run()
        out["run"] = time.perf_counter() - began
        out["stats_write"] = store.write_seconds
        store.close()
        out["completed"] = result.count(TaskState.SUCCESS)
        with sqlite3.connect(database) as connection:
            out["rows"] = connection.execute("SELECT count(*) FROM task_runs").fetchone()[0]
        out["stats_bytes"] = sum(p.stat().st_size for p in Path(folder).iterdir())
        shutil.rmtree(folder)
    out["peak_rss"] = rss_peak()
    out["rss_per_task"] = (rss_peak() - baseline) / tasks
    return out


def measure(kind: str, tasks: int, workers: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--tasks", str(tasks), "--workers", str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--child", choices=["floor", "engine"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.tasks, args.workers)))
        return
    n, w = args.tasks, args.workers
    floor = measure("floor", n, w)
    engine = measure("engine", n, w)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Task Engine load bench, {stamp}")
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; layered DAG of {n:,} no-op tasks (width 50, 1-3 parents), {w} worker threads"
    )
    print()
    print(f"{'':42}{'floor':>10}{'engine':>10}{'ratio':>9}")
    rows = [
        ("build graph / pipeline (s)", floor["build"], engine["build"]),
        ("run to completion, statistics written (s)", floor["run"], engine["run"]),
        ("run, without the statistics write (s)", floor["run"], engine["run"] - engine["stats_write"]),
        ("build + run (s)", floor["build"] + floor["run"], engine["build"] + engine["run"]),
        ("us per task (run)", floor["run"] / n * 1e6, engine["run"] / n * 1e6),
        ("peak RSS (MiB)", floor["peak_rss"] / 2**20, engine["peak_rss"] / 2**20),
        ("peak RSS per task (KiB)", floor["rss_per_task"] / 1024, engine["rss_per_task"] / 1024),
    ]
    for label, a, b in rows:
        print(f"{label:42}{a:10.2f}{b:10.2f}{b / a:8.2f}x")
    write = engine["stats_write"]
    print(
        f"{'statistics write (s)':42}{'-':>10}{write:10.2f}  {write / engine['run']:.0%} of the engine run, "
        f"{write / n * 1e6:.1f} us per task row, file {engine['stats_bytes'] / 2**20:.1f} MiB"
    )
    print()
    print(
        f"completed: floor {floor['completed']:,} / {n:,}; engine {engine['completed']:,} / {n:,} SUCCESS, "
        f"{engine['rows']:,} task rows recorded"
    )


if __name__ == "__main__":
    main()
