"""Reporters: listeners on run events that show a run to people and machines."""

from .._lazy import lazy_attributes
from ._base import Reporter
from ._console import ConsoleReporter, format_plan
from ._output import check_writable, mask_values
from ._registry import register_reporter, registered_reporters

# Imported when first used: a run that writes no report, summary or diagram does not load them.
__getattr__ = lazy_attributes(
    __name__,
    {
        "GRAPH_FORMATS": "._diagrams",
        "render_graph": "._diagrams",
        "to_dot": "._diagrams",
        "to_html": "._diagrams",
        "to_mermaid": "._diagrams",
        "HtmlRunReport": "._html_report",
        "render_run_report": "._html_report",
        "JsonRunSummary": "._json_summary",
        "ProgressReporter": "._progress",
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
