"""The command line: `python -m task_engine_core run|list|graph|stats|runs|check TARGET ...`.

Exit codes: 0 success; 1 a task failed; 2 a mistake in the command, the pipeline definition
or its configuration (a message, no traceback); 130 / 143 stopped by SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ._cli_history import (
    add_runs_command,
    add_selection_arguments,
    format_table,
    print_plan,
    print_resumed,
    resume_from_arguments,
    seconds_text,
    selection_from_arguments,
)
from ._cli_reporting import (
    add_graph_command,
    add_run_reporting_arguments,
    build_run_reporters,
    check_output_paths,
    finish_run_reporting,
)
from ._defaults import PipelineExecutor
from ._executor import exit_code_for_signal
from ._hydrators import build_context
from ._loader import load_pipeline
from ._pipeline import Pipeline
from ._policies._resource import ResourceGuard
from ._secrets import error_text, mask_text
from ._stats import (
    DEFAULT_STATS_DIRECTORY,
    DEFAULT_STATS_FILE,
    STATS_ENVIRONMENT_VARIABLE,
    StatsWarning,
    TaskSummary,
    open_stats_store,
)
from ._streams import prefix_task_output, protect_stdout
from ._version import __version__
from .backend import BACKENDS
from .errors import InvalidArgumentError, RunInterrupted, TaskEngineError

__all__ = ["main", "build_parser", "format_summaries"]

EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE = 0, 1, 2

_DEFAULT_STATS = f"{DEFAULT_STATS_DIRECTORY}/{DEFAULT_STATS_FILE}"

TARGET_HELP = "a module name (examples.jobs), a .py file, or a package folder"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own exit code is 2 as well; keep its message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; use e.g. --workers 4") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the number of workers must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog="python -m task_engine_core",
        description="Run and inspect Task Engine pipelines.",
        epilog="Exit codes: 0 success, 1 a task failed, 2 a definition or usage error, "
        "130/143 interrupted by SIGINT/SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"task-engine {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser("run", help="run a pipeline", description="Run every task of TARGET's pipeline.")
    run.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    run.add_argument("--workers", type=_positive_int, default=1, help="worker threads (default 1: sequential)")
    run.add_argument(
        "--keep-going", action="store_true", help="after a failure, still run branches that do not depend on it"
    )
    run.add_argument(
        "--prefix-output",
        action="store_true",
        help="start every line a task prints with [TaskName] (useful with --workers)",
    )
    run.add_argument("--plan", action="store_true", help="print the plan line before running")
    run.add_argument(
        "--context",
        metavar="PATH",
        help="context YAML file (default: task_engine.yml in the working directory, if present)",
    )
    add_run_reporting_arguments(run)
    _add_stats_arguments(run)
    run.add_argument(
        "--no-priority",
        action="store_true",
        help="start ready tasks in registration order (ignore recorded durations and explicit priorities)",
    )
    add_selection_arguments(run)
    run.set_defaults(handler=_run)

    stats = commands.add_parser(
        "stats", help="print recorded runtime statistics", description="Print per-task statistics of TARGET's pipeline."
    )
    stats.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    stats.add_argument(
        "--stats",
        metavar="PATH",
        help=f"statistics file or postgresql:// URL (default ${STATS_ENVIRONMENT_VARIABLE} or {_DEFAULT_STATS})",
    )
    stats.set_defaults(handler=_stats)

    listing = commands.add_parser(
        "list", help="list tasks, dependencies and policies", description="List the tasks of TARGET's pipeline."
    )
    listing.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    listing.set_defaults(handler=_list)
    add_graph_command(commands, TARGET_HELP)
    add_runs_command(
        commands, TARGET_HELP, f"statistics file (default ${STATS_ENVIRONMENT_VARIABLE} or {_DEFAULT_STATS})"
    )
    _add_check_command(commands)
    return parser


def _add_check_command(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="list where the pipeline behaves differently on a backend",
        description="List every place where TARGET's pipeline will not behave on BACKEND as it does standalone "
        "on one process, with the task, the reason and what to do. Exit 0: nothing to report; 1: differences "
        "found; 2: a definition or usage error.",
    )
    check.add_argument("target", metavar="TARGET", help=TARGET_HELP)
    check.add_argument("--backend", required=True, choices=BACKENDS, help="where the pipeline will run")
    check.add_argument("--json", action="store_true", help="print the findings as one JSON document")
    check.add_argument(
        "--workers", type=_positive_int, help="standalone worker threads, or Prefect's max_workers (default 1 / 4)"
    )
    check.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="KEY=POOL",
        help="a rate-limit key mapped to an Airflow pool, as in to_airflow_dag(pools=...); repeatable",
    )
    check.add_argument("--dag-test", action="store_true", help="the DAG is verified with dag.test() before deploying")
    check.add_argument(
        "--prefect-workers",
        choices=("process", "in-process"),
        default="process",
        help="process (default): each flow run in a process of its own (work pools, serve); in-process: flow() calls",
    )
    check.add_argument("--context", metavar="PATH", help="context YAML file (read for rate_limit_store:)")
    check.set_defaults(handler=_check)


def _pool_mapping(entries: Sequence[str]) -> dict[str, str]:
    pools: dict[str, str] = {}
    for entry in entries:
        key, sep, pool = entry.rpartition("=")
        if not sep or not key or not pool:
            raise InvalidArgumentError(
                f"--pool {entry!r}: write KEY=POOL, e.g. --pool /jobs/runs/get=databricks_runs_get"
            )
        pools[key] = pool
    return pools


def _check(args: argparse.Namespace) -> int:
    from ._check import CheckTarget, check_pipeline, configured_rate_limit_store, findings_document, format_findings

    validated = _load(args.target).validate()
    target = CheckTarget(
        backend=args.backend,
        workers=args.workers,
        pools=_pool_mapping(args.pool),
        rate_limit_store=configured_rate_limit_store(build_context(args.context)),
        prefect_workers=args.prefect_workers,
        dag_test=args.dag_test,
    )
    findings = check_pipeline(validated, target)
    if args.json:
        print(json.dumps(findings_document(validated.name, target, findings), indent=2))
    else:
        print(format_findings(validated.name, target, findings))
    return EXIT_TASK_FAILED if findings else EXIT_OK


def _add_stats_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--stats",
        metavar="PATH",
        help=f"statistics file or postgresql:// URL (default ${STATS_ENVIRONMENT_VARIABLE} or {_DEFAULT_STATS})",
    )
    where.add_argument("--no-stats", action="store_true", help="neither read nor write runtime statistics")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(warnings.showwarning)
        try:
            code: int = args.handler(args)
            return code
        except TaskEngineError as error:
            print(f"error: {mask_text(str(error))}", file=sys.stderr)
            return EXIT_USAGE


def _warning_printer(python_default: Callable[..., None]) -> Callable[..., None]:
    # A StatsWarning tells the user what was skipped and what to do; the source line of the
    # library that warned would only look like a crash.
    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, StatsWarning):
            print(f"warning: {mask_text(str(message))}", file=sys.stderr)
        else:
            python_default(message, category, filename, lineno, file, line)

    return show


def _load(target: str) -> Pipeline:
    return load_pipeline(target)


def _run(args: argparse.Namespace) -> int:
    check_output_paths(args)  # before any task starts
    protect_stdout()  # `run ... | head`: a closed reader is not a task's failure
    if args.prefix_output:
        prefix_task_output()
    try:
        pipeline = _load(args.target)
    except KeyboardInterrupt:  # Ctrl-C during a slow import
        return _interrupted_before_the_run()
    stats = False if args.no_stats else args.stats  # None: $TASK_ENGINE_STATS or the default file
    options: dict[str, Any] = dict(
        workers=args.workers,
        context=args.context,
        keep_going=args.keep_going,
        stats=stats,
        priority=not args.no_priority,
        select=selection_from_arguments(args),
        resume=resume_from_arguments(args),
    )
    if args.dry_run:  # no reporters: a trace or report file must not be started
        executor = PipelineExecutor(pipeline, reporters=[], **options)
        print_plan(executor.plan(), args.workers, executor.stats_store)
        return EXIT_OK
    reporters, tracing = build_run_reporters(args, pipeline)
    executor = PipelineExecutor(pipeline, reporters=reporters, **options)
    try:
        executor.run()
    except RunInterrupted as interrupted:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        _print_totals(executor, args)
        return exit_code_for_signal(executor.result.interrupted if executor.result else None)
    except TaskEngineError:
        if executor.result is None:
            raise  # a definition error before any task started
        return _report_failure(executor, args)
    except BaseException as error:
        if executor.result is not None and executor.result.failed:
            return _report_failure(executor, args)  # a task's own KeyboardInterrupt, SystemExit, ...
        if not isinstance(error, KeyboardInterrupt):
            raise
        if executor.result is None:  # Ctrl-C while the context was read
            return _interrupted_before_the_run()
        # A second Ctrl-C while the finished run's results were written: the user would not wait.
        print(
            f"interrupted while the results of run {executor.result.run_id} were written; "
            f"statistics and reports may be missing",
            file=sys.stderr,
        )
        return exit_code_for_signal("SIGINT")
    finally:
        finish_run_reporting(tracing, executor.result)
        print_resumed(executor.result)
    return EXIT_OK


def _interrupted_before_the_run() -> int:
    print("interrupted before the run started; no task ran", file=sys.stderr)
    return exit_code_for_signal("SIGINT")


def _print_totals(executor: PipelineExecutor, args: argparse.Namespace) -> None:
    # Which tasks then did not run: the last line of every failed or interrupted run (--progress
    # prints the same line itself).
    if executor.result is not None and not getattr(args, "progress", False):
        from .reporters._progress import format_run_totals

        print(format_run_totals(executor.result), file=sys.stderr)


def _report_failure(executor: PipelineExecutor, args: argparse.Namespace) -> int:
    assert executor.result is not None
    failed = executor.result.failed
    first = executor.result.first_failure
    if first is None or first.error is None:
        _print_totals(executor, args)
        return EXIT_TASK_FAILED
    others = f" ({len(failed) - 1} more failed)" if len(failed) > 1 else ""
    message = error_text(first.error)
    error = f"{type(first.error).__name__}: {message}" if message else type(first.error).__name__
    print(f"task {first.name!r} failed after {first.attempts} attempt(s): {error}{others}", file=sys.stderr)
    # Secret values revealed to a client can come back inside its error message.
    print(mask_text("".join(traceback.format_exception(first.error))), end="", file=sys.stderr)
    _print_totals(executor, args)
    return EXIT_TASK_FAILED


def _list(args: argparse.Namespace) -> int:
    validated = _load(args.target).validate()
    print(f"pipeline {validated.name!r}: {len(validated.order)} tasks")
    for name in validated.order:
        policies = validated.policies[name]
        parts = []
        if policies.max_attempts > 1:
            backoff = policies.backoff
            kind = "exponential" if backoff.is_exponential else "constant"
            parts.append(f"retries={policies.max_attempts} ({kind} backoff from {backoff.initial:g}s)")
        if policies.skippable:
            parts.append("skippable")
        if policies.priority is not None:
            parts.append(f"priority={policies.priority:g}")
        parts.extend(f"rate_limit={key}" for key in policies.rate_limit_keys)
        if validated.definitions[name].tags:
            parts.append(f"tags={','.join(validated.definitions[name].tags)}")
        parts.extend(
            f"wait_for_resource={guard.name}(timeout {guard.timeout:g}s)"
            for guard in policies.guards
            if isinstance(guard, ResourceGuard)
        )
        upstream = ", ".join(validated.upstream[name]) or "-"
        print(f"  {name:<24} depends on: {upstream:<30} {' '.join(parts)}".rstrip())
    return EXIT_OK


def _stats(args: argparse.Namespace) -> int:
    validated = _load(args.target).validate()
    store = open_stats_store(args.stats or None)
    if store is None:
        print(f"statistics are off ({STATS_ENVIRONMENT_VARIABLE}={os.environ[STATS_ENVIRONMENT_VARIABLE]})")
        return EXIT_OK
    if not store.exists():
        print(
            f"no statistics at {store.location!r}: run the pipeline first (python -m task_engine_core run {args.target})"
        )
        return EXIT_OK
    runs = store.run_count(validated.name)
    print(f"pipeline {validated.name!r}: {runs} run(s) recorded in {store.location!r}")
    print(format_summaries(store.summaries(validated.name, validated.registration_order)))
    return EXIT_OK


def format_summaries(summaries: Sequence[TaskSummary]) -> str:
    """The `stats` table: one line per task with runs, mean / p50 / p95 duration and failure rate."""
    header = ("task", "runs", "mean", "p50", "p95", "failure rate", "mean wait")
    rows = [
        (
            s.task,
            str(s.runs),
            seconds_text(s.mean),
            seconds_text(s.p50),
            seconds_text(s.p95),
            f"{s.failure_rate:.0%}" if s.failure_rate is not None else "-",
            seconds_text(s.mean_waited),
        )
        for s in summaries
    ]
    return format_table(header, rows, numbers=True)
