"""Helpers of the Airflow tests; importing this sets Airflow's configuration, so import it first."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

# Airflow reads its configuration when it is first imported, so everything it needs is
# set here, before any test module (or fixture) can import it.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="task-engine-airflow-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DATABASE = AIRFLOW_HOME / "airflow.db"
TEMPLATE_DATABASE = AIRFLOW_HOME / "migrated.db"
DAGS_FOLDER.mkdir()

AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{DATABASE}",
}
os.environ.update(AIRFLOW_ENV)
# Standalone runs in these tests must not leave statistics in the working directory.
os.environ.setdefault("TASK_ENGINE_STATS", "off")

REPO_ROOT = Path(__file__).resolve().parents[2]
# The conformance scenarios are imported as `tests.conformance` (by DAG files too).
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Airflow's task-instance states as the engine's states; no state at all means never started,
# and a `skipped` task that the adapter marked NOT_RUN (fail-fast kept it from running) is NOT_RUN.
ENGINE_STATE = {
    "success": "success",
    "failed": "failed",
    "skipped": "skipped",
    "upstream_failed": "upstream_failed",
    None: "not_run",
}


def airflow_command(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run the `airflow` CLI of this virtualenv and return its standard output; fail loudly."""
    completed = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"airflow {' '.join(args)} exited {completed.returncode}\n"
            f"--- stdout ---\n{completed.stdout[-4000:]}\n--- stderr ---\n{completed.stderr[-4000:]}"
        )
    return completed.stdout


def write_scenario_dag(folder: Path, scenario: str, grouped: bool = False) -> Path:
    """Write a DAG file that compiles conformance scenario `scenario` with the adapter.

    `grouped`: every task in a task group, one group per connected part (`connected_groups`).
    """
    groups = ", groups=connected_groups(scenario)" if grouped else ""
    path = folder / f"{scenario}.py"
    path.write_text(
        "# Airflow DAG file of a conformance scenario.\n"
        "from task_engine.airflow import to_airflow_dag\n"
        "from tests.conformance import connected_groups, load\n\n"
        f"scenario = load({scenario!r})\n"
        f"dag = to_airflow_dag(scenario.pipeline, dag_id={scenario!r}, keep_going=scenario.keep_going{groups})\n"
    )
    return path


def load_dag_bag(folder: Path):
    """Parse `folder` the way the DAG processor does; return the DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def run_dag_test(dag, conf: dict | None = None) -> dict[str, tuple[str | None, int]]:
    """Run `dag` once with dag.test() and return {task_id: (final state, try number)}."""
    return _outcomes(dag.test(run_conf=conf))


def run_dag_test_as_engine(dag, conf: dict | None = None) -> dict[str, tuple[str, int]]:
    """Run `dag` once with dag.test() and return {task: (engine state, attempts)}."""
    return dag_test_as_engine(dag, conf)[0]


def dag_test_as_engine(dag, conf: dict | None = None) -> tuple[dict[str, tuple[str, int]], str]:
    """Run `dag` once with dag.test(); return {task: (engine state, attempts)} and the dag run id."""
    engine, _, run_id = _dag_test(dag, conf)
    return engine, run_id


def run_dag_test_with_outputs(dag, conf: dict | None = None) -> tuple[dict[str, tuple[str, int]], dict[str, object]]:
    """Run `dag` once with dag.test(); return {task: (engine state, attempts)} and {task: output} from XCom."""
    engine, outputs, _ = _dag_test(dag, conf)
    return engine, outputs


def _dag_test(dag, conf: dict | None) -> tuple[dict[str, tuple[str, int]], dict[str, object], str]:
    dag_run = dag.test(run_conf=conf)
    marks = engine_marks(DATABASE, dag.dag_id, dag_run.run_id)
    engine = as_engine_outcomes(_outcomes(dag_run), marks)
    mapped = [task_id for task_id, task in dag.task_dict.items() if getattr(task, "is_mapped", False)]
    outputs = xcom_outputs(DATABASE, dag.dag_id, dag_run.run_id)
    for task in mapped:
        roll_up(engine, outputs, task)
    return engine, outputs, dag_run.run_id


def roll_up(engine: dict[str, tuple[str, int]], outputs: dict[str, object], task: str) -> None:
    """Give mapped task `task` the engine's rolled-up state and output from its Airflow instances `task[i]`."""
    from task_engine_core import TaskState
    from task_engine_core._mapping import roll_up_state

    instances = sorted(
        (name for name in engine if name.startswith(f"{task}[")), key=lambda n: int(n[len(task) + 1 : -1])
    )
    if not instances:
        if engine.get(task, ("", 0))[0] == "skipped":
            # Airflow marks a task mapped over an empty list skipped; the engine ends it SUCCESS with [].
            engine[task] = ("success", 0)
            outputs[task] = []
        return  # else it never expanded (its upstream failed): its own state stands
    engine.pop(task, None)
    state = roll_up_state([TaskState(engine[name][0]) for name in instances])
    engine[task] = (state.value, sum(engine[name][1] for name in instances))
    outputs[task] = [outputs.get(name) for name in instances] if state is TaskState.SUCCESS else None


def xcom_outputs(database: Path, dag_id: str, run_id: str) -> dict[str, object]:
    """{task or task[i]: output} of one run, read from Airflow's XCom table and deserialised."""
    from airflow.sdk.serde import deserialize

    with closing(sqlite3.connect(database, timeout=30)) as connection:
        rows = connection.execute(
            "select task_id, map_index, value from xcom where dag_id = ? and run_id = ? and key = 'return_value'",
            (dag_id, run_id),
        ).fetchall()
    outputs: dict[str, object] = {}
    for task_id, map_index, value in rows:
        name = task_id if map_index < 0 else f"{task_id}[{map_index}]"
        # SQLite hands back a JSON number as a number, anything else as its JSON text.
        outputs[name] = None if value is None else deserialize(json.loads(value) if isinstance(value, str) else value)
    return outputs


def run_grouped_dag_test_as_engine(dag, groups: dict[str, list[str]]) -> dict[str, tuple[str, int]]:
    """Run a DAG of task groups with dag.test(); {task: (engine state, attempts)} for every task inside them.

    A group that ran reports its tasks in its XCom; one that never started (or that fail-fast
    kept from starting) gives each of its tasks the group's own state and no attempt.
    """
    from task_engine.airflow import GROUP_STATES_XCOM_KEY

    dag_run = dag.test()
    units = as_engine_outcomes(_outcomes(dag_run), marked_not_run(DATABASE, dag.dag_id, dag_run.run_id))
    inner = xcom_values(DATABASE, dag.dag_id, dag_run.run_id, GROUP_STATES_XCOM_KEY)
    engine: dict[str, tuple[str, int]] = {}
    for group, members in groups.items():
        if group in inner:
            engine.update({task: (value["state"], value["attempts"]) for task, value in inner[group].items()})
        else:
            engine.update({task: (units[group][0], 0) for task in members})
    return engine


def xcom_values(database: Path, dag_id: str, run_id: str, key: str) -> dict[str, object]:
    """{task_id: value} of XCom `key` in one dag run, read from Airflow's SQLite database."""
    with closing(sqlite3.connect(database, timeout=30)) as connection:
        rows = connection.execute(
            "select task_id, value from xcom where dag_id = ? and run_id = ? and key = ?", (dag_id, run_id, key)
        ).fetchall()
    return {task_id: json.loads(value) for task_id, value in rows}


def _outcomes(dag_run) -> dict[str, tuple[str | None, int]]:
    # An instance of a mapped Airflow task is named as the engine names it: Poll[0], Poll[1], ...
    return {
        (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): (
            None if ti.state is None else str(ti.state),
            ti.try_number,
        )
        for ti in dag_run.get_task_instances()
    }


def engine_marks(database: Path, dag_id: str, run_id: str, key: str | None = None) -> dict[str, str]:
    """XCom marks of one run (default: the engine state of tasks ended without an attempt), from Airflow's database."""
    from task_engine.airflow import ENGINE_STATE_XCOM_KEY

    with closing(sqlite3.connect(database, timeout=30)) as connection:
        rows = connection.execute(
            "select task_id, map_index, value from xcom where dag_id = ? and run_id = ? and key = ?",
            (dag_id, run_id, key or ENGINE_STATE_XCOM_KEY),
        ).fetchall()
    return {
        task_id if map_index < 0 else f"{task_id}[{map_index}]": json.loads(value) for task_id, map_index, value in rows
    }


def marked_not_run(database: Path, dag_id: str, run_id: str) -> set[str]:
    """Tasks of one run the adapter marked NOT_RUN (its XCom), read from Airflow's SQLite database."""
    return {task for task, state in engine_marks(database, dag_id, run_id).items() if state == "not_run"}


def as_engine_outcomes(
    outcomes: dict[str, tuple[str | None, int]], marks: Mapping[str, str] | set[str] = frozenset()
) -> dict[str, tuple[str, int]]:
    """{task: (Airflow state, try number)} as {task: (engine state, attempts)}.

    `marks`: the adapter's XCom state of tasks it ended `skipped` without an attempt (a set of
    names means "not_run"): not run, or kept by a resume as success / skipped.
    """
    if not isinstance(marks, Mapping):
        marks = {task: "not_run" for task in marks}
    engine: dict[str, tuple[str, int]] = {}
    for task, (state, tries) in outcomes.items():
        if task in marks:
            # Skipped before its engine attempt started: the engine counts no attempt.
            assert state == "skipped", f"task {task!r} is marked {marks[task]} but ended {state}"
            engine[task] = (marks[task], 0)
        else:
            engine[task] = (ENGINE_STATE[state], tries)
    return engine


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AirflowServices:
    """A real Airflow on 127.0.0.1: api-server, scheduler (LocalExecutor) and dag-processor."""

    def __init__(self, home: Path, dags_folder: Path) -> None:
        """Prepare (do not start) services whose home and database live under `home`."""
        self.home = home
        self.dags_folder = dags_folder
        self.database = home / "airflow.db"
        self.port = free_port()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            # Tokens of the execution API are signed with this; every service must agree on it.
            "AIRFLOW__API_AUTH__JWT_SECRET": "task-engine-tests-only",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        }
        self.processes: dict[str, subprocess.Popen] = {}

    def command(self, *args: str, timeout: float = 300) -> str:
        """Run one `airflow` CLI command against these services' home."""
        return airflow_command(*args, env=self.env, timeout=timeout)

    def start(self) -> None:
        """Migrate the database, then start the three services in their own process groups."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.command("db", "migrate")
        services = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
        }
        for name, args in services.items():
            log = open(self.home / f"{name}.log", "wb")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        self._wait(self._api_is_healthy, 120, "the api-server to answer on 127.0.0.1")

    def stop(self) -> None:
        """Stop the services this object started (their process groups), politely first."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def logs(self) -> str:
        """The last lines of every service log, for assertion messages."""
        parts = []
        for name in ("api-server", "scheduler", "dag-processor"):
            path = self.home / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name} ---\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def query(self, sql: str, *params: object) -> list[tuple]:
        """Read Airflow's metadata database directly (a real SQLite file)."""
        with closing(sqlite3.connect(self.database, timeout=30)) as connection:
            return connection.execute(sql, params).fetchall()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed `dag_id` into the database."""
        self._wait(
            lambda: bool(self.query("select 1 from dag where dag_id = ?", dag_id)),
            timeout,
            f"the dag-processor to register {dag_id!r}",
        )

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Trigger one run of `dag_id` and return its run id."""
        run_id = f"e2e__{time.time_ns()}"
        self.command("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf or {}))
        return run_id

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Wait until the run is finished and return its state."""

        def finished() -> bool:
            rows = self.query("select state from dag_run where dag_id = ? and run_id = ?", dag_id, run_id)
            return bool(rows) and rows[0][0] in ("success", "failed")

        self._wait(finished, timeout, f"run {run_id!r} of {dag_id!r} to finish")
        return self.query("select state from dag_run where dag_id = ? and run_id = ?", dag_id, run_id)[0][0]

    def task_outcomes(self, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
        """{task_id: (state, try number)} of one run."""
        rows = self.query(
            "select task_id, state, try_number from task_instance where dag_id = ? and run_id = ?",
            dag_id,
            run_id,
        )
        return {task_id: (state, try_number) for task_id, state, try_number in rows}

    def engine_outcomes(self, dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
        """{task: (engine state, attempts)} of one run, NOT_RUN marks included."""
        return as_engine_outcomes(self.task_outcomes(dag_id, run_id), marked_not_run(self.database, dag_id, run_id))

    def _api_is_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=2):
                return True
        except OSError:
            return False

    def _wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited with {process.returncode}\n{self.logs()}")
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.logs()}")
