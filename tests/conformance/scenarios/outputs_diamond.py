"""Outputs through a diamond: a function and a Task class read their upstreams' outputs."""

from task_engine_core import Pipeline, Task, TaskState

pipeline = Pipeline("outputs_diamond")


@pipeline.register
def extract():
    return {"rows": [1, 2, 3], "source": "conformance"}


@pipeline.register(depends_on=extract)
def double(extract):
    return [2 * row for row in extract["rows"]]


@pipeline.register(depends_on="extract")
class Count(Task):
    def perform_task(self):
        return len(self.inputs["extract"]["rows"])


@pipeline.register(depends_on=[double, Count])
def load(double, Count, context):
    # `context` and the upstream outputs together; the result is the diamond's final output.
    return {"total": sum(double), "count": Count}


@pipeline.register(depends_on=load)
def report():
    print("report: returns nothing")


EXPECTED = {name: (TaskState.SUCCESS, 1) for name in ("extract", "double", "Count", "load", "report")}
OUTPUTS = {
    "extract": {"rows": [1, 2, 3], "source": "conformance"},
    "double": [2, 4, 6],
    "Count": 3,
    "load": {"total": 12, "count": 3},
    "report": None,
}
FEATURES = ("task outputs (return values)", "function tasks")  # rows of the README's capability matrix
