"""Explicit priority: Urgent (priority=10) starts before Broken, registered first, which then fails.

Without the priority, one worker would start Broken first and fail-fast would leave Urgent NOT_RUN;
with it Urgent has already succeeded. Where several tasks run at once both start anyway; Airflow
starts ready tasks in its own order (priority_weight is a hint), so there Urgent may not run.
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


#: Where ready tasks start in the backend's own order (Airflow), Broken may fail before Urgent starts.
WITHOUT_START_ORDER = {"Urgent": (TaskState.NOT_RUN, 0)}
FEATURES = ("priority (`priority=`, statistics)", "fail-fast")  # rows of the README's capability matrix
EXPECTED = {"Broken": (TaskState.FAILED, 1), "Urgent": (TaskState.SUCCESS, 1)}
