"""Per-task overhead of a pipeline run as a Prefect flow, against a hand-written Prefect flow.

Both flows have the same shape (a chain, and a fan-out/fan-in), the same no-op task bodies, the
same ThreadPoolTaskRunner and no result persistence; both run in this process against one
temporary Prefect API, alternately, and the median flow-run time is divided by the task count.
Prints ratios (adapter / hand-written; the target is at most 1.2x), measured in this one run.

Run it in the Prefect virtualenv:  .venvs/prefect/bin/python bench/bench_prefect_overhead.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Isolate from the user's Prefect profile and any prefect.toml before Prefect reads its settings.
_home = tempfile.mkdtemp(prefix="task-engine-bench-prefect-")
for _key in [k for k in os.environ if k.startswith("PREFECT_")]:
    del os.environ[_key]
os.environ.update(
    PREFECT_HOME=_home,
    PREFECT_PROFILES_PATH=os.path.join(_home, "profiles.toml"),
    DO_NOT_TRACK="1",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_LOGGING_LEVEL="WARNING",
    # The temporary server is stopped while it may still be recording the last events.
    PREFECT_SERVER_LOGGING_LEVEL="CRITICAL",
)
os.chdir(_home)

from prefect import Flow, Task, flow, task  # noqa: E402
from prefect.futures import PrefectFuture, wait  # noqa: E402
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from task_engine.prefect import to_prefect_flow  # noqa: E402
from task_engine_core import Pipeline  # noqa: E402

Shape = dict[str, list[str]]  # task name -> upstream names, in registration order


def chain(n: int) -> Shape:
    """t0 -> t1 -> ... -> t(n-1)."""
    return {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)}


def fan(n: int) -> Shape:
    """start -> (n - 2 independent tasks) -> end."""
    middle = [f"m{i}" for i in range(n - 2)]
    return {"start": [], **{name: ["start"] for name in middle}, "end": middle}


def noop() -> None:
    """The work of every task: nothing, so only the overhead is measured."""


def engine_flow(shape: Shape, workers: int) -> Flow[..., object]:
    pipeline = Pipeline("bench-adapter")
    for name, upstream in shape.items():
        pipeline.register(noop, name=name, depends_on=list(upstream))
    return to_prefect_flow(pipeline, max_workers=workers, reporters=[])


def hand_written_flow(shape: Shape, workers: int) -> Flow[..., object]:
    """What a Prefect user writes for the same graph: one task each, submitted with wait_for."""
    tasks: dict[str, Task[[], None]] = {name: task(noop, name=name, persist_result=False) for name in shape}

    @flow(name="bench-hand-written", task_runner=ThreadPoolTaskRunner(max_workers=workers), persist_result=False)
    def hand_written() -> None:
        futures: dict[str, PrefectFuture[None]] = {}
        for name, upstream in shape.items():
            futures[name] = tasks[name].submit(wait_for=[futures[u] for u in upstream] or None)
        wait(list(futures.values()))

    return hand_written


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Measure both flows for each shape and print per-task times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20, help="tasks per flow (default 20)")
    parser.add_argument("--workers", type=int, default=4, help="ThreadPoolTaskRunner max_workers (default 4)")
    parser.add_argument("--repeats", type=int, default=7, help="flow runs per measurement (default 7)")
    args = parser.parse_args()

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), prefect_test_harness(90):
        print(
            f"Prefect flow per-task overhead: {args.tasks} no-op tasks, {args.workers} workers, "
            f"median of {args.repeats} runs each, alternating"
        )
        ratios = []
        for label, shape in (("chain", chain(args.tasks)), ("fan-out/fan-in", fan(args.tasks))):
            engine, hand = engine_flow(shape, args.workers), hand_written_flow(shape, args.workers)
            engine(), hand()  # warm up: first runs register the flow and its tasks with the API
            engine_times, hand_times = [], []
            for _ in range(args.repeats):  # alternate so drift on a shared machine hits both alike
                engine_times.append(median_seconds(engine, 1))
                hand_times.append(median_seconds(hand, 1))
            per_engine = statistics.median(engine_times) / len(shape) * 1000
            per_hand = statistics.median(hand_times) / len(shape) * 1000
            ratio = per_engine / per_hand
            ratios.append(ratio)
            print(
                f"  {label:15s} adapter {per_engine:6.2f} ms/task   hand-written {per_hand:6.2f} ms/task   "
                f"ratio {ratio:.2f}x"
            )
        print(f"worst ratio {max(ratios):.2f}x (target <= 1.20x)")


if __name__ == "__main__":
    main()
