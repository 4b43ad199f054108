"""A task that always fails uses all 3 attempts, then fails the run; its dependent never starts."""

from task_engine_core import Backoff, Pipeline, Task, TaskState, retries

pipeline = Pipeline("retries_exhausted")


@pipeline.register
class Flaky(Task):
    @retries(3, backoff=Backoff.constant(0))
    def perform_task(self):
        raise RuntimeError("still broken")

    def retry_handler(self, error):
        return True


@pipeline.register(depends_on=Flaky)
def after_flaky():
    print("after_flaky ran")


FEATURES = ("retries (`@retries`, `retry_handler`)", "fail-fast")  # rows of the README's capability matrix
EXPECTED = {"Flaky": (TaskState.FAILED, 3), "after_flaky": (TaskState.UPSTREAM_FAILED, 0)}
