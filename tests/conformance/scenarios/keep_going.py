"""keep_going: Broken fails; everything below it is UPSTREAM_FAILED; the independent branch still runs."""

from task_engine_core import Pipeline, Task, TaskState

pipeline = Pipeline("keep_going")


@pipeline.register
class Broken(Task):
    def perform_task(self):
        raise RuntimeError("broken on purpose")


@pipeline.register(depends_on=Broken)
class NeedsBroken(Task):
    def perform_task(self):
        print("needs broken")


@pipeline.register(depends_on=NeedsBroken)
class TwoBelowBroken(Task):
    def perform_task(self):
        print("two below broken")


@pipeline.register
class Independent(Task):
    def perform_task(self):
        print("independent")


@pipeline.register(depends_on=Independent)
class AfterIndependent(Task):
    def perform_task(self):
        print("after independent")


KEEP_GOING = True
FEATURES = ("keep-going",)  # rows of the README's capability matrix
EXPECTED = {
    "Broken": (TaskState.FAILED, 1),
    "NeedsBroken": (TaskState.UPSTREAM_FAILED, 0),
    "TwoBelowBroken": (TaskState.UPSTREAM_FAILED, 0),
    "Independent": (TaskState.SUCCESS, 1),
    "AfterIndependent": (TaskState.SUCCESS, 1),
}
