"""HtmlRunReport: a self-contained HTML page about one run (`run --report run.html`).

The page holds the DAG coloured by final state, a timeline of each worker thread and a table of
attempts, durations, waits and errors. It loads nothing and runs no script, so it opens offline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._result import RunResult, TaskResult
from .._secrets import error_text
from .._task import TaskState
from . import _html
from ._html import esc
from ._output import Redactor, check_writable, redactor, write_file
from ._record import RunRecorder, TaskHistory, critical_path, plan_tasks, shown_output

__all__ = ["HtmlRunReport", "render_run_report"]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} s"


def _state_badge(state: TaskState) -> str:
    colour = _html.STATE_COLOURS.get(state.value, _html.STATE_COLOURS[None])
    text_colour = "#000" if state is TaskState.SKIPPED else "#fff"
    return f'<span class="state" style="background:{colour};color:{text_colour}">{esc(state.value)}</span>'


def _problem_cell(task: TaskResult, history: TaskHistory, redact: Redactor) -> str:
    lines = []
    for attempt, error in history.attempt_errors:
        if error is task.error and attempt == task.attempts:
            continue  # the final error is shown below
        lines.append(f"attempt {attempt}: {type(error).__name__}: {redact(error_text(error))}")
    if task.error is not None:
        lines.append(f"{type(task.error).__name__}: {redact(error_text(task.error))}")
    if task.reason and task.state is not TaskState.SUCCESS:
        lines.append(f"({redact(task.reason)})")
    return esc("\n".join(lines))


def _waits_cell(task: TaskResult, history: TaskHistory, redact: Redactor) -> str:
    parts = [
        f"{reason.replace('_', ' ')} {seconds:.3f} s" for reason, seconds in task.waits.items() if seconds or reason
    ]
    timed_out = [w for w in history.waits if not w.ok]
    parts += [f"gave up on {w.reason.replace('_', ' ')} {redact(w.key)!r}" for w in timed_out]
    return esc(", ".join(parts))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, dotted + "."))
        else:
            rows.append((dotted, value))
    return rows


def _context_section(context: Mapping[str, Any] | None, redact: Redactor) -> str:
    if context is None:
        return ""
    from .._secrets import mask_secrets

    safe = context.redacted() if hasattr(context, "redacted") else mask_secrets(context)
    rows = "".join(f"<tr><td>{esc(key)}</td><td>{esc(redact(str(value)))}</td></tr>" for key, value in _flatten(safe))
    return (
        '<h2>Context</h2><table id="context"><thead><tr><th>Key</th><th>Value (secrets masked)</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def render_run_report(
    result: RunResult,
    upstream: dict[str, tuple[str, ...]],
    history: dict[str, TaskHistory] | None = None,
    redact: Redactor | None = None,
    context: Mapping[str, Any] | None = None,
) -> str:
    """The HTML page for `result`; every text from the pipeline is escaped, secrets are masked.

    `redact` runs after the masking of known context secrets; `context`, when given, is listed
    with its secret values shown as `***`.
    """
    history = history or {}
    redact = redactor(redact)
    order = plan_tasks(result, upstream)  # instances of a mapped task are rows and bars, not graph nodes
    states = {name: result.tasks[name].state.value for name in order}
    critical = critical_path(result, upstream)
    outcome = (
        f"interrupted by {result.interrupted}" if result.interrupted else "succeeded" if result.succeeded else "failed"
    )
    counts = {state.value: n for state, n in result.counts().items()}
    meta = [
        f"run <code>{esc(result.run_id)}</code>",
        f"started {esc(result.start.isoformat(timespec='seconds')) if result.start else '-'}",
        f"took {_seconds(result.duration) or '-'}",
        f"{result.workers} worker{'s' if result.workers != 1 else ''}",
        f"<strong>{esc(outcome)}</strong>",
    ]
    if result.trace_id:
        meta.append(f"trace id <code>{esc(result.trace_id)}</code>")
    summary = ", ".join(f"{n} {esc(state.replace('_', ' '))}" for state, n in counts.items())

    ran = [
        (name, task.state.value, task.worker or "main", task.start, task.end)
        for name, task in result.tasks.items()
        if task.start is not None and task.end is not None
    ]
    if ran and result.start and result.end:
        timeline = _html.gantt_svg(
            ran, min(result.start, *(r[3] for r in ran)), max(result.end, *(r[4] for r in ran)), critical
        )
    else:
        timeline = '<p class="meta">No task started.</p>'

    rows = []
    for name, task in result.tasks.items():
        item = history.get(name, TaskHistory())
        rows.append(
            f'<tr data-task="{esc(name)}" data-state="{esc(task.state.value)}">'
            f"<td>{esc(name)}</td><td>{_state_badge(task.state)}</td>"
            f'<td class="num">{task.attempts}</td><td class="num">{_seconds(task.duration)}</td>'
            f"<td>{_waits_cell(task, item, redact)}</td><td>{esc(task.worker)}</td>"
            f'<td class="out">{esc(shown_output(task, redact) or "")}</td>'
            f'<td class="err">{_problem_cell(task, item, redact)}</td></tr>'
        )
    critical_note = (
        f"Critical path (thick outline): {esc(' → '.join(critical))}" if critical else "No critical path: nothing ran."
    )
    used_states = [s.value for s in TaskState if s.value in counts]
    body = (
        f"<h1>Run report: pipeline {esc(result.pipeline)}</h1>"
        f'<p class="meta">{" · ".join(meta)}</p>'
        f'<p class="meta" id="counts">{summary}</p>'
        f"{_html.legend(used_states)}"
        f"<h2>Graph</h2>"
        f'<div class="scroll">{_html.dag_svg(order, upstream, states, critical)}</div>'
        f'<p class="meta">{critical_note}</p>'
        f"<h2>Timeline per worker</h2>"
        f'<div class="scroll">{timeline}</div>'
        f"<h2>Tasks</h2>"
        f'<table id="tasks"><thead><tr><th>Task</th><th>State</th><th>Attempts</th><th>Duration</th>'
        f"<th>Waits</th><th>Worker</th><th>Output</th><th>Errors</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{_context_section(context, redact)}"
    )
    return _html.page(f"Run report: {result.pipeline}", body)


class HtmlRunReport(RunRecorder):
    """Writes the HTML run report to `path` when a run finishes; the path is checked up front."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        redact: Redactor | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.path = check_writable(path, "HTML run report")
        self.redact: Redactor = redactor(redact)
        self.context = context

    def write(self, result: RunResult) -> None:
        """Render and write the report for `result`."""
        write_file(self.path, render_run_report(result, self.upstream, self.history, self.redact, self.context))
