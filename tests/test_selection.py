"""Selecting part of a pipeline: Pipeline.select, @register(tags=...), PipelineExecutor(select=...)."""

from __future__ import annotations

import pytest

from task_engine_core import Pipeline, PipelineExecutor, TaskState
from task_engine_core.errors import EmptySelectionError, InvalidArgumentError, UnknownSelectionError


def etl() -> tuple[Pipeline, list[str]]:
    """extract -> clean -> load -> report, plus an independent audit; `ran` lists what ran."""
    ran: list[str] = []
    pipeline = Pipeline("etl")

    @pipeline.register(tags="ingest")
    def extract():
        ran.append("extract")

    @pipeline.register(depends_on=extract, tags=["ingest", "nightly"])
    def clean():
        ran.append("clean")

    @pipeline.register(depends_on=clean, tags="nightly")
    def load():
        ran.append("load")

    @pipeline.register(depends_on=load)
    def report():
        ran.append("report")

    @pipeline.register(tags="audit")
    def audit_logs():
        ran.append("audit_logs")

    return pipeline, ran


def run(pipeline: Pipeline, workers: int = 1, **select) -> tuple[dict[str, TaskState], set[str], list[str]]:
    executor = PipelineExecutor(pipeline, workers=workers, reporters=[], stats=False, select=select or None)
    result = executor.run()
    excluded = {name for name, task in result.tasks.items() if task.excluded}
    return result.states(), excluded, list(result.tasks)


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ({"only": ["clean", "report"]}, ["clean", "report"]),
        ({"only": "load"}, ["load"]),
        ({"from_": "load"}, ["load", "report"]),
        ({"from_tasks": ["clean"]}, ["clean", "load", "report"]),
        ({"to": "clean"}, ["extract", "clean"]),
        ({"tags": "nightly"}, ["clean", "load"]),
        ({"tags": ["audit", "ingest"]}, ["extract", "clean", "audit_logs"]),
        ({"only": "load", "with_upstream": True}, ["extract", "clean", "load"]),
        ({"only": "*l*"}, ["clean", "load", "audit_logs"]),
        ({"only": "audit_*"}, ["audit_logs"]),
        ({"tags": "night*"}, ["clean", "load"]),
        # Criteria intersect: downstream of clean AND tagged nightly.
        ({"from_": "clean", "tags": "nightly"}, ["clean", "load"]),
        ({"from_": "extract", "to": "load"}, ["extract", "clean", "load"]),
    ],
)
def test_selection_runs_exactly_the_selected_tasks(select: dict, expected: list[str]) -> None:
    pipeline, ran = etl()
    states, excluded, _ = run(pipeline, **select)
    assert ran == expected
    assert excluded == set(states) - set(expected)
    for name, state in states.items():
        assert state is (TaskState.SUCCESS if name in expected else TaskState.NOT_RUN), name


def test_left_out_upstream_counts_as_succeeded_and_the_run_succeeds() -> None:
    pipeline, ran = etl()
    executor = PipelineExecutor(pipeline, reporters=[], stats=False, select={"only": "report"})
    result = executor.run()
    assert ran == ["report"]
    assert result.succeeded
    assert result.selection == "--only report"
    assert result.tasks["load"].reason == "not selected (--only report)"
    assert result.tasks["load"].attempts == 0


def test_selection_on_threads_gives_the_same_states() -> None:
    pipeline, _ = etl()
    one = run(pipeline, workers=1, from_="clean")
    pipeline, _ = etl()
    assert run(pipeline, workers=4, from_="clean") == one


def test_a_failure_among_the_selected_tasks_still_blocks_its_dependents() -> None:
    pipeline = Pipeline("breaks")

    @pipeline.register
    def first():
        pass

    @pipeline.register(depends_on=first)
    def broken():
        raise RuntimeError("broken on purpose")

    @pipeline.register(depends_on=broken)
    def after():
        pass

    executor = PipelineExecutor(pipeline, reporters=[], stats=False, select={"from_": "broken"})
    with pytest.raises(RuntimeError, match="broken on purpose"):
        executor.run()
    assert executor.result is not None
    assert executor.result.states() == {
        "first": TaskState.NOT_RUN,
        "broken": TaskState.FAILED,
        "after": TaskState.UPSTREAM_FAILED,
    }
    assert [name for name, task in executor.result.tasks.items() if task.excluded] == ["first"]
    assert not executor.result.succeeded


def test_select_returns_a_new_pipeline_and_leaves_the_original_whole() -> None:
    pipeline, ran = etl()
    part = pipeline.select(only="load")
    assert part is not pipeline and part.name == pipeline.name
    assert part.selection == "--only load" and pipeline.selection == ""
    assert part.validate().excluded == {"extract", "clean", "report", "audit_logs"}
    assert pipeline.validate().excluded == frozenset()
    PipelineExecutor(pipeline, reporters=[], stats=False).run()
    assert ran == ["extract", "clean", "load", "report", "audit_logs"]


def test_selecting_from_a_selection_narrows_it() -> None:
    pipeline, ran = etl()
    part = pipeline.select(tags="nightly").select(only="load")
    assert part.selection == "--tags nightly --only load"
    PipelineExecutor(part, reporters=[], stats=False).run()
    assert ran == ["load"]
    with pytest.raises(EmptySelectionError):
        pipeline.select(tags="nightly").select(only="report")


def test_a_selection_cannot_gain_tasks() -> None:
    pipeline, _ = etl()
    part = pipeline.select(only="load")
    with pytest.raises(InvalidArgumentError) as raised:
        part.register(lambda: None, name="late")
    assert str(raised.value) == (
        "pipeline 'etl' here is a selection (--only load) and cannot gain tasks; "
        "register 'late' into the pipeline it was selected from"
    )


def test_unknown_task_name_suggests_the_closest() -> None:
    pipeline, ran = etl()
    with pytest.raises(UnknownSelectionError) as raised:
        pipeline.select(only="laod")
    assert str(raised.value) == "--only 'laod': pipeline 'etl' has no task matching it; did you mean 'load'?"
    assert raised.value.suggestions == ("load",)
    with pytest.raises(
        UnknownSelectionError,
        match=r"^--from 'nothing\*': pipeline 'etl' has no task matching it; its tasks: extract, clean",
    ):
        pipeline.select(from_="nothing*")
    assert ran == []


def test_unknown_tag_suggests_the_closest_and_lists_the_tags() -> None:
    pipeline, _ = etl()
    with pytest.raises(UnknownSelectionError) as raised:
        pipeline.select(tags="nighty")
    assert str(raised.value) == "--tags 'nighty': pipeline 'etl' has no tag matching it; did you mean 'nightly'?"
    with pytest.raises(UnknownSelectionError) as raised:
        pipeline.select(tags="zzz")
    assert str(raised.value) == "--tags 'zzz': pipeline 'etl' has no tag matching it; its tags: audit, ingest, nightly"
    untagged = Pipeline("plain")
    untagged.register(lambda: None, name="only_task")
    with pytest.raises(UnknownSelectionError, match="no task of it has tags; add them with @register"):
        untagged.select(tags="nightly")


def test_criteria_that_leave_nothing_are_an_error() -> None:
    pipeline, _ = etl()
    with pytest.raises(EmptySelectionError) as raised:
        pipeline.select(only="extract", from_="load")
    assert str(raised.value).startswith(
        "--only extract --from load selects no task of pipeline 'etl': the criteria must all hold (they intersect)"
    )


def test_executor_select_errors_come_before_any_task() -> None:
    pipeline, ran = etl()
    executor = PipelineExecutor(pipeline, reporters=[], stats=False, select={"only": ["extract", "lod"]})
    with pytest.raises(UnknownSelectionError, match="did you mean 'load'"):
        executor.run()
    assert ran == [] and executor.result is None


@pytest.mark.parametrize(
    ("select", "message"),
    [
        (["load"], "select=['load']: pass a mapping of Pipeline.select options"),
        (
            {"onyl": "load"},
            "select= got unknown option(s) 'onyl'; the options are 'only', 'from_', 'to', 'tags', 'with_upstream'",
        ),
    ],
)
def test_bad_select_argument(select: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        PipelineExecutor(Pipeline("x"), select=select)  # type: ignore[arg-type]
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("tags", [3, [""], ["ok", None]])
def test_bad_tags_are_rejected_at_registration(tags: object) -> None:
    pipeline = Pipeline("tags")
    with pytest.raises(InvalidArgumentError, match=r"@register\(tags=\.\.\.\)"):
        pipeline.register(tags=tags)(lambda: None)  # type: ignore[arg-type]


def test_from_and_from_tasks_together_are_refused() -> None:
    pipeline, _ = etl()
    with pytest.raises(InvalidArgumentError, match="both from_= and from_tasks="):
        pipeline.select(from_="load", from_tasks="clean")


def test_backend_options_map_onto_the_executor_options() -> None:
    from task_engine_core._selection import parse_backend_options

    assert parse_backend_options(None, "conf") == (None, False)
    assert parse_backend_options(
        {"only": "a, b", "from": ["c"], "to": "d", "tags": ["t"], "with_upstream": True, "resume": " abc "}, "conf"
    ) == ({"only": ("a", "b"), "from_": ("c",), "to": ("d",), "tags": ("t",), "with_upstream": True}, "abc")
    assert parse_backend_options({"resume": True}, "conf") == (None, True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"onyl": ["a"]},
            "conf has unknown key(s) 'onyl' (did you mean 'only'?); the keys are only, from, to, tags, with_upstream, resume",
        ),
        (["a"], 'conf must be an object such as {"only": ["Extract"]}, not [\'a\']'),
        ({"with_upstream": "yes"}, "conf['with_upstream'] must be true or false, not 'yes'"),
        ({"resume": 7}, "conf['resume'] must be true (the latest run) or a run id, not 7"),
        ({"only": [1]}, "conf['only'] got 1; give non-empty names"),
    ],
)
def test_bad_backend_options(options: object, message: str) -> None:
    from task_engine_core._selection import parse_backend_options

    with pytest.raises(InvalidArgumentError) as raised:
        parse_backend_options(options, "conf")
    assert str(raised.value) == message
