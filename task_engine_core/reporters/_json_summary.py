"""The JSON run summary: its format (`summary_dict`, version 1) and the reporter that writes it (`run --json PATH`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._result import RunResult, TaskResult
from .._secrets import error_text
from ._output import Redactor, check_writable, redactor, write_file
from ._record import FileReporter, TaskHistory
from ._run_view import run_critical_path, shown_output

__all__ = ["JsonRunSummary", "summary_dict"]


class JsonRunSummary(FileReporter):
    """Writes `path` when a run finishes; the path is checked when the reporter is made."""

    def __init__(self, path: str | os.PathLike[str], *, redact: Redactor | None = None) -> None:
        super().__init__()
        self.path = check_writable(path, "JSON run summary")
        self.redact: Redactor = redactor(redact)

    def write(self, result: RunResult) -> None:
        """Write the summary of `result` (format documented in the README)."""
        data = summary_dict(result, self.upstream, self.history, self.redact)
        write_file(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _error(error: BaseException | None, redact: Redactor) -> dict[str, str] | None:
    if error is None:
        return None
    return {"type": type(error).__name__, "message": redact(error_text(error))}


def _task_dict(task: TaskResult, upstream: Sequence[str], history: TaskHistory, redact: Redactor) -> dict[str, Any]:
    return {
        "name": task.name,
        "state": task.state.value,
        "attempts": task.attempts,
        "start": task.start.isoformat() if task.start else None,
        "end": task.end.isoformat() if task.end else None,
        "duration": task.duration,
        "worker": task.worker or None,
        "upstream": list(upstream),
        "error": _error(task.error, redact),
        "reason": redact(task.reason),
        "output": shown_output(task, redact),
        "waits": dict(task.waits),
        "excluded": task.excluded,
        "resumed_from": task.resumed_from,
        "attempt_errors": [
            {"attempt": attempt, **(_error(error, redact) or {})} for attempt, error in history.attempt_errors
        ],
        "retries": [
            {"next_attempt": r.next_attempt, "max_attempts": r.max_attempts, "delay": r.delay} for r in history.retries
        ],
        "wait_events": [
            {"reason": w.reason, "key": redact(w.key), "seconds": w.seconds, "ok": w.ok} for w in history.waits
        ],
    }


def summary_dict(
    result: RunResult,
    upstream: Mapping[str, Sequence[str]],
    history: Mapping[str, TaskHistory],
    redact: Redactor | None = None,
) -> dict[str, Any]:
    """The run as plain JSON-ready data (the `--json` format, version 1); known secrets are masked."""
    redact = redactor(redact)
    counts = {state.value: n for state, n in result.counts().items()}
    return {
        "format": "task-engine-run-summary/1",
        "run_id": result.run_id,
        "pipeline": result.pipeline,
        "start": result.start.isoformat() if result.start else None,
        "end": result.end.isoformat() if result.end else None,
        "duration": result.duration,
        "workers": result.workers,
        "succeeded": result.succeeded,
        "interrupted": result.interrupted,
        "trace_id": result.trace_id,
        "resumed_from": result.resumed_from,
        "selection": result.selection,
        "counts": counts,
        "critical_path": run_critical_path(result, upstream),
        "tasks": [
            _task_dict(task, upstream.get(name, ()), history.get(name, TaskHistory()), redact)
            for name, task in result.tasks.items()
        ],
    }
