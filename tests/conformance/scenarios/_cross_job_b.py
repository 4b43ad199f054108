"""Job B of cross_module_jobs: registered first, depended on by job A."""

from task_engine_core import Task

from ._cross_pipeline import pipeline


@pipeline.register
class Extract(Task):
    def perform_task(self):
        print("extract")


@pipeline.register(depends_on=Extract)
class Transform(Task):
    def perform_task(self):
        print("transform")
