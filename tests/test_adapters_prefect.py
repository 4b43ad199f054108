"""task_engine.prefect without Prefect installed: a clear error naming the extra.

The adapter itself is tested against real Prefect in tests/prefect/ (its own virtualenv).
"""

from __future__ import annotations

import importlib
import sys

import pytest

from task_engine_core import TaskEngineError
from task_engine_core.errors import MissingExtraError


def test_importing_the_adapter_without_prefect_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prefect", None)  # `import prefect` now raises ImportError
    monkeypatch.delitem(sys.modules, "task_engine.prefect", raising=False)
    with pytest.raises(MissingExtraError) as caught:
        importlib.import_module("task_engine.prefect")
    assert isinstance(caught.value, TaskEngineError)
    assert isinstance(caught.value, ImportError)
    assert caught.value.extra == "prefect"
    assert str(caught.value) == (
        "task_engine.prefect (running pipelines on Prefect) needs the 'prefect' package, which is not "
        "installed; install it with: pip install 'task-engine[prefect]'"
    )
    assert "task_engine.prefect" not in sys.modules
