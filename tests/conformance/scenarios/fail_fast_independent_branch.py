"""Fail-fast: Broken fails first; its dependent is UPSTREAM_FAILED and the independent branch NOT_RUN.

With one worker (the CLI default) Broken runs before the independent branch, which then never starts;
with several workers the branch may already be running, so this scenario is not parallel-safe.
"""

from task_engine_core import Pipeline, Task, TaskState

pipeline = Pipeline("fail_fast_independent_branch")


@pipeline.register
class Broken(Task):
    def perform_task(self):
        raise RuntimeError("broken on purpose")


@pipeline.register(depends_on=Broken)
class NeedsBroken(Task):
    def perform_task(self):
        print("needs broken")


@pipeline.register
class Independent(Task):
    def perform_task(self):
        print("independent")


@pipeline.register(depends_on=Independent)
class AfterIndependent(Task):
    def perform_task(self):
        print("after independent")


PARALLEL_SAFE = False
# What the matrix says where tasks overlap: the branch that was already running finishes.
DIFFERENCES = {
    "threads": "an independent task already running when a task fails runs to its end",
    "airflow": "ready tasks start in Airflow's own order (priority_weight is a hint, dag.test() picks any), so the independent branch may run",
    "prefect": "with max_workers > 1 (default 4) an independent task already running when a task fails runs to its end",
}
FEATURES = ("fail-fast",)  # rows of the README's capability matrix
#: Where ready tasks start in the backend's own order (Airflow: priority_weight is a hint, dag.test()
#: picks any ready task), the independent branch may have started before Broken failed.
WITHOUT_START_ORDER = {
    "Independent": (TaskState.SUCCESS, 1),
    "AfterIndependent": (TaskState.SUCCESS, 1),
}
EXPECTED = {
    "Broken": (TaskState.FAILED, 1),
    "NeedsBroken": (TaskState.UPSTREAM_FAILED, 0),
    "Independent": (TaskState.NOT_RUN, 0),
    "AfterIndependent": (TaskState.NOT_RUN, 0),
}
