"""Reporters: listeners on run events that show a run to people and machines."""

from ._output import check_writable, mask_values
from .base import Reporter
from .console import ConsoleReporter, format_plan
from .diagrams import GRAPH_FORMATS, render_graph, to_dot, to_html, to_mermaid
from .html_report import HtmlRunReport, render_run_report
from .json_summary import JsonRunSummary
from .progress import ProgressReporter
from .registry import register_reporter, registered_reporters

__all__ = [
    "ConsoleReporter",
    "GRAPH_FORMATS",
    "HtmlRunReport",
    "JsonRunSummary",
    "ProgressReporter",
    "Reporter",
    "check_writable",
    "format_plan",
    "mask_values",
    "register_reporter",
    "registered_reporters",
    "render_graph",
    "render_run_report",
    "to_dot",
    "to_html",
    "to_mermaid",
]
