"""Rate limits: a task taking a token per attempt (`@rate_limit`) and one taking tokens per request."""

from task_engine_core import Pipeline, RateLimit, TaskState, rate_limit, rate_limited, set_rate_limit

pipeline = Pipeline("rate_limited")

# Generous enough that no backend waits: the scenario proves the keys resolve and tokens are
# taken wherever the task runs (an Airflow try, a Prefect task run), not the rate itself.
set_rate_limit(RateLimit("conformance-api", rate=1000))


@pipeline.register
@rate_limit(key="conformance-api")
def call_once():
    print("one call")


@pipeline.register(depends_on=call_once)
def call_three_times():
    for _ in range(3):
        with rate_limited("conformance-api", timeout=5):
            print("a call")


FEATURES = ("rate limits (`@rate_limit`)",)  # rows of the README's capability matrix
EXPECTED = {"call_once": (TaskState.SUCCESS, 1), "call_three_times": (TaskState.SUCCESS, 1)}
