"""Resource waits: a ready resource lets the task run; one never ready, with soft_fail, skips it."""

from task_engine_core import Pipeline, TaskState, wait_for_resource

pipeline = Pipeline("resource_wait")


def cluster_is_running() -> bool:
    return True


def warehouse_is_running() -> bool:
    return False


@pipeline.register
@wait_for_resource(cluster_is_running, interval=0.01, timeout=5)
def configure_cluster():
    print("configured")


# timeout=0: the first poll is the last, so no backend sleeps; soft_fail turns the timeout into a skip.
@pipeline.register(depends_on=configure_cluster)
@wait_for_resource(warehouse_is_running, interval=0.01, timeout=0, soft_fail=True)
def load_warehouse():
    print("never runs")


@pipeline.register(depends_on=load_warehouse)
def report():
    print("report")


FEATURES = (
    "resource waits (`wait_for_resource`)",
    "skip (`@skippable`, `SkipTask`)",
)  # rows of the README's capability matrix
EXPECTED = {
    "configure_cluster": (TaskState.SUCCESS, 1),
    "load_warehouse": (TaskState.SKIPPED, 1),
    "report": (TaskState.SUCCESS, 1),
}
