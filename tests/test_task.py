"""Task, FunctionTask and TaskState."""

from __future__ import annotations

import pytest

from task_engine_core import Task, TaskState
from task_engine_core._task import FunctionTask


def test_default_retry_handler_does_not_retry():
    class T(Task):
        def perform_task(self):
            pass

    assert T().retry_handler(RuntimeError("x")) is False


def test_base_perform_task_explains_itself():
    with pytest.raises(TypeError, match=r"^Task does not override perform_task\(\)$"):
        Task().perform_task()


def test_function_task_passes_context_only_when_asked():
    got = []

    def plain():
        got.append("plain")

    def with_context(context):
        got.append(context["k"])

    def with_kwargs(**kwargs):
        got.append(kwargs["context"]["k"])

    for fn in (plain, with_context, with_kwargs):
        task = FunctionTask(fn)
        task.context = {"k": "v"}
        task.perform_task()
    assert got == ["plain", "v", "v"]
    assert FunctionTask(plain).retry_handler(ValueError()) is True
    assert repr(FunctionTask(plain)) == "<FunctionTask plain>"


def test_states():
    assert [s.value for s in TaskState] == ["success", "failed", "skipped", "upstream_failed", "not_run"]
    assert TaskState.SUCCESS.is_done_ok and TaskState.SKIPPED.is_done_ok and not TaskState.FAILED.is_done_ok
