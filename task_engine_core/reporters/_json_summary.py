"""JsonRunSummary: the run written as one JSON document for machines (`run --json PATH`)."""

from __future__ import annotations

import json
import os

from .._result import RunResult
from ._output import Redactor, check_writable, redactor, write_file
from ._record import RunRecorder, summary_dict

__all__ = ["JsonRunSummary"]


class JsonRunSummary(RunRecorder):
    """Writes `path` when a run finishes; the path is checked when the reporter is made."""

    def __init__(self, path: str | os.PathLike[str], *, redact: Redactor | None = None) -> None:
        super().__init__()
        self.path = check_writable(path, "JSON run summary")
        self.redact: Redactor = redactor(redact)

    def write(self, result: RunResult) -> None:
        """Write the summary of `result` (format documented in the README)."""
        data = summary_dict(result, self.upstream, self.history, self.redact)
        write_file(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
