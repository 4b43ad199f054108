"""Reporters: listeners on run events that show a run to people and machines."""

from .._lazy import lazy_attributes
from ._output import check_writable, mask_values
from .base import Reporter
from .console import ConsoleReporter, format_plan
from .registry import register_reporter, registered_reporters

# Imported when first used: a run that writes no report, summary or diagram does not load them.
__getattr__ = lazy_attributes(
    __name__,
    {
        "GRAPH_FORMATS": ".diagrams",
        "render_graph": ".diagrams",
        "to_dot": ".diagrams",
        "to_html": ".diagrams",
        "to_mermaid": ".diagrams",
        "HtmlRunReport": ".html_report",
        "render_run_report": ".html_report",
        "JsonRunSummary": ".json_summary",
        "ProgressReporter": ".progress",
    },
)

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
