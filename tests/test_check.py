"""`check --backend`: each rule finds exactly its kind of difference, and nothing in a pipeline without it."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from task_engine_core import Pipeline, RateLimit, Task, rate_limit, retries, set_rate_limit, wait_for_resource
from task_engine_core._check import (
    RULES,
    CheckTarget,
    check_pipeline,
    configured_rate_limit_store,
    format_findings,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = "redis://127.0.0.1:6379/0"  # a shared store: the per-process rule has nothing to say

set_rate_limit(RateLimit("check-api", rate=1000))


def kinds(pipeline: Pipeline, **target: object) -> list[str]:
    return [finding.kind for finding in check_pipeline(pipeline.validate(), CheckTarget(**target))]


def clean_pipeline() -> Pipeline:
    """A chain using retries, a resource wait without retries, a rate limit and JSON outputs."""
    pipeline = Pipeline("clean")

    @pipeline.register
    @wait_for_resource(lambda: True, timeout=60, interval=15)
    def extract() -> dict[str, list[int]]:
        return {"rows": [1, 2]}

    @pipeline.register(depends_on=extract)
    class Transform(Task):
        @retries(3)
        def perform_task(self) -> list[str]:
            total = 0  # a local, not state on self
            return [str(total)]

    @pipeline.register(depends_on=Transform)
    @rate_limit(key="check-api")
    def load() -> None:
        pass

    return pipeline


@pytest.mark.parametrize(
    "target",
    [
        {"backend": "standalone"},
        {"backend": "standalone", "workers": 4},
        {"backend": "airflow", "rate_limit_store": SHARED, "dag_test": True},
        {"backend": "prefect", "rate_limit_store": SHARED},
        {"backend": "prefect", "prefect_workers": "in-process"},
    ],
)
def test_a_pipeline_without_differences_reports_nothing(target):
    assert kinds(clean_pipeline(), **target) == []


def test_every_rule_has_a_test_below_and_a_matrix_place():
    tested = {name.removeprefix("test_kind_").replace("_", "-") for name in globals() if name.startswith("test_kind_")}
    assert {rule.kind for rule in RULES} == tested
    for rule in RULES:
        assert rule.feature and rule.summary and rule.columns, rule.kind
        assert set(rule.columns) <= {"sequential", "threads", "airflow", "prefect"}, rule.kind


def test_kind_resource_poll_reschedule():
    pipeline = Pipeline("resource")

    @pipeline.register
    @retries(3)
    @wait_for_resource(lambda: True, interval=0.5, timeout=60, name="cluster")
    def configure():
        pass

    # A long interval, or timeout=0 (one poll, no pause), reschedules nothing worth reporting.
    @pipeline.register
    @wait_for_resource(lambda: True, interval=30, timeout=600, name="warehouse")
    def load():
        pass

    @pipeline.register
    @wait_for_resource(lambda: True, interval=0.5, timeout=0, name="lake")
    def peek():
        pass

    assert kinds(pipeline, backend="airflow", rate_limit_store=SHARED) == ["resource-poll-reschedule"]
    [finding] = check_pipeline(pipeline.validate(), CheckTarget("airflow"))
    assert finding.task == "configure"
    assert finding.reason == (
        "@wait_for_resource('cluster', interval=0.5) polls every 0.5 s standalone, but on Airflow each pause is a "
        "reschedule of at least 15 s (shorter ones race Airflow's scheduler, apache/airflow#71172), so polls come less often"
    )
    assert finding.action == (
        "give interval >= 15 s for Airflow, or lower to_airflow_dag(min_reschedule_seconds=) where your Airflow has "
        "the fix (the timeout still counts from the first poll, across tries)"
    )
    # Standalone and on Prefect a resource wait sleeps inside the attempt.
    assert kinds(pipeline, backend="prefect") == kinds(pipeline, backend="standalone") == []


def test_kind_rate_limit_per_process():
    pipeline = Pipeline("limited")

    @pipeline.register
    @rate_limit(key="check-api")
    def call_api():
        pass

    @pipeline.register
    def polls_inside():
        from task_engine_core import rate_limited

        with rate_limited("check-api"):
            pass

    assert kinds(pipeline, backend="airflow") == ["rate-limit-per-process"] * 2
    assert kinds(pipeline, backend="prefect") == ["rate-limit-per-process"] * 2
    # One flow run in this process, or a shared store: one bucket, as standalone.
    assert kinds(pipeline, backend="prefect", prefect_workers="in-process") == []
    assert kinds(pipeline, backend="airflow", rate_limit_store=SHARED) == []
    assert kinds(pipeline, backend="standalone", workers=8) == []
    messages = [f.reason for f in check_pipeline(pipeline.validate(), CheckTarget("airflow"))]
    assert messages[1] == (
        "rate-limit key(s) 'check-api' live in the in-process store (TASK_ENGINE_RATE_LIMIT_STORE=memory); every "
        "Airflow try runs in a task process of its own, so each gets a full bucket and the limit no longer holds "
        "across them"
    )


def test_kind_pool_is_concurrency():
    pipeline = Pipeline("pooled")

    @pipeline.register
    @rate_limit(key="check-api")
    def call_api():
        pass

    assert kinds(pipeline, backend="airflow", rate_limit_store=SHARED, pools={"check-api": "api_pool"}) == [
        "pool-is-concurrency"
    ]
    assert kinds(pipeline, backend="airflow", rate_limit_store=SHARED, pools={"other": "api_pool"}) == []
    assert kinds(pipeline, backend="prefect", rate_limit_store=SHARED, pools={"check-api": "api_pool"}) == []


@dataclasses.dataclass
class Row:
    id: int


class Handle:
    pass


def test_kind_xcom_output():
    pipeline = Pipeline("outputs")

    @pipeline.register
    def raw() -> bytes:
        return b""

    @pipeline.register
    def by_id() -> dict[int, str]:
        return {}

    @pipeline.register
    def rows() -> list[Row]:
        return []

    @pipeline.register
    class Opens(Task):
        def perform_task(self) -> Handle | None:
            return None

    @pipeline.register
    def fine() -> tuple[datetime.datetime, ...] | dict[str, set[float]]:
        return ()

    found = check_pipeline(pipeline.validate(), CheckTarget("airflow", rate_limit_store=SHARED))
    assert [(f.kind, f.task) for f in found] == [
        ("xcom-output", "raw"),
        ("xcom-output", "by_id"),
        ("xcom-output", "rows"),
        ("xcom-output", "Opens"),
    ]
    assert [f.reason.split("; standalone")[0] for f in found] == [
        "its output is declared as bytes, and Airflow's XCom cannot serialise bytes (it stores JSON)",
        "its output is declared as dict[int, str], and XCom stores mappings as JSON objects, so its int keys come back as strings",
        "its output is declared as list[tests.test_check.Row], and Airflow's XCom serialises the "
        "dataclass Row but refuses to load it back unless [core] allowed_deserialization_classes names it",
        "its output is declared as tests.test_check.Handle | None, and Airflow's XCom cannot serialise "
        "Handle objects (it stores JSON)",
    ]
    assert kinds(pipeline, backend="prefect", rate_limit_store=SHARED) == []


def test_kind_mapped_task():
    pipeline = Pipeline("mapped")

    @pipeline.register
    def items() -> list[int]:
        return [1, 2, 3]

    @pipeline.register(depends_on=items, map_over=items)
    def each(items):
        pass

    assert kinds(pipeline, backend="airflow", rate_limit_store=SHARED) == ["mapped-task"]
    [finding] = check_pipeline(pipeline.validate(), CheckTarget(backend="airflow", rate_limit_store=SHARED))
    assert finding.task == "each"
    assert "mapped over the output of 'items'" in finding.reason
    assert kinds(pipeline, backend="prefect") == kinds(pipeline, backend="standalone") == []


def test_kind_dag_test_only():
    pipeline = Pipeline("pooled")

    @pipeline.register
    @rate_limit(key="check-api")
    def call_api():
        pass

    target = {"backend": "airflow", "rate_limit_store": SHARED, "pools": {"check-api": "api_pool"}}
    with_dag_test = kinds(pipeline, **target, dag_test=True)
    without = kinds(pipeline, **target)
    # A pooled key is always a pool difference; verifying with dag.test() adds exactly this kind.
    assert without == ["pool-is-concurrency"]
    assert with_dag_test == ["pool-is-concurrency", "dag-test-only"]
    [finding] = [
        f
        for f in check_pipeline(pipeline.validate(), CheckTarget(**target, dag_test=True))
        if f.kind == "dag-test-only"
    ]
    assert "dag.test() ignores" in finding.reason and "airflow pools set api_pool" in finding.action


def test_kind_start_order():
    pipeline = Pipeline("ordered")

    @pipeline.register(priority=10)
    def first():
        pass

    @pipeline.register
    def independent():
        pass

    @pipeline.register(depends_on=[first, independent], priority=5)
    def below_both():
        pass  # related to every other task: nothing can run beside it

    assert kinds(pipeline, backend="standalone") == []
    assert kinds(pipeline, backend="standalone", workers=2) == ["start-order"]
    assert kinds(pipeline, backend="prefect", prefect_workers="in-process") == ["start-order"]
    assert kinds(pipeline, backend="prefect", workers=1, prefect_workers="in-process") == []
    assert kinds(pipeline, backend="airflow") == ["start-order"]
    [finding] = check_pipeline(pipeline.validate(), CheckTarget("standalone", workers=2))
    assert finding.task == "first"
    assert finding.reason.startswith(
        "priority=10 makes it start before the independent task(s) 'independent' on one worker; with 2 worker threads they may run"
    )


class Counting(Task):
    @retries(3)
    def perform_task(self):
        self.calls = getattr(self, "calls", 0) + 1
        raise RuntimeError("again")

    def retry_handler(self, error):
        self.last_error = error
        return True


def test_kind_task_state_per_try():
    pipeline = Pipeline("stateful")
    pipeline.register(Counting)

    @pipeline.register
    class OneTry(Task):  # state on self, but a single attempt: nothing is lost
        def perform_task(self):
            self.calls = 1

    found = check_pipeline(pipeline.validate(), CheckTarget("airflow", rate_limit_store=SHARED))
    assert [(f.kind, f.task) for f in found] == [("task-state-per-try", "Counting")]
    assert found[0].reason.startswith("its methods set self.calls, self.last_error; standalone (and on Prefect)")
    assert kinds(pipeline, backend="prefect", rate_limit_store=SHARED) == []


def test_the_store_setting_is_read_as_a_run_reads_it_code_then_context_then_environment(monkeypatch, tmp_path):
    from task_engine_core import set_rate_limit_store

    monkeypatch.delenv("TASK_ENGINE_RATE_LIMIT_STORE", raising=False)
    assert configured_rate_limit_store({}) == "memory"
    monkeypatch.setenv("TASK_ENGINE_RATE_LIMIT_STORE", "redis://:hunter2@127.0.0.1:6379/0")
    assert configured_rate_limit_store({}) == "redis://:***@127.0.0.1:6379/0"  # a report never shows the password
    file_store = f"sqlite:///{tmp_path / 'buckets.db'}"
    # The context file's rate_limit_store: beats the environment, as it does for a task's acquire.
    assert configured_rate_limit_store({"rate_limit_store": file_store}) == file_store
    set_rate_limit_store("memory")  # pinned in code: beats both
    try:
        assert configured_rate_limit_store({"rate_limit_store": file_store}) == "memory"
    finally:
        set_rate_limit_store(None)


def test_the_text_report_names_task_kind_reason_and_action():
    pipeline = Pipeline("ordered")

    @pipeline.register(priority=1)
    def urgent():
        pass

    @pipeline.register
    def other():
        pass

    target = CheckTarget("standalone", workers=3)
    lines = format_findings("ordered", target, check_pipeline(pipeline.validate(), target)).splitlines()
    assert lines[0] == "pipeline 'ordered' on standalone, 3 worker threads: 1 difference(s) from a standalone run"
    assert lines[1] == "urgent [start-order]"
    assert lines[2].startswith("  why: priority=1 makes it start before the independent task(s) 'other' on one worker")
    assert "  do:  if 'urgent' must finish before them, say so with depends_on=; priority only orders starts" in lines


# -- the command line ---------------------------------------------------------------------------


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {name: value for name, value in os.environ.items() if name != "TASK_ENGINE_RATE_LIMIT_STORE"}
    environ.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "task_engine_core", "check", *args], capture_output=True, text=True, cwd=cwd, env=environ
    )


PIPELINE_FILE = """
from task_engine_core import RateLimit, rate_limit, register, set_rate_limit

set_rate_limit(RateLimit("/jobs/runs/get", rate=30))

@register
def extract():
    pass

@register(depends_on=extract)
@rate_limit(key="/jobs/runs/get")
def poll():
    pass
"""


def test_cli_exit_0_when_nothing_differs_and_1_with_findings(tmp_path):
    (tmp_path / "jobs.py").write_text(PIPELINE_FILE)
    clean = cli("jobs.py", "--backend", "standalone", cwd=tmp_path)
    assert (clean.returncode, clean.stdout, clean.stderr) == (
        0,
        "pipeline 'jobs' on standalone, 1 worker: nothing behaves differently from a standalone run\n",
        "",
    )
    found = cli("jobs.py", "--backend", "airflow", cwd=tmp_path)
    assert found.returncode == 1, found.stderr
    assert found.stdout.splitlines()[:2] == [
        "pipeline 'jobs' on airflow: 1 difference(s) from a standalone run",
        "poll [rate-limit-per-process]",
    ]
    shared = cli("jobs.py", "--backend", "airflow", cwd=tmp_path, env={"TASK_ENGINE_RATE_LIMIT_STORE": SHARED})
    assert shared.returncode == 0, shared.stdout
    # A store pinned in the pipeline's code is the one its tasks use, whatever the environment says.
    (tmp_path / "pinned.py").write_text(
        PIPELINE_FILE + f"\nfrom task_engine_core import set_rate_limit_store\nset_rate_limit_store({SHARED!r})\n"
    )
    pinned = cli("pinned.py", "--backend", "airflow", cwd=tmp_path, env={"TASK_ENGINE_RATE_LIMIT_STORE": "memory"})
    assert (pinned.returncode, pinned.stderr) == (0, ""), pinned.stdout
    # The context file's store beats the environment's, as in a run.
    (tmp_path / "shared.yml").write_text(f"rate_limit_store: {SHARED}\n")
    context = cli(
        "jobs.py",
        "--backend",
        "airflow",
        "--context",
        "shared.yml",
        cwd=tmp_path,
        env={"TASK_ENGINE_RATE_LIMIT_STORE": "memory"},
    )
    assert (context.returncode, context.stderr) == (0, ""), context.stdout


def test_cli_json_and_pools(tmp_path):
    (tmp_path / "jobs.py").write_text(PIPELINE_FILE)
    (tmp_path / "task_engine.yml").write_text(f"rate_limit_store: {SHARED}\n")
    done = cli(
        "jobs.py", "--backend", "airflow", "--json", "--pool", "/jobs/runs/get=runs_pool", "--dag-test", cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["format"] == "task-engine-check/1"
    assert (document["pipeline"], document["backend"]) == ("jobs", "airflow")
    assert [(f["kind"], f["task"]) for f in document["findings"]] == [
        ("pool-is-concurrency", "poll"),
        ("dag-test-only", "poll"),
    ]
    assert set(document["findings"][0]) == {"kind", "task", "reason", "action"}


def test_cli_definition_and_usage_errors_exit_2_without_a_traceback(tmp_path):
    (tmp_path / "cycle.py").write_text(
        textwrap.dedent("""
        from task_engine_core import register

        @register(depends_on="b")
        def a():
            pass

        @register(depends_on="a")
        def b():
            pass
    """)
    )
    (tmp_path / "jobs.py").write_text(PIPELINE_FILE)
    cycle = cli("cycle.py", "--backend", "airflow", cwd=tmp_path)
    assert (cycle.returncode, cycle.stdout) == (2, "")
    assert cycle.stderr == "error: dependency cycle: a -> b -> a; remove one of these dependencies\n"
    pool = cli("jobs.py", "--backend", "airflow", "--pool", "runs_pool", cwd=tmp_path)
    assert pool.returncode == 2
    assert pool.stderr == "error: --pool 'runs_pool': write KEY=POOL, e.g. --pool /jobs/runs/get=databricks_runs_get\n"
    backend = cli("jobs.py", "--backend", "dagster", cwd=tmp_path)
    assert backend.returncode == 2 and "Traceback" not in backend.stderr
    assert "invalid choice: 'dagster' (choose from 'standalone', 'airflow', 'prefect')" in backend.stderr
