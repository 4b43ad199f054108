"""Outputs between tasks: TaskResult.output, self.inputs, function parameters named after upstreams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from task_engine_core import Pipeline, PipelineExecutor, Secret, Task, TaskEngineError, TaskState, skippable, timeout
from task_engine_core._dataflow import TaskInputs, output_text
from task_engine_core.errors import DefinitionError, InputParameterError, UnknownInputError
from task_engine_core.reporters import HtmlRunReport, JsonRunSummary


def run(pipeline: Pipeline, **options):
    return PipelineExecutor(pipeline, reporters=[], stats=False, **options).run()


def test_outputs_reach_tasks_and_functions_and_the_result():
    pipeline = Pipeline("outputs")

    @pipeline.register
    class Extract(Task):
        def perform_task(self):
            return [3, 1, 2]

    @pipeline.register(depends_on=Extract)
    def ordered(Extract):
        return sorted(Extract)

    @pipeline.register(depends_on=[Extract, ordered])
    class Check(Task):
        def perform_task(self):
            return {"same": sorted(self.inputs["Extract"]) == self.inputs["ordered"], "inputs": list(self.inputs)}

    result = run(pipeline)
    assert {name: r.output for name, r in result.tasks.items()} == {
        "Extract": [3, 1, 2],
        "ordered": [1, 2, 3],
        "Check": {"same": True, "inputs": ["Extract", "ordered"]},
    }


def test_none_output_skipped_upstream_and_defaults():
    pipeline = Pipeline("defaults")

    @pipeline.register
    def nothing():
        pass

    @pipeline.register
    def broken():
        from task_engine_core import SkipTask

        raise SkipTask("not today")

    @pipeline.register(depends_on=[nothing, broken])
    def consumer(nothing, broken, limit=5, context=None):
        return (nothing, broken, limit, context is not None)

    result = run(pipeline)
    assert result.tasks["broken"].state is TaskState.SKIPPED
    # A skipped upstream and one that returned None both read as None; a default stays a default.
    assert result.tasks["consumer"].output == (None, None, 5, True)


def test_var_keyword_function_receives_every_upstream_output_and_the_context():
    pipeline = Pipeline("kwargs")

    @pipeline.register
    def a():
        return 1

    @pipeline.register
    def b():
        return 2

    @pipeline.register(depends_on=[a, b])
    def everything(**kwargs):
        return sorted(kwargs)

    assert run(pipeline).tasks["everything"].output == ["a", "b", "context"]


def test_output_of_a_task_with_a_timeout_is_kept():
    pipeline = Pipeline("timeout")

    @pipeline.register
    @timeout(5)
    def slow_enough():
        return "done"

    assert run(pipeline).tasks["slow_enough"].output == "done"


def test_a_parameter_naming_no_upstream_is_a_definition_error_before_anything_runs():
    pipeline = Pipeline("typo")
    ran = []

    @pipeline.register
    def extract():
        ran.append("extract")
        return 1

    @pipeline.register(depends_on=extract)
    def transform(extarct):
        return extarct

    with pytest.raises(InputParameterError) as caught:
        run(pipeline)
    assert isinstance(caught.value, DefinitionError)
    assert str(caught.value) == (
        "task 'transform': parameter 'extarct' names no upstream task (did you mean 'extract'?); its upstream "
        "tasks are: 'extract'; name a parameter after an upstream task (or `context`), give it a default, or add "
        "the dependency"
    )
    assert ran == []


def test_the_seed_error_def_transform_extract_without_the_dependency():
    pipeline = Pipeline("no_dependency")

    @pipeline.register
    def extract():
        return 1

    @pipeline.register
    def transform(extract):
        return extract

    with pytest.raises(
        InputParameterError, match="parameter 'extract' names no upstream task; its upstream tasks are: none"
    ):
        pipeline.validate()


def test_positional_only_parameter_is_a_definition_error():
    pipeline = Pipeline("positional")

    @pipeline.register
    def extract():
        return 1

    def transform(extract, /):
        return extract

    pipeline.register(depends_on=extract)(transform)
    with pytest.raises(InputParameterError, match="parameter 'extract' is positional-only"):
        pipeline.validate()


def test_reading_an_input_that_is_no_upstream_names_the_task_and_its_upstreams():
    pipeline = Pipeline("unknown_input")

    @pipeline.register
    def extract():
        return 1

    @pipeline.register(depends_on=extract)
    class Load(Task):
        def perform_task(self):
            return self.inputs["Extract"]

    with pytest.raises(UnknownInputError) as caught:
        run(pipeline)
    assert isinstance(caught.value, (TaskEngineError, KeyError))
    assert str(caught.value) == (
        "task 'Load' has no input 'Extract': inputs are the outputs of its upstream tasks ('extract'); "
        "add 'Extract' to depends_on= or fix the name"
    )


def test_inputs_are_read_only_and_their_repr_shows_no_values():
    inputs = TaskInputs("Load", ("Extract",), {"Extract": "hunter2-token"})
    with pytest.raises(TypeError):
        inputs["Extract"] = 1  # type: ignore[index]
    assert dict(inputs) == {"Extract": "hunter2-token"}
    assert repr(inputs) == "<inputs of 'Load': Extract>"
    assert Task.inputs == {}


def test_output_text_is_short_and_masks_secrets_before_shortening():
    secret = Secret("s3cr3t-value-that-is-long-enough-to-be-cut-by-the-repr-limits-0123456789")
    text = output_text({"token": secret.reveal(), "obj": secret, "rows": list(range(100))})
    assert "s3cr3t" not in text and "0123456789" not in text
    assert text.startswith("{'token': '***', 'obj': ***, 'rows': [0, 1, 2, 3, 4, 5, 6, 7, ...]}")
    assert output_text(None) is None
    assert len(output_text("x" * 10_000)) <= 200


def test_reports_show_a_short_masked_output(tmp_path: Path):
    pipeline = Pipeline("report_outputs")
    token = Secret("tok-9f8e7d6c")

    @pipeline.register
    def login():
        return {"user": "ana", "token": token.reveal()}

    @pipeline.register(depends_on=login)
    def quiet(login):
        pass

    json_path, html_path = tmp_path / "run.json", tmp_path / "run.html"
    PipelineExecutor(pipeline, reporters=[JsonRunSummary(json_path), HtmlRunReport(html_path)], stats=False).run()
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert {t["name"]: t["output"] for t in data["tasks"]} == {
        "login": "{'user': 'ana', 'token': '***'}",
        "quiet": None,
    }
    html = html_path.read_text(encoding="utf-8")
    assert "tok-9f8e7d6c" not in html and "tok-9f8e7d6c" not in json_path.read_text(encoding="utf-8")
    assert '<td class="out">{&#x27;user&#x27;: &#x27;ana&#x27;, &#x27;token&#x27;: &#x27;***&#x27;}</td>' in html


def test_outputs_on_threads_match_sequential():
    def build() -> Pipeline:
        pipeline = Pipeline("threads")

        @pipeline.register
        def source():
            return 10

        previous = source
        for i in range(20):
            # Each step reads the one before it through a parameter named after it.
            parent = f"step{i - 1}" if i else "source"
            code = f"def step{i}({parent}):\n    return {parent} + {i}\n"
            namespace: dict = {}
            exec(code, namespace)
            previous = pipeline.register(depends_on=previous)(namespace[f"step{i}"])
        return pipeline

    sequential = run(build()).tasks["step19"].output
    threaded = run(build(), workers=4).tasks["step19"].output
    assert sequential == threaded == 10 + sum(range(20))


def resumable(broken: dict) -> Pipeline:
    """extract -> load(extract) -> Publish (reads nothing); load fails while broken["load"]."""
    pipeline = Pipeline("resume_outputs")

    @pipeline.register
    def extract():
        return [1, 2, 3]

    @pipeline.register(depends_on=extract)
    def load(extract):
        if broken["load"]:
            raise ConnectionError("warehouse down")
        return sum(extract)

    @pipeline.register(depends_on=load)
    class Publish(Task):
        def perform_task(self):
            return "published"

    return pipeline


def test_a_resume_that_would_hand_a_task_a_kept_output_is_refused_naming_both_tasks(tmp_path):
    broken = {"load": True}
    pipeline = resumable(broken)
    stats = tmp_path / "stats.sqlite3"
    first = PipelineExecutor(pipeline, reporters=[], stats=stats)
    with pytest.raises(ConnectionError):
        first.run()
    broken["load"] = False
    with pytest.raises(TaskEngineError) as refused:
        PipelineExecutor(pipeline, reporters=[], stats=stats, resume=True).run()
    assert str(refused.value) == (
        f"task 'load' reads the output of 'extract', which this run does not have: 'extract' was kept from run "
        f"{first.result.run_id} by --resume, and outputs are not kept between runs\n"
        f"run 'extract' again too: start a run that does not resume"
    )
    # Refused before anything ran: a run without resume then does all of it.
    result = PipelineExecutor(pipeline, reporters=[], stats=stats).run()
    assert result.tasks["load"].output == 6


def test_a_resume_keeps_tasks_whose_outputs_nobody_that_runs_again_reads(tmp_path):
    broken = {"load": False}
    pipeline = resumable(broken)
    stats = tmp_path / "stats.sqlite3"

    @pipeline.register(depends_on="Publish")
    def announce(Publish):
        if broken.get("announce", True):
            broken["announce"] = False
            raise RuntimeError("mail server down")
        return f"announced {Publish}"

    with pytest.raises(RuntimeError):
        PipelineExecutor(pipeline, reporters=[], stats=stats).run()
    with pytest.raises(TaskEngineError, match="task 'announce' reads the output of 'Publish'"):
        PipelineExecutor(pipeline, reporters=[], stats=stats, resume=True).run()


def test_a_task_subclass_reading_a_kept_output_fails_with_the_same_message(tmp_path):
    pipeline = Pipeline("resume_task_reads")
    fail = {"Report": True}

    @pipeline.register
    def source():
        return "rows"

    @pipeline.register(depends_on=source)
    class Report(Task):
        def perform_task(self):
            if fail["Report"]:
                raise RuntimeError("first run fails")
            return self.inputs["source"]

    @pipeline.register(depends_on=source)
    class Count(Task):
        def perform_task(self):
            if fail["Report"]:
                raise RuntimeError("first run fails")
            return 1  # reads nothing: resuming it is fine

    stats = tmp_path / "stats.sqlite3"
    with pytest.raises(RuntimeError):
        PipelineExecutor(pipeline, reporters=[], stats=stats, keep_going=True).run()
    fail["Report"] = False
    executor = PipelineExecutor(
        pipeline, reporters=[], stats=stats, resume=True, keep_going=True, raise_on_failure=False
    )
    result = executor.run()
    assert result.tasks["source"].resumed_from is not None
    assert result.tasks["Count"].state is TaskState.SUCCESS
    report = result.tasks["Report"]
    assert report.state is TaskState.FAILED
    assert str(report.error).startswith("task 'Report' reads the output of 'source', which this run does not have")


def test_a_selection_that_leaves_out_a_task_whose_output_is_read_is_refused():
    pipeline = resumable({"load": False})
    with pytest.raises(TaskEngineError) as refused:
        run(pipeline, select={"only": "load"})
    assert str(refused.value) == (
        "task 'load' reads the output of 'extract', which this run does not have: 'extract' is left out by the "
        "selection (--only load), and outputs are not kept between runs\n"
        "select 'extract' too: add --with-upstream, or name it"
    )
    result = run(pipeline, select={"only": "load", "with_upstream": True})
    assert result.tasks["load"].output == 6
    assert result.tasks["Publish"].excluded


def test_a_kept_skip_had_no_output_so_its_downstream_resumes_reading_none(tmp_path):
    pipeline = Pipeline("resume_after_skip")
    fail = {"use": True}

    @pipeline.register
    @skippable
    def optional():
        raise ValueError("nothing today")

    @pipeline.register(depends_on=optional)
    def use(optional):
        if fail["use"]:
            raise RuntimeError("first run fails")
        return f"got {optional!r}"

    stats = tmp_path / "stats.sqlite3"
    with pytest.raises(RuntimeError):
        PipelineExecutor(pipeline, reporters=[], stats=stats).run()
    fail["use"] = False
    result = PipelineExecutor(pipeline, reporters=[], stats=stats, resume=True).run()
    assert result.tasks["optional"].resumed_from is not None
    assert result.tasks["use"].output == "got None"
