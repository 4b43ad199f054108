"""The pipeline shape shared by the fan-out scenarios: list items, poll each, sum the results."""

from __future__ import annotations

from task_engine_core import Backoff, Pipeline, Task, TaskState, retries

#: An item that fails its first attempt and succeeds on the retry.
FLAKY = "flaky"


def fan_out_pipeline(name: str, items: list) -> Pipeline:
    """ListRuns -> Poll (mapped over ListRuns) -> Total."""
    pipeline = Pipeline(name)

    @pipeline.register
    class ListRuns(Task):
        def perform_task(self):
            return list(items)

    @pipeline.register(depends_on=ListRuns, map_over=ListRuns)
    class Poll(Task):
        @retries(2, backoff=Backoff.constant(0))
        def perform_task(self):
            item = self.inputs["ListRuns"]
            if item == FLAKY and self.attempt_state.attempt == 1:
                raise RuntimeError(f"run {item} not ready yet")
            return f"polled {item}"

        def retry_handler(self, error):
            return True

    @pipeline.register(depends_on=Poll)
    def Total(Poll):
        return len(Poll)

    return pipeline


def expected(items: list) -> dict:
    """States and attempts: every instance succeeds, the flaky one on its second attempt."""
    attempts = [2 if item == FLAKY else 1 for item in items]
    states = {
        "ListRuns": (TaskState.SUCCESS, 1),
        "Poll": (TaskState.SUCCESS, sum(attempts)),
        "Total": (TaskState.SUCCESS, 1),
    }
    states.update({f"Poll[{i}]": (TaskState.SUCCESS, n) for i, n in enumerate(attempts)})
    return states


def outputs(items: list) -> dict:
    """Every task's output: the mapped task's is the list of its instances' outputs, in item order."""
    polled = [f"polled {item}" for item in items]
    result = {"ListRuns": list(items), "Poll": polled, "Total": len(items)}
    result.update({f"Poll[{i}]": text for i, text in enumerate(polled)})
    return result
