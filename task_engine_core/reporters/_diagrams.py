"""The pipeline DAG as Graphviz DOT, Mermaid or a self-contained HTML page.

Nodes get synthetic ids (`n0`, `n1`, ...) and the task name goes into a label escaped for the
format, so any name, quotes and angle brackets included, gives a valid diagram.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .._pipeline import Pipeline, ValidatedPipeline

__all__ = ["DagView", "dag_view", "to_dot", "to_mermaid", "to_html", "render_graph", "GRAPH_FORMATS"]

GRAPH_FORMATS = ("dot", "mermaid", "html")

# Graphviz fill colours by state (the same palette as the HTML pages).
_DOT_FONT = {"skipped": "black"}


@dataclass(frozen=True)
class DagView:
    """What a diagram needs: the pipeline's name, tasks in topological order, upstream names."""

    name: str
    order: tuple[str, ...]
    upstream: Mapping[str, tuple[str, ...]]


def dag_view(pipeline: Pipeline | ValidatedPipeline | DagView) -> DagView:
    """Validate `pipeline` if needed and keep what a diagram shows."""
    if isinstance(pipeline, DagView):
        return pipeline
    validated = pipeline.validate() if isinstance(pipeline, Pipeline) else pipeline
    return DagView(validated.name, tuple(validated.order), dict(validated.upstream))


def _dot_string(text: str) -> str:
    # In a quoted DOT string only backslash and the double quote are special; a backslash also
    # starts label escapes (\n, \l, \N), so it is doubled, and line breaks become \n.
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def to_dot(pipeline: Pipeline | ValidatedPipeline | DagView, states: Mapping[str, str] | None = None) -> str:
    """Graphviz DOT (`dot -Tsvg` accepts it); with `states`, nodes are filled by final state."""
    from . import _html  # imported here: listing GRAPH_FORMATS (every CLI start) needs no HTML

    view = dag_view(pipeline)
    states = states or {}
    ids = {name: f"n{i}" for i, name in enumerate(view.order)}
    lines = [
        f"digraph {_dot_string(view.name)} {{",
        "  rankdir=LR;",
        f"  label={_dot_string('pipeline ' + view.name)};",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fillcolor="#1565c0", fontcolor="white"];',
        '  edge [color="#666666"];',
    ]
    for name in view.order:
        attrs = [f"label={_dot_string(name)}"]
        state = states.get(name)
        if state:
            attrs.append(f'fillcolor="{_html.STATE_COLOURS.get(state, _html.STATE_COLOURS[None])}"')
            attrs.append(f'fontcolor="{_DOT_FONT.get(state, "white")}"')
            attrs.append(f"tooltip={_dot_string(name + ': ' + state)}")
        lines.append(f"  {ids[name]} [{', '.join(attrs)}];")
    for name in view.order:
        for parent in view.upstream.get(name, ()):
            lines.append(f"  {ids[parent]} -> {ids[name]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_MERMAID_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


def _mermaid_label(text: str) -> str:
    # Mermaid reads `#name;` / `#123;` entity codes inside quoted labels; `#` itself is escaped
    # first so a name like `a#quot;` stays literal. Line breaks and other controls become spaces.
    out = []
    for char in text:
        if char in _MERMAID_ENTITIES:
            out.append(_MERMAID_ENTITIES[char])
        elif char < " " or char == "\x7f":
            out.append(" ")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def to_mermaid(pipeline: Pipeline | ValidatedPipeline | DagView, states: Mapping[str, str] | None = None) -> str:
    """A Mermaid flowchart (left to right); with `states`, nodes get a class per final state."""
    from . import _html  # imported here: listing GRAPH_FORMATS (every CLI start) needs no HTML

    view = dag_view(pipeline)
    states = states or {}
    ids = {name: f"n{i}" for i, name in enumerate(view.order)}
    lines = ["flowchart LR"]
    for name in view.order:
        lines.append(f"  {ids[name]}[{_mermaid_label(name)}]")
    for name in view.order:
        for parent in view.upstream.get(name, ()):
            lines.append(f"  {ids[parent]} --> {ids[name]}")
    used = sorted({s for s in states.values() if s})
    for state in used:
        colour = _html.STATE_COLOURS.get(state, _html.STATE_COLOURS[None])
        font = _DOT_FONT.get(state, "#fff")
        lines.append(f"  classDef {state} fill:{colour},color:{font},stroke:#333")
    for state in used:
        members = [ids[n] for n in view.order if states.get(n) == state]
        lines.append(f"  class {','.join(members)} {state}")
    return "\n".join(lines) + "\n"


def to_html(pipeline: Pipeline | ValidatedPipeline | DagView, states: Mapping[str, str] | None = None) -> str:
    """A self-contained HTML page: the DAG as inline SVG and a table of tasks and their upstreams."""
    from . import _html  # imported here: listing GRAPH_FORMATS (every CLI start) needs no HTML

    view = dag_view(pipeline)
    rows = "".join(
        f'<tr data-task="{_html.esc(name)}"><td>{_html.esc(name)}</td>'
        f"<td>{_html.esc(', '.join(view.upstream.get(name, ())) or '-')}</td></tr>"
        for name in view.order
    )
    body = (
        f"<h1>Pipeline {_html.esc(view.name)}</h1>"
        f'<p class="meta">{len(view.order)} tasks, arrows point from a task to the tasks that depend on it</p>'
        f'<div class="scroll">{_html.dag_svg(view.order, view.upstream, states)}</div>'
        f"<h2>Tasks</h2><table><thead><tr><th>Task</th><th>Depends on</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return _html.page(f"Pipeline {view.name}", body)


def render_graph(
    pipeline: Pipeline | ValidatedPipeline | DagView, fmt: str, states: Mapping[str, str] | None = None
) -> str:
    """Render the DAG in `fmt`, one of GRAPH_FORMATS."""
    renderers = {"dot": to_dot, "mermaid": to_mermaid, "html": to_html}
    if fmt not in renderers:
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"graph format {fmt!r} is not known; use one of: {', '.join(GRAPH_FORMATS)}")
    return renderers[fmt](pipeline, states)
