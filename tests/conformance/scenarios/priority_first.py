"""Explicit priority: Urgent (priority=10) starts before Broken, registered first, which then fails.

Without the priority, one worker would start Broken first and fail-fast would leave Urgent NOT_RUN;
with it Urgent has already succeeded. Where several tasks run at once both start anyway.
"""

from task_engine_core import Pipeline, Task, TaskState

pipeline = Pipeline("priority_first")


@pipeline.register
class Broken(Task):
    def perform_task(self):
        raise RuntimeError("broken on purpose")


@pipeline.register(priority=10)
class Urgent(Task):
    def perform_task(self):
        print("urgent")


FEATURES = ("priority (`priority=`, statistics)", "fail-fast")  # rows of the README's capability matrix
EXPECTED = {"Broken": (TaskState.FAILED, 1), "Urgent": (TaskState.SUCCESS, 1)}
