"""register_reporter: reporters every run delivers events to; a reporter that raises never breaks a run."""

from __future__ import annotations

import logging

import pytest

from task_engine_core import Pipeline, PipelineExecutor, TaskState
from task_engine_core.errors import InvalidArgumentError
from task_engine_core.events import Event, RunFinished, TaskFinished
from task_engine_core.reporters import Reporter, register_reporter, registered_reporters


def small_pipeline() -> Pipeline:
    pipeline = Pipeline("registry")

    @pipeline.register
    def First() -> None:
        pass

    @pipeline.register(depends_on=First)
    def Second() -> None:
        pass

    return pipeline


class Recorder(Reporter):
    """Keeps the name of every event it gets."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, event: Event) -> None:
        name = type(event).__name__
        self.seen.append(f"{name} {event.task}" if isinstance(event, TaskFinished) else name)


def test_registered_reporter_gets_every_run_until_unregistered() -> None:
    recorder = Recorder()
    unregister = register_reporter(recorder)
    try:
        assert recorder in registered_reporters()
        PipelineExecutor(small_pipeline(), reporters=[]).run()
    finally:
        unregister()
    assert recorder.seen == [
        "RunStarted",
        "TaskStarted",
        "AttemptStarted",
        "TaskFinished First",
        "TaskStarted",
        "AttemptStarted",
        "TaskFinished Second",
        "RunFinished",
    ]
    assert recorder not in registered_reporters()
    PipelineExecutor(small_pipeline(), reporters=[]).run()
    assert len(recorder.seen) == 8
    unregister()  # a second call is harmless


class Exploding(Reporter):
    """Raises on every event."""

    def __call__(self, event: Event) -> None:
        raise RuntimeError(f"reporter broke on {type(event).__name__}")


def test_a_reporter_that_raises_is_logged_and_the_run_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    unregister = register_reporter(Exploding())
    try:
        with caplog.at_level(logging.ERROR, logger="task_engine"):
            result = PipelineExecutor(small_pipeline(), workers=2, reporters=[], listeners=[recorder]).run()
    finally:
        unregister()
    assert result.states() == {"First": TaskState.SUCCESS, "Second": TaskState.SUCCESS}
    assert recorder.seen[-1] == "RunFinished"  # reporters after the broken one still got everything
    failures = [r for r in caplog.records if "the run goes on" in r.getMessage()]
    assert len(failures) == 8
    assert failures[0].exc_info is not None and str(failures[0].exc_info[1]) == "reporter broke on RunStarted"


def test_a_raising_report_writer_does_not_break_the_run(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    from task_engine_core.reporters import JsonRunSummary

    summary = JsonRunSummary(tmp_path / "s.json")
    (tmp_path / "s.json").mkdir()  # make the final write fail after the up-front check passed
    with caplog.at_level(logging.ERROR, logger="task_engine"):
        result = PipelineExecutor(small_pipeline(), reporters=[summary]).run()
    assert result.succeeded
    assert any(isinstance(r.msg, str) and "RunFinished" in r.getMessage() for r in caplog.records)


def test_only_callables_can_be_registered() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        register_reporter("progress")  # type: ignore[arg-type]
    assert str(caught.value) == (
        "register_reporter got 'progress', which is not callable; pass a Reporter instance or a function taking one event"
    )


def test_plain_functions_are_reporters_too() -> None:
    finished: list[RunFinished] = []
    unregister = register_reporter(lambda event: finished.append(event) if isinstance(event, RunFinished) else None)
    try:
        PipelineExecutor(small_pipeline(), reporters=[]).run()
    finally:
        unregister()
    assert [e.result.pipeline for e in finished] == ["registry"]
