"""retries(5) but retry_handler answers False: one attempt, then the task fails."""

from task_engine_core import Backoff, Pipeline, Task, TaskState, retries

pipeline = Pipeline("retry_handler_refuses")


@pipeline.register
class Refuses(Task):
    @retries(5, backoff=Backoff.constant(0))
    def perform_task(self):
        raise PermissionError("Error 401")

    def retry_handler(self, error):
        return False


FEATURES = ("retries (`@retries`, `retry_handler`)",)  # rows of the README's capability matrix
EXPECTED = {"Refuses": (TaskState.FAILED, 1)}
