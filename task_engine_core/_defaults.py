"""The standard assembly of a run: the default listeners, and the facade's PipelineExecutor that uses them.

DESIGN's layers: the executor runs with the listeners it is given; which ones a run has by
default (console, registered reporters, statistics) is chosen here, above reporters and
statistics, so the executor imports neither.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._executor import ExecutorCore
from ._pipeline import ValidatedPipeline
from ._stats import RunStatsRecorder, StatsStore, TaskStatsRecorder
from .events import Listener
from .reporters import ConsoleReporter
from .reporters._registry import registered_reporters

__all__ = ["PipelineExecutor", "default_listeners"]


def default_listeners(
    reporters: Iterable[Listener] | None = None,
    *,
    listeners: Iterable[Listener] = (),
    stats_store: StatsStore | None = None,
    show_plan: bool = False,
    tracing: Listener | None = None,
    per_task_stats: tuple[ValidatedPipeline, str | None] | None = None,
) -> list[Listener]:
    """The standard listeners of a run: reporters (None: a ConsoleReporter), registered reporters, `listeners`, statistics, tracing.

    `reporters` replaces the default console reporter; `listeners` are added next to them.

    Every listener is pure, so the order is only the order of console output. Statistics are
    recorded per run (RunStatsRecorder), or per task with `per_task_stats=(validated, trace_id)`
    where no process sees the whole run (TaskStatsRecorder).
    """
    chosen = [ConsoleReporter(show_plan=show_plan)] if reporters is None else list(reporters)
    assembled: list[Listener] = [*chosen, *registered_reporters(), *listeners]
    if tracing is not None:
        assembled.append(tracing)
    if stats_store is not None and per_task_stats is not None:
        validated, trace_id = per_task_stats
        assembled.append(TaskStatsRecorder(stats_store, validated.name, len(validated.order), trace_id))
    elif stats_store is not None:
        assembled.append(RunStatsRecorder(stats_store))
    return assembled


class PipelineExecutor(ExecutorCore):
    """Run a pipeline: `PipelineExecutor(pipeline).run()` returns a RunResult or raises the failure.

    With `workers=1` tasks run one after another in the calling thread; with more, on that many
    worker threads. Both share one scheduling loop, so ordering, fail-fast and `keep_going` are
    the same. `reporters` replaces the console reporter (None: a ConsoleReporter), `listeners`
    adds listeners; registered reporters always listen. `stats` is where runtime statistics go
    (a path or a StatsStore; None: the file named by $TASK_ENGINE_STATS, else
    `.task_engine/stats.sqlite3` under the working directory; False: nowhere); with recorded
    statistics and `priority=True`, ready tasks start by longest remaining critical path.
    `select` (the keyword arguments of `Pipeline.select`) runs part of the pipeline; `resume`
    (True: the latest recorded run, or a run id) keeps what ended SUCCESS or SKIPPED there.
    `run_task` is for backends (see `task_engine_core.backend`): it runs one allowed task's
    TaskLifecycle elsewhere, from `start()` to `finish()`. With `raise_on_failure=False`,
    `run()` returns the result of a failed or interrupted run instead of raising (check
    `result.failed` / `result.interrupted`).
    """

    def _listeners(
        self, reporters: Iterable[Listener] | None, listeners: Iterable[Listener], show_plan: bool
    ) -> list[Listener]:
        """The default listeners (see `default_listeners`), recording statistics in `stats_store`."""
        return default_listeners(reporters, listeners=listeners, stats_store=self.stats_store, show_plan=show_plan)
