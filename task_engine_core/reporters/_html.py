"""Building blocks of the self-contained HTML pages: page shell, DAG and Gantt SVGs.

Every text that comes from a pipeline (task names, errors, reasons) goes through `esc` before it
reaches the page; the page loads nothing from the network and runs no script.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime

from .._task import TaskState

__all__ = ["esc", "page", "dag_svg", "gantt_svg", "STATE_COLOURS", "layer_of"]

#: Fill colour per final state; None is a task that has no state (a graph, not a run).
STATE_COLOURS: dict[str | None, str] = {
    TaskState.SUCCESS.value: "#2e7d32",
    TaskState.FAILED.value: "#c62828",
    TaskState.SKIPPED.value: "#f9a825",
    TaskState.UPSTREAM_FAILED.value: "#ef6c00",
    TaskState.NOT_RUN.value: "#9e9e9e",
    None: "#1565c0",
}
_TEXT_ON = {TaskState.SKIPPED.value: "#000"}

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.meta{color:#555;margin:0 0 12px} .legend span{display:inline-block;margin-right:12px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.scroll{overflow-x:auto;border:1px solid #ddd;border-radius:4px;padding:8px}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.err{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word;max-width:48em}
td.out{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word;max-width:24em}
.state{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
svg text{font:12px system-ui,sans-serif}
"""


def esc(value: object) -> str:
    """HTML-escape any value (quotes too), for text and attribute positions alike."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    """A whole HTML document; its content security policy forbids scripts and network loads."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def legend(states: Sequence[str | None]) -> str:
    """Colour swatches for the given states."""
    items = []
    for state in states:
        label = state.replace("_", " ") if state else "task"
        items.append(f'<span><i class="swatch" style="background:{STATE_COLOURS[state]}"></i>{esc(label)}</span>')
    return f'<p class="legend">{"".join(items)}</p>'


def layer_of(order: Sequence[str], upstream: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each task's column: 0 for tasks without upstreams, else one more than its deepest upstream."""
    layer: dict[str, int] = {}
    for name in order:  # order is topological, so upstreams are placed first
        layer[name] = 1 + max((layer[p] for p in upstream.get(name, ())), default=-1)
    return layer


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dag_svg(
    order: Sequence[str],
    upstream: Mapping[str, Sequence[str]],
    states: Mapping[str, str] | None = None,
    highlight: Sequence[str] = (),
) -> str:
    """The DAG as an inline SVG: columns by depth, one box per task coloured by its state."""
    states = states or {}
    layer = layer_of(order, upstream)
    columns: dict[int, list[str]] = {}
    for name in order:
        columns.setdefault(layer[name], []).append(name)
    chars = min(max((len(n) for n in order), default=4), 32)
    box_w, box_h, gap_x, gap_y, pad = max(chars * 7.4 + 24, 80), 30, 56, 14, 10
    pos: dict[str, tuple[float, float]] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            pos[name] = (pad + col * (box_w + gap_x), pad + row * (box_h + gap_y))
    width = pad * 2 + len(columns) * box_w + max(len(columns) - 1, 0) * gap_x
    height = pad * 2 + max((len(c) for c in columns.values()), default=1) * (box_h + gap_y) - gap_y
    marked = set(highlight)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="task graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>',
    ]
    for name in order:
        x2, y2 = pos[name]
        for parent in upstream.get(name, ()):
            x1, y1 = pos[parent]
            sx, sy, ex, ey = x1 + box_w, y1 + box_h / 2, x2, y2 + box_h / 2
            mid = (sx + ex) / 2
            parts.append(
                f'<path class="edge" d="M{sx:.1f},{sy:.1f} C{mid:.1f},{sy:.1f} {mid:.1f},{ey:.1f} {ex:.1f},{ey:.1f}" '
                f'fill="none" stroke="#888" stroke-width="1.4" marker-end="url(#arrow)"/>'
            )
    for name in order:
        x, y = pos[name]
        state = states.get(name)
        fill = STATE_COLOURS.get(state, STATE_COLOURS[None])
        text_colour = _TEXT_ON.get(state or "", "#fff")
        stroke = ' stroke="#000" stroke-width="3"' if name in marked else ""
        tip = f"{name} — {state.replace('_', ' ')}" if state else name
        parts.append(
            f'<g class="node" data-task="{esc(name)}" data-state="{esc(state or "")}"><title>{esc(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w:.0f}" height="{box_h}" rx="5" fill="{fill}"{stroke}/>'
            f'<text x="{x + box_w / 2:.1f}" y="{y + box_h / 2 + 4:.1f}" text-anchor="middle" fill="{text_colour}">'
            f"{esc(_fit(name, 32))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def gantt_svg(
    rows: Sequence[tuple[str, str, str, datetime, datetime]],
    start: datetime,
    end: datetime,
    highlight: Sequence[str] = (),
) -> str:
    """A timeline: one lane per worker, one bar per task (task, state, worker, start, end)."""
    workers = sorted({worker for _, _, worker, _, _ in rows}, key=_worker_sort_key)
    total = max((end - start).total_seconds(), 1e-6)
    label_w, plot_w, lane_h, bar_h, top = 190, 760, 34, 22, 26
    height = top + max(len(workers), 1) * lane_h + 10
    marked = set(highlight)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" width="{label_w + plot_w + 20}" height="{height}" '
        f'viewBox="0 0 {label_w + plot_w + 20} {height}" role="img" aria-label="timeline per worker">'
    ]
    for tick in range(6):
        x = label_w + plot_w * tick / 5
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}" stroke="#e0e0e0"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" fill="#555">{_tick_label(total * tick / 5, total)}</text>'
        )
    lane = {worker: i for i, worker in enumerate(workers)}
    for i, worker in enumerate(workers):
        y = float(top + i * lane_h)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + lane_h / 2 + 4:.1f}" text-anchor="end" fill="#333">{esc(_fit(worker, 26))}</text>'
        )
    for task, state, worker, began, ended in rows:
        x = label_w + plot_w * (began - start).total_seconds() / total
        w = max(plot_w * (ended - began).total_seconds() / total, 2.0)
        y = top + lane[worker] * lane_h + (lane_h - bar_h) / 2
        fill = STATE_COLOURS.get(state, STATE_COLOURS[None])
        stroke = ' stroke="#000" stroke-width="2"' if task in marked else ""
        seconds = (ended - began).total_seconds()
        parts.append(
            f'<g class="bar" data-task="{esc(task)}" data-state="{esc(state)}" data-worker="{esc(worker)}">'
            f"<title>{esc(task)} — {esc(state.replace('_', ' '))}, {seconds:.3f} s on {esc(worker)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar_h}" rx="3" fill="{fill}"{stroke}/>'
        )
        if w > 40:
            parts.append(
                f'<text x="{x + 4:.1f}" y="{y + bar_h / 2 + 4:.1f}" fill="{_TEXT_ON.get(state, "#fff")}">'
                f"{esc(_fit(task, max(int(w / 7.4), 3)))}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _tick_label(seconds: float, total: float) -> str:
    if total < 1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.3g} s"


def _worker_sort_key(worker: str) -> tuple[str, int, str]:
    head, _, tail = worker.rpartition("-")
    return (head, int(tail), worker) if tail.isdigit() else (worker, 0, worker)
