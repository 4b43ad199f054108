"""JsonRunSummary and the `--json PATH` option: the run as one JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from task_engine_core import Backoff, Pipeline, PipelineExecutor, retries, skippable
from task_engine_core.errors import OutputPathError
from task_engine_core.reporters import JsonRunSummary, check_writable, mask_values

ROOT = Path(__file__).resolve().parent.parent


def test_summary_holds_states_attempts_retries_and_errors(tmp_path: Path) -> None:
    pipeline = Pipeline("summary")

    @pipeline.register
    def Extract() -> None:
        pass

    @pipeline.register(depends_on=Extract)
    @skippable
    @retries(2, backoff=Backoff.constant(0))
    def Flaky() -> None:
        raise ValueError("password hunter2 rejected")

    @pipeline.register(depends_on=Flaky)
    def Load() -> None:
        pass

    path = tmp_path / "summary.json"
    result = PipelineExecutor(pipeline, reporters=[JsonRunSummary(path, redact=mask_values(["hunter2"]))]).run()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert {
        k: data[k] for k in ("format", "run_id", "pipeline", "workers", "succeeded", "interrupted", "trace_id")
    } == {
        "format": "task-engine-run-summary/1",
        "run_id": result.run_id,
        "pipeline": "summary",
        "workers": 1,
        "succeeded": True,
        "interrupted": None,
        "trace_id": None,
    }
    assert data["counts"] == {"success": 2, "skipped": 1}
    assert [t["name"] for t in data["tasks"]] == ["Extract", "Flaky", "Load"]
    flaky = data["tasks"][1]
    assert {k: flaky[k] for k in ("state", "attempts", "upstream", "error", "reason", "worker")} == {
        "state": "skipped",
        "attempts": 2,
        "upstream": ["Extract"],
        "error": {"type": "ValueError", "message": "password *** rejected"},
        "reason": "no attempts left",
        "worker": "MainThread",
    }
    assert flaky["attempt_errors"] == [
        {"attempt": 1, "type": "ValueError", "message": "password *** rejected"},
        {"attempt": 2, "type": "ValueError", "message": "password *** rejected"},
    ]
    assert flaky["retries"] == [{"next_attempt": 2, "max_attempts": 2, "delay": 0.0}]
    assert [w["reason"] for w in flaky["wait_events"]] == ["retry"]
    assert "hunter2" not in path.read_text(encoding="utf-8")
    assert data["critical_path"][0] == "Extract" and data["critical_path"][-1] == "Load"


def test_cli_json_option(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    done = subprocess.run(
        [sys.executable, "-m", "task_engine_core", "run", "examples.tasks", "--json", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TASK_ENGINE_EXAMPLE_SEED": "9"},
    )
    assert done.returncode == 1  # the seed's Run 2: Task1 fails with 401
    data = json.loads(path.read_text(encoding="utf-8"))
    assert {t["name"]: t["state"] for t in data["tasks"]} == {
        "BaseTask": "success",
        "Task1": "failed",
        "AlwaysFailsTask": "upstream_failed",
        "Task2": "upstream_failed",
    }
    assert data["tasks"][1]["error"] == {"type": "Exception", "message": "Error 401"}
    assert data["succeeded"] is False


def test_check_writable_messages(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cases = {
        str(tmp_path): "it is a directory",
        str(tmp_path / "no" / "r.html"): f"directory {str(tmp_path / 'no')!r} does not exist",
        str(tmp_path / "file" / "r.html"): f"{str(tmp_path / 'file')!r} is not a directory",
    }
    for path, problem in cases.items():
        with pytest.raises(OutputPathError) as caught:
            check_writable(path, "HTML run report")
        assert str(caught.value) == f"cannot write the HTML run report to {path!r}: {problem}; choose a writable path"
    assert check_writable(tmp_path / "new.html", "HTML run report") == tmp_path / "new.html"
    assert check_writable("relative.html", "HTML run report") == Path("relative.html")
