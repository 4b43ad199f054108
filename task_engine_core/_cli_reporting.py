"""The CLI's reporting options (`run --progress --report --json --trace`) and the `graph` command.

Kept apart from cli.py so the run command only gains a few lines: check the output paths before
anything runs, build the listeners, and finish tracing when the run ends.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from ._pipeline import Pipeline
from .events import Listener
from .reporters import ConsoleReporter, check_writable

__all__ = [
    "add_run_reporting_arguments",
    "add_graph_command",
    "check_output_paths",
    "build_run_reporters",
    "finish_run_reporting",
    "expected_durations",
]


def add_run_reporting_arguments(run: argparse.ArgumentParser) -> None:
    """Add --progress, --report, --json and --trace to the `run` parser."""
    run.add_argument(
        "--progress",
        action="store_true",
        help="show progress: a live status line on a terminal, plain lines otherwise (on standard error)",
    )
    run.add_argument("--report", metavar="FILE", help="write a self-contained HTML run report to FILE")
    run.add_argument("--json", metavar="FILE", dest="json_summary", help="write a JSON run summary to FILE")
    run.add_argument(
        "--trace", metavar="FILE", help="trace the run with OpenTelemetry into FILE (JSON lines; needs the otel extra)"
    )


def check_output_paths(args: argparse.Namespace) -> None:
    """Fail with OutputPathError (exit 2) before any task starts when an output file cannot be written."""
    for value, what in (
        (args.report, "HTML run report"),
        (args.json_summary, "JSON run summary"),
        (args.trace, "trace file"),
    ):
        if value:
            check_writable(value, what)


def expected_durations(args: argparse.Namespace, pipeline: Pipeline) -> dict[str, float]:
    """Expected task durations from recorded statistics, for the progress ETA; empty without any.

    Reads the store the run itself uses (`--stats PATH`, else TASK_ENGINE_STATS, else the default;
    resolved by `stats.open_stats_store`, as every reader), only if it exists, and never creates one.
    """
    if getattr(args, "no_stats", False):
        return {}
    from ._stats import StatsWarning, open_stats_store  # only for runs that show progress

    try:
        store = open_stats_store(getattr(args, "stats", None) or None, connect_timeout=2.0)
        if store is None or not store.exists():
            return {}
        try:
            # The run's own read of the same file says it once when the file cannot be read.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", StatsWarning)
                return dict(store.expected_durations(pipeline.name))
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - an ETA is a nicety; a broken stats file must not stop a run
        return {}


def build_run_reporters(args: argparse.Namespace, pipeline: Pipeline) -> tuple[list[Listener], Any]:
    """The reporters of a CLI run (the executor adds the rest through `backend.default_listeners`) and the tracing listener or None."""
    from .telemetry import tracing_from_environment

    tracing = tracing_from_environment(args.trace)
    listeners: list[Listener] = [tracing] if tracing is not None else []
    if args.progress:
        from .reporters._progress import ProgressReporter  # imported only for runs that show progress

        listeners.append(ProgressReporter(expected=expected_durations(args, pipeline)))
    else:
        listeners.append(ConsoleReporter(show_plan=args.plan))
    if args.report:
        from .reporters._html_report import HtmlRunReport

        listeners.append(HtmlRunReport(args.report))
    if args.json_summary:
        from .reporters._json_summary import JsonRunSummary

        listeners.append(JsonRunSummary(args.json_summary))
    return listeners, tracing


def finish_run_reporting(tracing: Any, result: Any) -> None:
    """Print the trace id and flush the exporters."""
    if tracing is None:
        return
    tracing.shutdown()
    trace_id = getattr(result, "trace_id", None) or tracing.trace_id
    if trace_id:
        print(f"trace id: {trace_id}", file=sys.stderr)


def add_graph_command(commands: Any, target_help: str) -> None:
    """Add `graph TARGET --format dot|mermaid|html [-o FILE]`."""
    from .reporters._diagrams import GRAPH_FORMATS

    graph = commands.add_parser(
        "graph", help="write the task graph as DOT, Mermaid or HTML", description="Write the DAG of TARGET's pipeline."
    )
    graph.add_argument("target", metavar="TARGET", help=target_help)
    graph.add_argument("--format", choices=GRAPH_FORMATS, default="dot", help="output format (default dot)")
    graph.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    graph.set_defaults(handler=_graph)


def _graph(args: argparse.Namespace) -> int:
    from ._loader import load_pipeline

    target = check_writable(args.output, f"{args.format} graph") if args.output else None
    from .reporters._diagrams import render_graph

    text = render_graph(load_pipeline(args.target), args.format)
    if target is None:
        sys.stdout.write(text)
    else:
        target.write_text(text, encoding="utf-8")
    return 0
