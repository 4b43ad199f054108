"""Graph output: DOT checked by Graphviz `dot`, Mermaid rendered by Mermaid in Chromium, HTML in Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from task_engine_core import Pipeline
from task_engine_core.errors import InvalidArgumentError
from task_engine_core.reporters import render_graph, to_dot, to_html, to_mermaid
from tests._chromium import MERMAID_JS, load, screenshot

ROOT = Path(__file__).resolve().parent.parent
NASTY = [
    "Plain",
    'Quote " and \\ backslash',
    "Angle <script>alert(1)</script> & amp",
    "Hash #quot; #35; end",
    "Mermaid [syntax] {x} (y) |z| --> end",
    "Line\nbreak",
    "ünïcødé ✓",
]


def nasty_pipeline() -> Pipeline:
    """A chain of tasks whose names are hard to escape, plus a fan-in."""
    pipeline = Pipeline('graph "nasty" <p>')
    previous: str | None = None
    for name in NASTY:

        def task() -> None:
            pass

        pipeline.register(name=name, depends_on=[previous] if previous else [])(task)
        previous = name

    def last() -> None:
        pass

    pipeline.register(name="Last", depends_on=[NASTY[0], NASTY[-1]])(last)
    return pipeline


def dot_tool() -> str:
    found = shutil.which("dot")
    if not found:
        pytest.fail("graphviz `dot` is not installed; run tests/run_all.sh (apt-get install -y graphviz)")
    return found


def run_dot(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([dot_tool(), "-Tsvg"], input=text, capture_output=True, text=True, timeout=60)


def test_dot_is_accepted_by_graphviz_and_keeps_every_name() -> None:
    done = run_dot(to_dot(nasty_pipeline(), {"Plain": "success", "Last": "failed"}))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    titles = re.findall(r"<text[^>]*>([^<]*)</text>", done.stdout)
    import html

    shown = [html.unescape(t) for t in titles]
    for name in NASTY:
        for line in name.split("\n"):
            assert line in shown, line
    assert done.stdout.count('class="edge"') == len(NASTY) + 1  # a chain of 6 edges plus two into Last


def test_dot_checker_rejects_broken_dot() -> None:
    # The check above can fail: dot refuses what an unescaped quote produces.
    assert run_dot('digraph { n0 [label="a"b"]; }').returncode != 0


def test_dot_colours_nodes_by_state() -> None:
    text = to_dot(nasty_pipeline(), {"Plain": "success", "Last": "failed"})
    assert 'n0 [label="Plain", fillcolor="#2e7d32", fontcolor="white", tooltip="Plain: success"];' in text
    assert 'n1 [label="Quote \\" and \\\\ backslash"];' in text
    assert 'n5 [label="Line\\nbreak"];' in text


def test_mermaid_structure() -> None:
    text = to_mermaid(nasty_pipeline(), {"Plain": "success"})
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  n2["Angle #lt;script#gt;alert(1)#lt;/script#gt; #amp; amp"]' in lines
    assert '  n3["Hash #35;quot; #35;35; end"]' in lines
    assert '  n5["Line break"]' in lines
    assert "  n0 --> n1" in lines and "  n6 --> n7" in lines and "  n0 --> n7" in lines
    assert "  class n0 success" in lines
    labels = [line for line in lines if re.match(r"  n\d+\[", line)]
    for label in labels:  # nothing inside a label can close it early
        inner = label.split("[", 1)[1][1:-2]
        assert not set(inner) & set('"<>\n')


def _render_mermaid(tmp_path: Path, text: str) -> tuple[str, list[str], str]:
    """Render `text` with the real Mermaid in Chromium; return status, console lines and the DOM."""
    if not MERMAID_JS.exists():
        pytest.skip(
            "Mermaid is not installed in tests/js (tests/run_all.sh runs npm ci there); structure checked above"
        )
    import html

    page = tmp_path / "mermaid.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f'<pre class="mermaid" id="graph">{html.escape(text)}</pre>'
        f'<script src="{MERMAID_JS.as_uri()}"></script>'
        "<script>mermaid.initialize({startOnLoad:false});"
        "mermaid.run({querySelector:'#graph'}).then("
        "()=>document.body.setAttribute('data-status','ok'),"
        "e=>document.body.setAttribute('data-status','error: '+e.message));</script></body></html>",
        encoding="utf-8",
    )
    result = load(page, tmp_path / "profile", budget_ms=15000)
    match = re.search(r'data-status="([^"]*)"', result.dom)
    return (match.group(1) if match else "no status"), result.console, result.dom


def test_mermaid_is_accepted_by_mermaid(tmp_path: Path) -> None:
    status, console, dom = _render_mermaid(tmp_path, to_mermaid(nasty_pipeline(), {"Plain": "success"}))
    assert status == "ok", status
    import html

    labels = [html.unescape(re.sub(r"<[^>]+>", "", m)) for m in re.findall(r'class="nodeLabel"[^>]*>(.*?)</span>', dom)]
    expected = [" ".join(name.split("\n")) for name in NASTY] + ["Last"]
    assert sorted(labels) == sorted(expected)
    assert "<script>alert" not in dom


def test_mermaid_checker_rejects_broken_mermaid(tmp_path: Path) -> None:
    status, _, _ = _render_mermaid(tmp_path, 'flowchart LR\n  n0["a"b"] --> n1[')
    assert status.startswith("error: ")


def test_html_graph_renders_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "graph.html"
    page.write_text(to_html(nasty_pipeline()), encoding="utf-8")
    result = load(page, tmp_path / "profile")
    assert result.console == []
    import html

    nodes = [html.unescape(n) for n in re.findall(r'<g class="node" data-task="([^"]*)"', result.dom)]
    assert nodes == [*NASTY, "Last"]
    assert "<script>alert" not in result.dom
    assert screenshot(page, tmp_path / "profile", "graph.png").stat().st_size > 5_000


def test_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        render_graph(nasty_pipeline(), "png")
    assert str(caught.value) == "graph format 'png' is not known; use one of: dot, mermaid, html"


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "task_engine_core", "graph", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_cli_graph_writes_dot_to_stdout_and_files(tmp_path: Path) -> None:
    done = _cli("examples.jobs")
    assert done.returncode == 0, done.stderr
    assert run_dot(done.stdout).returncode == 0
    assert "  n0 -> n1;\n  n1 -> n2;\n  n2 -> n3;\n" in done.stdout
    for fmt in ("mermaid", "html"):
        target = tmp_path / f"jobs.{fmt}"
        done = _cli("examples.jobs", "--format", fmt, "-o", str(target))
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        assert "Job2Task1" in target.read_text(encoding="utf-8")


def test_cli_graph_errors_exit_2(tmp_path: Path) -> None:
    done = _cli("examples.jobs", "--format", "png")
    assert done.returncode == 2
    assert "argument --format: invalid choice: 'png'" in done.stderr
    done = _cli("examples.jobs", "-o", str(tmp_path / "nope" / "g.dot"))
    assert (done.returncode, done.stderr) == (
        2,
        f"error: cannot write the dot graph to '{tmp_path / 'nope' / 'g.dot'}': directory "
        f"'{tmp_path / 'nope'}' does not exist; choose a writable path\n",
    )
