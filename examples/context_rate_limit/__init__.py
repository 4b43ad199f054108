"""Context + rate limit + wait_for_resource: `python run_examples.py context_rate_limit`.

A registered hydrator reads `context.yml` next to this file (so the example runs from any
directory); `TASK_ENGINE__...` environment variables still override it. The API is simulated,
so nothing leaves the machine: each "request" only records when it happened.

    StartCluster -> WaitForCluster -> PollRuns
"""

import time
from pathlib import Path

from task_engine_core import Task, load_context_file, rate_limited, register, register_hydrator, wait_for_resource

HERE = Path(__file__).resolve().parent
_cluster_started_at: list[float] = []


@register_hydrator(order=10, name="context_rate_limit example file")
def example_context(request):
    """The example's own context file, layered just above task_engine.yml."""
    return load_context_file(HERE / "context.yml", environ=request.environ)


@register
class StartCluster(Task):
    def perform_task(self):
        cluster = self.context["cluster"]
        print(f"Starting {cluster['name']} at {self.context['tenant_info']['url']}")
        print(f"Context: {self.context['tenant_info']}")  # the token prints as ***
        _cluster_started_at.append(time.monotonic())


def cluster_ready(context):
    """Readiness check: the simulated cluster is up `cluster.starts_after` seconds after the start."""
    return time.monotonic() - _cluster_started_at[0] >= float(context["cluster"]["starts_after"])


@register(depends_on=StartCluster)
@wait_for_resource(cluster_ready, interval=0.25, backoff=2, max_interval=1, timeout=10)
def wait_for_cluster(context):
    print(f"{context['cluster']['name']} is ready")


@register(depends_on=wait_for_cluster)
class PollRuns(Task):
    def perform_task(self):
        token = self.context["tenant_info"]["token"].reveal()  # what a real client would send
        assert token
        for run_id in range(1, 7):
            with rate_limited("/api/2.1/jobs/runs/get") as waited:
                print(f"GET /api/2.1/jobs/runs/get?run_id={run_id} (waited {waited:.2f} s)")
