"""Fan-out with keep-going: one instance fails for good, one is skipped; the mapped task fails, its
downstream ends UPSTREAM_FAILED, and the other instances still run."""

from task_engine_core import Backoff, Pipeline, Task, TaskState, retries, skippable

KEEP_GOING = True
pipeline = Pipeline("fan_out_keep_going")


@pipeline.register
def items():
    return ["ok", "broken", "optional", "ok"]


@pipeline.register(depends_on=items, map_over=items)
class Work(Task):
    @retries(2, backoff=Backoff.constant(0))
    def perform_task(self):
        item = self.inputs["items"]
        if item == "broken":
            raise RuntimeError("item 'broken' cannot be processed")
        return item.upper()

    def retry_handler(self, error):
        return True


@pipeline.register(depends_on=items, map_over=items)
@skippable
def optional(items):
    if items == "optional":
        raise ValueError("optional item failed")
    return items


@pipeline.register(depends_on=Work)
def after_work(Work):
    return Work


@pipeline.register(depends_on=optional)
def after_optional(optional):
    return optional


EXPECTED = {
    "items": (TaskState.SUCCESS, 1),
    "Work": (TaskState.FAILED, 5),
    "Work[0]": (TaskState.SUCCESS, 1),
    "Work[1]": (TaskState.FAILED, 2),
    "Work[2]": (TaskState.SUCCESS, 1),
    "Work[3]": (TaskState.SUCCESS, 1),
    "optional": (TaskState.SUCCESS, 4),
    "optional[0]": (TaskState.SUCCESS, 1),
    "optional[1]": (TaskState.SUCCESS, 1),
    "optional[2]": (TaskState.SKIPPED, 1),
    "optional[3]": (TaskState.SUCCESS, 1),
    "after_work": (TaskState.UPSTREAM_FAILED, 0),
    "after_optional": (TaskState.SUCCESS, 1),
}
OUTPUTS = {
    "items": ["ok", "broken", "optional", "ok"],
    "Work": None,
    "Work[0]": "OK",
    "Work[1]": None,
    "Work[2]": "OPTIONAL",
    "Work[3]": "OK",
    # A skipped instance has no output: its place in the list is None.
    "optional": ["ok", "broken", None, "ok"],
    "optional[0]": "ok",
    "optional[1]": "broken",
    "optional[2]": None,
    "optional[3]": "ok",
    "after_work": None,
    "after_optional": ["ok", "broken", None, "ok"],
}
FEATURES = (
    "task outputs (return values)",
    "mapped tasks (`map_over=`)",
    "keep-going",
    "skip (`@skippable`, `SkipTask`)",
)  # rows of the README's capability matrix
