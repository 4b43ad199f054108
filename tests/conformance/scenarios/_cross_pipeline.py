"""The pipeline object shared by the two job modules of the cross_module_jobs scenario."""

from task_engine_core import Pipeline

pipeline = Pipeline("cross_module_jobs")
