"""Fan-out with a rate limit: every instance takes its own token of one key before each attempt."""

from task_engine_core import Pipeline, RateLimit, TaskState, rate_limit, set_rate_limit

KEY = "conformance/runs/get"
ITEMS = list(range(8))
set_rate_limit(RateLimit(key=KEY, rate=500.0, burst=2))
#: Which instances wait for a token depends on timing, so their lifecycle events are not compared.
TIMING_DEPENDENT_EVENTS = True

pipeline = Pipeline("fan_out_rate_limited")


@pipeline.register
def list_runs():
    return list(ITEMS)


@pipeline.register(depends_on=list_runs, map_over=list_runs)
@rate_limit(key=KEY)
def get_run(list_runs):
    return {"run_id": list_runs, "state": "TERMINATED"}


@pipeline.register(depends_on=get_run)
def summary(get_run):
    return sorted(run["run_id"] for run in get_run)


EXPECTED = {
    "list_runs": (TaskState.SUCCESS, 1),
    "get_run": (TaskState.SUCCESS, len(ITEMS)),
    "summary": (TaskState.SUCCESS, 1),
    **{f"get_run[{i}]": (TaskState.SUCCESS, 1) for i in ITEMS},
}
OUTPUTS = {
    "list_runs": ITEMS,
    "get_run": [{"run_id": i, "state": "TERMINATED"} for i in ITEMS],
    "summary": ITEMS,
    **{f"get_run[{i}]": {"run_id": i, "state": "TERMINATED"} for i in ITEMS},
}
FEATURES = (
    "task outputs (return values)",
    "mapped tasks (`map_over=`)",
    "rate limits (`@rate_limit`)",
)  # rows of the README's capability matrix
