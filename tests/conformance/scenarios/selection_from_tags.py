"""Selection: `from: clean` and `tags: nightly` intersect; left-out tasks end NOT_RUN and do not block.

extract -> clean -> load -> report, and an independent audit. Only clean and load are both
downstream of clean (inclusive) and tagged nightly; clean runs although its upstream extract was
left out, and report (left out) does not run although load succeeded.
"""

from task_engine_core import Pipeline, Task, TaskState

pipeline = Pipeline("selection_from_tags")


@pipeline.register(tags="nightly")
def extract():
    print("extract")


@pipeline.register(depends_on=extract, tags=["nightly", "ingest"])
class Clean(Task):
    def perform_task(self):
        print("clean")


@pipeline.register(depends_on=Clean, tags="nightly")
def load():
    print("load")


@pipeline.register(depends_on=load)
def report():
    print("report")


@pipeline.register(tags="nightly")
def audit():
    print("audit")


#: The `task_engine` options a backend is given (CLI flags, Airflow dag_run.conf, Prefect parameter).
RUN_OPTIONS = {"from": ["Clean"], "tags": ["nightly"]}

EXPECTED = {
    "extract": (TaskState.NOT_RUN, 0),
    "Clean": (TaskState.SUCCESS, 1),
    "load": (TaskState.SUCCESS, 1),
    "report": (TaskState.NOT_RUN, 0),
    "audit": (TaskState.NOT_RUN, 0),
}
