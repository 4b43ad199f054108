"""Job A of cross_module_jobs: depends on job B's tasks by class and by name."""

from task_engine_core import Task

from ._cross_job_b import Transform
from ._cross_pipeline import pipeline


@pipeline.register(depends_on=Transform)
class Load(Task):
    def perform_task(self):
        print("load")


@pipeline.register(depends_on=["Load", "Extract"])
class Publish(Task):
    def perform_task(self):
        print("publish")
