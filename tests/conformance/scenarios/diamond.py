"""A diamond: Top -> Left, Right -> Bottom; plain functions with string and object dependencies."""

from task_engine_core import Pipeline, TaskState

pipeline = Pipeline("diamond")


@pipeline.register
def top():
    print("top")


@pipeline.register(depends_on=top)
def left():
    print("left")


@pipeline.register(depends_on="top")
def right():
    print("right")


@pipeline.register(depends_on=[left, "right"])
def bottom():
    print("bottom")


FEATURES = ("dependencies and start order", "function tasks")  # rows of the README's capability matrix
EXPECTED = {name: (TaskState.SUCCESS, 1) for name in ("top", "left", "right", "bottom")}
