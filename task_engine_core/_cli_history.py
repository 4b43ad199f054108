"""The CLI's partial runs and run history: `run --only/--from/--to/--tags/--with-upstream`,
`run --resume [RUN_ID]`, `run --dry-run`, and the `runs TARGET [RUN_ID]` command.

Kept apart from cli.py so the run command only gains a few lines: turn the flags into executor
options, print a dry run's plan instead of running, and say what a resumed run kept.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ._executor import RunPlan
from ._loader import load_pipeline
from ._result import RunResult
from ._resume import find_recorded_run
from ._selection import SelectOptions
from ._stats import STATS_ENVIRONMENT_VARIABLE, PostgresStatsStore, RecordedRun, StatsStore, open_stats_store

__all__ = [
    "format_table",
    "add_selection_arguments",
    "add_runs_command",
    "selection_from_arguments",
    "resume_from_arguments",
    "print_plan",
    "print_resumed",
    "seconds_text",
]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no task; give names separated by commas, e.g. --only Extract,Load"
        )
    return names


def add_selection_arguments(run: argparse.ArgumentParser) -> None:
    """Add --only, --from, --to, --tags, --with-upstream, --resume and --dry-run to the `run` parser."""
    group = run.add_argument_group("partial runs (names and tags may be glob patterns; criteria intersect)")
    group.add_argument("--only", metavar="A,B", type=_names, action="extend", help="run just these tasks")
    group.add_argument(
        "--from",
        metavar="A",
        dest="from_",
        type=_names,
        action="extend",
        help="run these tasks and everything downstream of them",
    )
    group.add_argument(
        "--to", metavar="A", type=_names, action="extend", help="run these tasks and everything they need"
    )
    group.add_argument(
        "--tags",
        metavar="T1,T2",
        type=_names,
        action="extend",
        help="run the tasks with one of these tags (@register(tags=...))",
    )
    group.add_argument(
        "--with-upstream",
        action="store_true",
        help="also run what the selected tasks need (otherwise left-out upstreams count as succeeded)",
    )
    group.add_argument(
        "--resume",
        metavar="RUN_ID",
        nargs="?",
        const=True,
        default=False,
        help="keep what ended success or skipped in the latest recorded run (or RUN_ID, a prefix is enough); run the rest",
    )
    group.add_argument("--dry-run", action="store_true", help="check and print the plan; run nothing, write nothing")


def selection_from_arguments(args: argparse.Namespace) -> SelectOptions | None:
    """The `select=` options the flags ask for, or None for the whole pipeline."""
    options: dict[str, Any] = {
        option: getattr(args, option) for option in ("only", "from_", "to", "tags") if getattr(args, option)
    }
    if args.with_upstream:
        options["with_upstream"] = True
    return options or None  # type: ignore[return-value]


def resume_from_arguments(args: argparse.Namespace) -> str | bool:
    """`resume=` for the executor: False, True (the latest run) or a run id."""
    resume: str | bool = args.resume
    return resume


def print_plan(plan: RunPlan, workers: int, stats: StatsStore | None) -> None:
    """Print what a dry run checked and the plan: each task, and whether it runs, is kept or left out."""
    validated = plan.pipeline
    total = len(plan.order)
    print(
        f"dry run of pipeline {validated.name!r}: {len(plan.to_run)} of {total} task(s) would run "
        f"on {workers} worker(s); nothing ran and nothing was written"
    )
    if validated.selection:
        print(f"selection: {validated.selection}")
    if plan.resumed_from:
        kept = sum(1 for r in plan.carried.values() if r.resumed_from)
        print(f"resuming run {plan.resumed_from}: {kept} task(s) keep the state they ended with")
    width = max(len(name) for name in plan.order)
    number_width = len(f"{len(plan.to_run)}.")
    step = 0
    for name in plan.order:
        carried = plan.carried.get(name)
        if carried is None:
            step += 1
            upstream = ", ".join(validated.upstream[name])
            what = f"{f'{step}.':>{number_width}} run" + (f"  (after {upstream})" if upstream else "")
        elif carried.excluded:
            what = f"{'':>{number_width}} not selected"
        else:
            what = f"{'':>{number_width}} kept: {carried.state.value} in run {carried.resumed_from}"
        print(f"  {name:<{width}}  {what}")
    sources = ", ".join(plan.context.sources) if plan.context.sources else "none"
    print(f"checked: the definition, the context (sources: {sources}), rate-limit keys, output paths")
    print(f"statistics: {_stats_location(stats)}")


def _stats_location(stats: StatsStore | None) -> str:
    if stats is None:
        return "off"
    if isinstance(stats, PostgresStatsStore):
        return f"{stats.location!r} (a PostgreSQL server)"
    path = stats.path
    if path.is_file():
        return (
            f"{str(path)!r} (writable)"
            if os.access(path, os.W_OK)
            else f"{str(path)!r} is NOT writable: this run would not be recorded"
        )
    folder = path.parent
    if folder.is_dir():
        usable = os.access(folder, os.W_OK | os.X_OK)
        return (
            f"{str(path)!r} (would be created)"
            if usable
            else f"folder {str(folder)!r} is NOT writable: this run would not be recorded"
        )
    if stats.create_directory:
        return f"{str(path)!r} (it and its folder would be created)"
    return f"folder {str(folder)!r} does not exist: this run would not be recorded (create it, or pass --stats PATH)"


def print_resumed(result: RunResult | None) -> None:
    """After a resumed run: say which run it resumed and how many tasks it kept (standard error)."""
    if result is None or not result.resumed_from:
        return
    kept = sum(1 for r in result.tasks.values() if r.resumed_from)
    ran = sum(1 for r in result.tasks.values() if r.attempts)
    print(
        f"run {result.run_id} resumed run {result.resumed_from}: kept {kept} task(s), ran {ran}",
        file=sys.stderr,
    )


def add_runs_command(commands: Any, target_help: str, stats_help: str) -> None:
    """Add `runs TARGET [RUN_ID] [--stats PATH] [--limit N]`."""
    runs = commands.add_parser(
        "runs",
        help="list recorded runs, or one run's tasks",
        description="List the recorded runs of TARGET's pipeline (newest first), or the tasks of run RUN_ID.",
    )
    runs.add_argument("target", metavar="TARGET", help=target_help)
    runs.add_argument("run_id", metavar="RUN_ID", nargs="?", help="show this run's tasks (a unique prefix is enough)")
    runs.add_argument("--stats", metavar="PATH", help=stats_help)
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="list at most N runs (default 20; 0: all)")
    runs.set_defaults(handler=_runs)


def _runs(args: argparse.Namespace) -> int:
    validated = load_pipeline(args.target).validate()
    configured = open_stats_store(args.stats or None)
    if configured is None:
        print(
            f"statistics are off ({STATS_ENVIRONMENT_VARIABLE}={os.environ[STATS_ENVIRONMENT_VARIABLE]}); no runs are recorded"
        )
        return 0
    # Read-only: listing runs never creates, migrates or moves the statistics file.
    store = configured.reader()
    if args.run_id is not None:
        return _show_run(store, validated.name, args.run_id)
    if not store.exists():
        print(
            f"no runs recorded in {store.location!r}: run the pipeline first (python -m task_engine_core run {args.target})"
        )
        return 0
    runs = store.recorded_runs(validated.name, limit=args.limit if args.limit > 0 else None)
    print(f"pipeline {validated.name!r}: {len(runs)} recorded run(s) in {store.location!r}, newest first")
    if runs:
        print(format_runs(runs))
    return 0


def format_runs(runs: Sequence[RecordedRun]) -> str:
    """The `runs` table: id, start, duration, outcome, counts per state, resumed-from, selection."""
    header = ("run id", "started (UTC)", "duration", "outcome", "tasks", "resumed from", "selection")
    rows = [
        (
            run.run_id,
            _moment(run.started_at),
            seconds_text(run.duration),
            run.outcome,
            ", ".join(f"{n} {state}" for state, n in sorted(run.counts.items())),
            run.resumed_from or "-",
            run.selection or "-",
        )
        for run in runs
    ]
    return format_table(header, rows)


def _show_run(store: StatsStore, pipeline: str, run_id: str) -> int:
    found = find_recorded_run(store, pipeline, run_id, what="show")
    run = next(r for r in store.recorded_runs(pipeline) if r.run_id == found)
    resumed = f", resumed run {run.resumed_from}" if run.resumed_from else ""
    selection = f", selection {run.selection}" if run.selection else ""
    print(
        f"run {run.run_id} of pipeline {pipeline!r}: {run.outcome}, started {_moment(run.started_at)} UTC, "
        f"took {seconds_text(run.duration)}{resumed}{selection}"
    )
    rows = []
    for task in store.recorded_tasks(found):
        if task.excluded:
            note = "not selected"
        elif task.resumed_from:
            note = f"kept from run {task.resumed_from}"
        else:
            note = ": ".join(part for part in (task.error_type, task.reason) if part)
        rows.append((task.task, task.state, str(task.attempts), seconds_text(task.duration), note or "-"))
    print(format_table(("task", "state", "attempts", "duration", "note"), rows))
    return 0


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, numbers: bool = False) -> str:
    """A plain-text table of the CLI (`stats`, `runs`); with `numbers`, every column after the first is right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if numbers and column else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _moment(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def seconds_text(value: float | None) -> str:
    """Seconds as the tables show them: `1.234s`, or `12.3ms` below 0.1 s; '-' for None."""
    if value is None:
        return "-"
    return f"{value:.3f}s" if value >= 0.1 else f"{value * 1000:.1f}ms"
