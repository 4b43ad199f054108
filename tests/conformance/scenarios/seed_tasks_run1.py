"""Seed Run 1: Task1 gets a 500 then a 200; AlwaysFailsTask is skipped after 3 attempts; Task2 runs."""

from task_engine_core import TaskState

from ._seed_tasks import build

pipeline = build("seed_tasks_run1", answers=[500, 200, 200])
FEATURES = (
    "retries (`@retries`, `retry_handler`)",
    "skip (`@skippable`, `SkipTask`)",
)  # rows of the README's capability matrix
EXPECTED = {
    "BaseTask": (TaskState.SUCCESS, 1),
    "Task1": (TaskState.SUCCESS, 2),
    "AlwaysFailsTask": (TaskState.SKIPPED, 3),
    "Task2": (TaskState.SUCCESS, 1),
}
