"""The HTML run report, opened in real headless Chromium."""

from __future__ import annotations

import html.parser
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from task_engine_core import Backoff, Pipeline, PipelineExecutor, retries, skippable
from task_engine_core._task import TaskState
from task_engine_core.reporters import HtmlRunReport, mask_values, render_run_report
from tests._chromium import load, screenshot

ROOT = Path(__file__).resolve().parent.parent
SCRIPT_ERROR = '<script>document.title="pwned";console.error("injected")</script> & <b>not bold</b>'
ODD_NAME = 'Load <"quoted"> & <script>document.title="name"</script>'
SECRET = "s3cr3t-token-value"


def build_pipeline() -> Pipeline:
    """Eight parallel parts meeting at a barrier, plus a skipped, a failed and a blocked task."""
    pipeline = Pipeline("report <demo>")
    barrier = threading.Barrier(8, timeout=20)

    @pipeline.register
    def Extract() -> None:
        pass

    for i in range(8):

        def part() -> None:
            barrier.wait()  # all eight run at once, so the timeline has eight lanes

        part.__name__ = f"Part{i}"
        pipeline.register(depends_on=Extract)(part)

    @pipeline.register(depends_on=Extract)
    @skippable
    @retries(2, backoff=Backoff.constant(0))
    def Flaky() -> None:
        raise ValueError(f"token {SECRET} was refused")

    @pipeline.register(depends_on=Extract)
    def Crash() -> None:
        raise RuntimeError(SCRIPT_ERROR)

    @pipeline.register(depends_on=Crash)
    def AfterCrash() -> None:
        pass

    def odd() -> None:
        pass

    pipeline.register(name=ODD_NAME, depends_on=[f"Part{i}" for i in range(8)])(odd)
    return pipeline


EXPECTED = {
    "Extract": "success",
    **{f"Part{i}": "success" for i in range(8)},
    "Flaky": "skipped",
    "Crash": "failed",
    "AfterCrash": "upstream_failed",
    ODD_NAME: "success",
}


class _Rows(html.parser.HTMLParser):
    """Collects the task table rows and every element name of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.tags: list[str] = []
        self.bars: list[tuple[str, str]] = []
        self.in_error_cell = False
        self.error_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "tr" and "data-state" in values:
            self.rows[values["data-task"] or ""] = values["data-state"] or ""
        if tag == "g" and values.get("class") == "bar":
            self.bars.append((values["data-task"] or "", values["data-worker"] or ""))
        if tag == "td" and values.get("class") == "err":
            self.in_error_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.in_error_cell = False

    def handle_data(self, data: str) -> None:
        if self.in_error_cell:
            self.error_text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "run.html"
    executor = PipelineExecutor(
        build_pipeline(), workers=8, keep_going=True, reporters=[HtmlRunReport(path, redact=mask_values([SECRET]))]
    )
    with pytest.raises(RuntimeError):
        executor.run()
    assert executor.result is not None
    assert {n: s.value for n, s in executor.result.states().items()} == EXPECTED
    return path


def test_report_renders_every_task_with_its_state_in_chromium(report: Path, tmp_path: Path) -> None:
    page = load(report, tmp_path / "profile")
    assert page.console == []
    rows = _Rows()
    rows.feed(page.dom)
    assert rows.rows == EXPECTED
    assert "<title>Run report: report &lt;demo&gt;</title>" in page.dom
    shot = screenshot(report, tmp_path / "profile", "html_report.png")
    assert shot.stat().st_size > 10_000


def test_timeline_has_a_lane_per_worker_thread(report: Path, tmp_path: Path) -> None:
    rows = _Rows()
    rows.feed(load(report, tmp_path / "profile").dom)
    parts = {task: worker for task, worker in rows.bars if task.startswith("Part")}
    assert len(parts) == 8
    assert len(set(parts.values())) == 8  # the barrier made them run on eight threads at once
    assert {task for task, _ in rows.bars} == {n for n, s in EXPECTED.items() if s not in ("upstream_failed",)}


def test_script_in_an_error_is_shown_as_text(report: Path, tmp_path: Path) -> None:
    page = load(report, tmp_path / "profile")
    rows = _Rows()
    rows.feed(page.dom)
    assert "script" not in rows.tags and "b" not in rows.tags
    assert f"RuntimeError: {SCRIPT_ERROR}" in "".join(rows.error_text)
    assert "pwned" not in page.dom.split("<body")[0]  # the title was not changed by the text
    assert page.console == []


def test_secrets_never_appear(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert SECRET not in text
    assert "token *** was refused" in text


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert "default-src 'none'" in text
    for needle in ("http://", "https://", "<script", "<link", "@import", "src="):
        assert needle not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_render_escapes_names_everywhere() -> None:
    pipeline = Pipeline("p")

    def odd() -> None:
        pass

    pipeline.register(name="<img src=x onerror=alert(1)>")(odd)
    executor = PipelineExecutor(pipeline, reporters=[])
    result = executor.run()
    page = render_run_report(result, {"<img src=x onerror=alert(1)>": ()})
    assert "<img" not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 3  # graph, timeline, table
    assert result.tasks["<img src=x onerror=alert(1)>"].state is TaskState.SUCCESS


PIPELINE_FILE = """
from pathlib import Path
from task_engine_core import Pipeline
pipeline = Pipeline("marker")

@pipeline.register
def Touch():
    Path({marker!r}).write_text("ran")
"""


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--report",
            "missing-dir/run.html",
            "error: cannot write the HTML run report to 'missing-dir/run.html': directory 'missing-dir' does not exist; "
            "choose a writable path\n",
        ),
        ("--json", ".", "error: cannot write the JSON run summary to '.': it is a directory; choose a writable path\n"),
        (
            "--trace",
            "missing-dir/t.jsonl",
            "error: cannot write the trace file to 'missing-dir/t.jsonl': directory 'missing-dir' does not exist; "
            "choose a writable path\n",
        ),
    ],
)
def test_unwritable_output_stops_the_run_before_any_task(tmp_path: Path, option: str, value: str, message: str) -> None:
    marker = tmp_path / "ran.txt"
    target = tmp_path / "pipeline_marker.py"
    target.write_text(PIPELINE_FILE.format(marker=str(marker)))
    done = subprocess.run(
        [sys.executable, "-m", "task_engine_core", "run", str(target), option, value],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert (done.returncode, done.stderr) == (2, message)
    assert not marker.exists()


def test_cli_report_option_writes_the_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "task_engine_core",
            "run",
            "examples.jobs",
            "--workers",
            "2",
            "--report",
            str(tmp_path / "r.html"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    rows = _Rows()
    rows.feed((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert rows.rows == {"Job2Task1": "success", "Job2Task2": "success", "Job1Task1": "success", "Job1Task2": "success"}


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_context_secrets_are_masked_everywhere_in_the_report(tmp_path: Path) -> None:
    from task_engine_core import Secret
    from task_engine_core.reporters import JsonRunSummary

    token = "tok-9f8e7d6c5b4a"
    context = {"api": {"token": Secret(token), "url": "https://example.invalid/<script>alert(1)</script>"}}
    pipeline = Pipeline("secrets")

    @pipeline.register
    @skippable
    def Call(context) -> None:
        raise PermissionError(f"token {context['api']['token'].reveal()} was refused")

    report, summary = tmp_path / "run.html", tmp_path / "run.json"
    PipelineExecutor(
        pipeline, context=context, reporters=[HtmlRunReport(report, context=context), JsonRunSummary(summary)]
    ).run()
    page = report.read_text(encoding="utf-8")
    assert token not in page and token not in summary.read_text(encoding="utf-8")
    assert "PermissionError: token *** was refused" in page
    assert "<tr><td>api.token</td><td>***</td></tr>" in page
    assert "<td>https://example.invalid/&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page
    loaded = load(report, tmp_path / "profile")
    assert loaded.console == [] and "<script>alert" not in loaded.dom
