"""Resume: the first run fails at Load (after 2 attempts); resuming it runs Load and what follows.

Optional (skippable, fails) -> Extract -> Load -> Publish -> Notify. The first run ends Optional
SKIPPED, Extract SUCCESS, Load FAILED, the rest UPSTREAM_FAILED. After `fix()` a run resuming it
keeps Optional (SKIPPED) and Extract (SUCCESS) with 0 attempts and runs the other three.
"""

from task_engine_core import Backoff, Pipeline, Task, TaskState, retries, skippable

pipeline = Pipeline("resume_after_failure")
_broken = {"Load": True}


def reset() -> None:
    """Make Load fail again (before the first run)."""
    _broken["Load"] = True


def fix() -> None:
    """Make Load succeed (before the resumed run)."""
    _broken["Load"] = False


@pipeline.register
@skippable
def optional():
    raise ValueError("optional source is empty")


@pipeline.register(depends_on=optional)
def extract():
    print("extract")


@pipeline.register(depends_on=extract)
class Load(Task):
    @retries(2, backoff=Backoff.constant(0))
    def perform_task(self):
        if _broken["Load"]:
            raise ConnectionError("warehouse refused the connection")
        print("load")

    def retry_handler(self, error):
        return True


@pipeline.register(depends_on=Load)
def publish():
    print("publish")


@pipeline.register(depends_on=publish)
def notify():
    print("notify")


FIRST = {
    "optional": (TaskState.SKIPPED, 1),
    "extract": (TaskState.SUCCESS, 1),
    "Load": (TaskState.FAILED, 2),
    "publish": (TaskState.UPSTREAM_FAILED, 0),
    "notify": (TaskState.UPSTREAM_FAILED, 0),
}
EXPECTED = {
    "optional": (TaskState.SKIPPED, 0),
    "extract": (TaskState.SUCCESS, 0),
    "Load": (TaskState.SUCCESS, 1),
    "publish": (TaskState.SUCCESS, 1),
    "notify": (TaskState.SUCCESS, 1),
}
#: The resumed run keeps these, naming the first run as where they come from.
KEPT = ("optional", "extract")
