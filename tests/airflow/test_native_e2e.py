"""End to end on a real Airflow (api-server, scheduler, dag-processor on 127.0.0.1), configured by task_engine_dags.yml.

Shows what an Airflow user sees: a broken pipeline as an import error while the others run, the
jobs example's TaskGroups, the trigger form's params, a fail-fast NOT_RUN task with a note, and
a resource wait that reschedules itself instead of holding a worker slot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_harness import REPO_ROOT, AirflowServices

SCREENS = Path(os.environ.get("TASK_ENGINE_SCREENS", REPO_ROOT / "test-artifacts"))

FAIL_FAST_PIPELINE = '''
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from task_engine_core import register

STARTED = Path(__file__).with_name("slow-started")
DATABASE = "{database}"


@register
def slow():
    """Still running when `fails` fails (it waits for that in Airflow's own record), so it finishes."""
    # No sleeps of a guessed length: under load either root may start late, so each waits for the
    # other's mark. `fails` fails only once this body runs (past the fail-fast check).
    STARTED.write_text("yes")
    # Task processes get no database URL (Airflow 3 blanks it): the test names the file.
    database = DATABASE
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(database, timeout=60)) as db:
            rows = db.execute(
                "select state from task_instance where dag_id = 'fail_fast' and task_id = 'fails'"
            ).fetchall()
        if rows and rows[0][0] == "failed":
            return
        time.sleep(0.5)
    raise RuntimeError("'fails' never failed")


@register(depends_on=slow)
def later():
    """Ready only after `fails` failed: fail-fast keeps it from running."""


@register
def fails():
    deadline = time.monotonic() + 900
    while not STARTED.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    raise RuntimeError("boom")
'''

WAITING_PIPELINE = """
from pathlib import Path
from task_engine_core import register, wait_for_resource

FLAG = Path(__file__).with_name("resource-ready")
POLLS = Path(__file__).with_name("polls.log")


def ready(context):
    import os
    with POLLS.open("a") as out:
        out.write(f"{os.getpid()}\\n")
    if POLLS.read_text().count("\\n") >= 3:
        FLAG.write_text("yes")
    return FLAG.exists()


@register
# A deadline far beyond three reschedules on a loaded machine: the test counts polls, not seconds.
@wait_for_resource(ready, timeout=1800, interval=1, name="warehouse")
def load(context):
    print("region is", context["region"])
"""


@pytest.fixture()
def services(tmp_path: Path) -> Iterator[AirflowServices]:
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO_ROOT / "dags" / "task_engine_dags.py", dags)
    shutil.copy(REPO_ROOT / "dags" / "task_engine_import_errors.py", dags)
    (tmp_path / "fail_fast_pipeline.py").write_text(
        FAIL_FAST_PIPELINE.replace("{database}", str(tmp_path / "home" / "airflow.db"))
    )
    (tmp_path / "waiting_pipeline.py").write_text(WAITING_PIPELINE)
    (tmp_path / "broken_pipeline.py").write_text("import no_such_module_anywhere\n")
    (dags / "task_engine_dags.yml").write_text(
        "pipelines:\n"
        f"  jobs: {{target: {REPO_ROOT / 'examples' / 'jobs'}, tags: [seed, jobs]}}\n"
        "  fail_fast: {target: ../fail_fast_pipeline.py}\n"
        "  waiting:\n"
        "    target: ../waiting_pipeline.py\n"
        "    params: {region: {type: string, default: eu, description: Which region to load}}\n"
        "  broken: ../broken_pipeline.py\n"
    )
    services = AirflowServices(tmp_path / "home", dags)
    services.env.pop("TASK_ENGINE_PIPELINES", None)
    services.env["PYTHONPATH"] = str(REPO_ROOT)
    # The UI and REST API without a login (a test deployment); the note Connection points at it.
    services.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
    services.env["AIRFLOW_CONN_TASK_ENGINE_API"] = f"http://127.0.0.1:{services.port}"
    try:
        services.start()
        yield services
    finally:
        services.stop()


@pytest.mark.slow
def test_an_airflow_user_sees_groups_import_errors_params_notes_and_rescheduled_waits(
    services: AirflowServices,
) -> None:
    # Generous deadlines: the services share a loaded machine; nothing here asserts a duration.
    for dag_id in ("jobs", "fail_fast", "waiting"):
        services.wait_for_dag(dag_id, timeout=900)

    # The command exits 1 when there are import errors; its JSON is the last line.
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "list-import-errors", "--output", "json"],
        env=services.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(listed.stdout)
    [error] = json.loads(listed.stdout.strip().splitlines()[-1])
    assert error["filepath"] == "task_engine_import_errors.py"
    assert "pipeline 'broken' (target" in error["error"] and "no_such_module_anywhere" in error["error"]

    runs = {dag_id: services.trigger(dag_id) for dag_id in ("jobs", "fail_fast")}
    runs["waiting"] = services.trigger("waiting", {"region": "us"})
    states = {dag_id: services.wait_for_run(dag_id, run_id, timeout=1800) for dag_id, run_id in runs.items()}
    assert states == {"jobs": "success", "fail_fast": "failed", "waiting": "success"}, f"{states}\n{services.logs()}"

    for dag_id, run_id in runs.items():
        print(services.command("tasks", "states-for-dag-run", dag_id, run_id))
    assert services.task_outcomes("fail_fast", runs["fail_fast"]) == {
        "slow": ("success", 1),
        "later": ("skipped", 1),
        "fails": ("failed", 1),
    }
    notes = services.query(
        "select ti.task_id, n.content from task_instance_note n join task_instance ti on ti.id = n.ti_id "
        "where ti.dag_id = ? and ti.run_id = ?",
        "fail_fast",
        runs["fail_fast"],
    )
    assert notes == [("later", "Task Engine: NOT RUN. fails failed first and the DAG is fail-fast.")]

    # The resource wait polled in three separate task processes: each pause freed the slot.
    polls = (services.dags_folder.parent / "polls.log").read_text().split()
    assert len(polls) == 3 and len(set(polls)) == 3, polls
    assert services.task_outcomes("waiting", runs["waiting"]) == {"load": ("success", 1)}
    logs = "\n".join(
        path.read_text(errors="replace")
        for path in (services.home / "logs").rglob("*")
        if "waiting" in str(path) and path.is_file()
    )
    assert "region is us" in logs

    _screenshot(services, runs["jobs"])


def _screenshot(services: AirflowServices, run_id: str) -> None:
    """The graph of the jobs example in the real UI, taken by headless Chromium (not part of the assertions)."""
    if shutil.which("chromium") is None:
        return
    from tests._chromium import screenshot_url

    url = f"http://127.0.0.1:{services.port}/dags/jobs/runs/{run_id}"
    # The UI keeps the grid/graph choice and the expanded task groups in localStorage.
    storage = {"default_dag_view": json.dumps("graph"), "jobs/open-groups": json.dumps(["job1", "job2"])}
    try:
        target = screenshot_url(url, SCREENS / "airflow-jobs-graph.png", local_storage=storage, settle_s=10)
        print("screenshot:", target, target.exists())
    except Exception as error:  # a screenshot is evidence for people, never a test result
        print("screenshot failed:", error)
