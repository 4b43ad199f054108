"""The seed's `tasks` example with Task1's HTTP answers scripted per attempt instead of random."""

from __future__ import annotations

from collections.abc import Sequence

from task_engine_core import Backoff, Pipeline, Task, retries, skippable


def build(name: str, answers: Sequence[int]) -> Pipeline:
    """The seed DAG BaseTask -> Task1 -> AlwaysFailsTask -> Task2; Task1 answers `answers[attempt-1]`."""
    pipeline = Pipeline(name)

    @pipeline.register
    class BaseTask(Task):
        def perform_task(self):
            print("Hello!")

    @pipeline.register(depends_on=BaseTask)
    class Task1(Task):
        @retries(3, backoff=Backoff.constant(0))
        def perform_task(self):
            status = answers[self.attempt_state.attempt - 1]
            if status != 200:
                raise Exception(f"Error {status}")
            print("Task1 completed successfully")

        def retry_handler(self, error):
            return str(error) == "Error 500"

    @pipeline.register(depends_on=Task1)
    class AlwaysFailsTask(Task):
        @skippable
        @retries(3, backoff=Backoff.constant(0))
        def perform_task(self):
            print("AlwaysFailsTask failed")
            raise Exception("AlwaysFailsTask failed")

        def retry_handler(self, error):
            return True

    @pipeline.register(depends_on=AlwaysFailsTask)
    class Task2(Task):
        def perform_task(self):
            print("Task2 completed successfully")

    return pipeline
