"""The console reporter prints the seed's lines and, when asked, the plan line."""

from __future__ import annotations

from task_engine_core import Pipeline, PipelineExecutor, Task, retries, skippable
from task_engine_core.reporters import ConsoleReporter, format_plan


def test_seed_lines_and_plan(capsys):
    p = Pipeline("console")

    @p.register
    class First(Task):
        def perform_task(self):
            print("work")

    @p.register(depends_on=First)
    class Optional(Task):
        @skippable
        @retries(2, backoff=0)
        def perform_task(self):
            raise Exception("Optional failed")

        def retry_handler(self, error):
            return True

    PipelineExecutor(p, reporters=[ConsoleReporter(show_plan=True)]).run()
    assert capsys.readouterr().out.splitlines() == [
        "Execution plan: First -> Optional",
        "Executing First",
        "work",
        "Executing Optional",
        "Skipping task due to error: Optional failed",
    ]


def test_plan_line_is_off_by_default(capsys):
    p = Pipeline("quiet-plan")
    p.add(lambda: None, name="only")
    PipelineExecutor(p).run()
    assert capsys.readouterr().out == "Executing only\n"


def test_format_plan():
    assert format_plan(("a", "b")) == "Execution plan: a -> b"
