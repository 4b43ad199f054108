"""Two job modules whose tasks depend on each other across module boundaries."""

from task_engine_core import TaskState

from . import _cross_job_a  # noqa: F401  (registers job A, which imports job B)
from ._cross_pipeline import pipeline  # noqa: F401  (the scenario exposes it)

FEATURES = ("dependencies and start order", "cross-module dependencies")  # rows of the README's capability matrix
EXPECTED = {name: (TaskState.SUCCESS, 1) for name in ("Extract", "Transform", "Load", "Publish")}
