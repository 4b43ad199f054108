"""The seed's `jobs` example, loaded from examples/jobs: Job2Task1 -> Job2Task2 -> Job1Task1 -> Job1Task2."""

from task_engine_core import TaskState
from task_engine_core._loader import load_pipeline

pipeline = load_pipeline("examples.jobs")
FEATURES = ("dependencies and start order", "cross-module dependencies")  # rows of the README's capability matrix
EXPECTED = {
    "Job2Task1": (TaskState.SUCCESS, 1),
    "Job2Task2": (TaskState.SUCCESS, 1),
    "Job1Task1": (TaskState.SUCCESS, 1),
    "Job1Task2": (TaskState.SUCCESS, 1),
}
