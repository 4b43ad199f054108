"""Seed Run 2: Task1 gets a 500 then a 401; its retry_handler refuses, the run fails."""

from task_engine_core import TaskState

from ._seed_tasks import build

pipeline = build("seed_tasks_run2", answers=[500, 401, 200])
FEATURES = ("retries (`@retries`, `retry_handler`)", "fail-fast")  # rows of the README's capability matrix
EXPECTED = {
    "BaseTask": (TaskState.SUCCESS, 1),
    "Task1": (TaskState.FAILED, 2),
    "AlwaysFailsTask": (TaskState.UPSTREAM_FAILED, 0),
    "Task2": (TaskState.UPSTREAM_FAILED, 0),
}
