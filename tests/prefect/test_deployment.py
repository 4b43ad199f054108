"""The example flows deploy by entrypoint and run on a worker or runner against Prefect's API."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.deployments.runner import RunnerDeployment
from prefect.runner import Runner
from prefect.settings import get_current_settings
from prefect.workers.process import ProcessWorker

from task_engine_core._stats import StatsStore

SEED_RUN_1 = {  # TASK_ENGINE_EXAMPLE_SEED=7: Task1 answers 500 then 200 (the seed README's Run 1)
    "BaseTask": ("Completed", 1),
    "Task1": ("Completed", 2),
    "AlwaysFailsTask": ("Skipped", 3),
    "Task2": ("Completed", 1),
}
JOBS = {name: ("Completed", 1) for name in ("Job2Task1", "Job2Task2", "Job1Task1", "Job1Task2")}


@pytest.fixture
def seeded_examples(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Flow-run processes inherit this environment: the `tasks` example answers like Run 1."""
    monkeypatch.setenv("TASK_ENGINE_EXAMPLE_SEED", "7")
    yield


def prefect_cli(*args: str, cwd: Path) -> str:
    env = dict(os.environ, PREFECT_API_URL=get_current_settings().api.url or "", COLUMNS="160")
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def final_flow_run(flow_run_id: Any) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def states_of(runs: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {name: (run.state.name, run.run_count) for name, run in runs.items()}


def test_prefect_deploy_then_a_process_worker_runs_the_tasks_example(
    repo_root: Path, seeded_examples: None, task_runs: Any
) -> None:
    prefect_cli("work-pool", "create", "task-engine", "--type", "process", cwd=repo_root)
    out = prefect_cli("deploy", "--all", "--prefect-file", "flows/prefect.yaml", cwd=repo_root)
    assert "Deployment 'tasks/tasks' successfully created" in out
    assert "Deployment 'jobs/jobs' successfully created" in out

    flow_run = run_deployment("tasks/tasks", timeout=0)

    async def work_once() -> None:
        async with ProcessWorker(work_pool_name="task-engine") as worker:
            await worker.get_and_submit_flow_runs()

    asyncio.run(work_once())
    finished = final_flow_run(flow_run.id)
    assert (finished.state.type.value, finished.state.name) == ("COMPLETED", "Completed")
    assert states_of(task_runs(flow_run.id, len(SEED_RUN_1))) == SEED_RUN_1
    # The flow-run process the worker started recorded the run where TASK_ENGINE_STATS says (the
    # environment it inherited): one `runs` row, one `task_runs` row per task, and the estimates
    # priority reads on the next run, on any backend.
    with sqlite3.connect(os.environ["TASK_ENGINE_STATS"]) as connection:
        runs = connection.execute("SELECT run_id, pipeline, tasks, outcome FROM runs").fetchall()
        rows = connection.execute("SELECT run_id, task, state, attempts FROM task_runs").fetchall()
    assert [run[1:] for run in runs] == [("examples.tasks", len(SEED_RUN_1), "success")]
    assert {task: (state, attempts) for _, task, state, attempts in rows} == {
        "BaseTask": ("success", 1),
        "Task1": ("success", 2),
        "AlwaysFailsTask": ("skipped", 3),
        "Task2": ("success", 1),
    }
    assert {run_id for run_id, *_ in rows} == {runs[0][0]}
    assert set(StatsStore(os.environ["TASK_ENGINE_STATS"]).expected_durations("examples.tasks")) == set(SEED_RUN_1)

    # What a Prefect user looks at (printed with `pytest -s`, not asserted): the CLI's list and the
    # UI's graph of this flow run, taken by headless Chromium from the real server.
    print(prefect_cli("flow-run", "ls", "--flow-name", "tasks", cwd=repo_root))
    print(states_of(task_runs(flow_run.id, len(SEED_RUN_1))))
    _screenshot(f"/runs/flow-run/{flow_run.id}", "prefect-tasks-flow-run.png")


def _screenshot(path: str, name: str) -> None:
    """A PNG of a page of the real Prefect UI in test-artifacts/ (or TASK_ENGINE_SCREENS), when chromium is here.

    The test server serves no UI, so a second real server (`prefect server start --no-services`, the
    UI on) is started on the same database for the picture only, and stopped.
    """
    if shutil.which("chromium") is None:
        return
    import socket
    import time
    import urllib.request

    from tests._chromium import screenshot_url

    screens = Path(os.environ.get("TASK_ENGINE_SCREENS", Path(__file__).resolve().parents[2] / "test-artifacts"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = get_current_settings().server.database.connection_url
    env = dict(
        os.environ,
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database.get_secret_value() if database else "",
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        + ["--no-services", "--ui", "--analytics-off"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        target = screenshot_url(f"http://127.0.0.1:{port}{path}", screens / name, settle_s=10)
        print("screenshot:", target, target.exists())
    except Exception as error:  # a screenshot is evidence for people, never a test result
        print("screenshot failed:", error)
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_a_runner_serves_a_deployment_by_entrypoint(repo_root: Path, task_runs: Any) -> None:
    runner = Runner(name="task-engine-test-runner", pause_on_shutdown=False)
    entrypoint = f"{repo_root / 'flows' / 'example_flows.py'}:jobs_flow"
    runner.add_deployment(RunnerDeployment.from_entrypoint(entrypoint, name="jobs-by-runner"))

    flow_run = run_deployment("jobs/jobs-by-runner", timeout=0)
    asyncio.run(runner.start(run_once=True))

    finished = final_flow_run(flow_run.id)
    assert (finished.state.type.value, finished.state.name) == ("COMPLETED", "Completed")
    assert states_of(task_runs(flow_run.id, len(JOBS))) == JOBS


def test_flow_deploy_of_a_bound_flow_runs_on_a_process_worker(
    repo_root: Path, task_runs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="task-engine-deploy", type="process"), overwrite=True)
    monkeypatch.chdir(repo_root)  # Prefect records the entrypoint relative to here, and the worker runs from here
    # A module-path entrypoint must be importable in the flow-run process the worker starts, as
    # for any Prefect module-path deployment: the repository goes on its PYTHONPATH.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")])))
    from prefect.types.entrypoint import EntrypointType

    from flows.example_flows import jobs_flow

    # Without an image or remote storage Prefect deploys a local flow by its module path only.
    jobs_flow.deploy(
        name="by-deploy",
        work_pool_name="task-engine-deploy",
        print_next_steps=False,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("jobs/by-deploy")
    assert deployment.entrypoint == "flows.example_flows.jobs_flow"

    flow_run = run_deployment("jobs/by-deploy", timeout=0, parameters={"only": None, "params": {"env": "deployed"}})

    async def work_once() -> None:
        async with ProcessWorker(work_pool_name="task-engine-deploy") as worker:
            await worker.get_and_submit_flow_runs()

    asyncio.run(work_once())
    finished = final_flow_run(flow_run.id)
    assert (finished.state.type.value, finished.state.name) == ("COMPLETED", "Completed")
    assert states_of(task_runs(flow_run.id, len(JOBS))) == JOBS
