"""@retries(2) above @skippable: two attempts, the task ends SKIPPED, its dependent still runs."""

from task_engine_core import Backoff, Pipeline, Task, TaskState, retries, skippable

pipeline = Pipeline("skip_inner")


@pipeline.register
class Start(Task):
    def perform_task(self):
        print("start")


@pipeline.register(depends_on=Start)
class Optional(Task):
    @retries(2, backoff=Backoff.constant(0))
    @skippable
    def perform_task(self):
        raise ValueError("optional step failed")

    def retry_handler(self, error):
        return True


@pipeline.register(depends_on=Optional)
class Finish(Task):
    def perform_task(self):
        print("finish")


FEATURES = ("skip (`@skippable`, `SkipTask`)",)  # rows of the README's capability matrix
EXPECTED = {
    "Start": (TaskState.SUCCESS, 1),
    "Optional": (TaskState.SKIPPED, 2),
    "Finish": (TaskState.SUCCESS, 1),
}
