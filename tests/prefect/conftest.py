"""Harness for the Prefect suite: an isolated Prefect home and one local API per session."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Prefect reads its settings (environment, profiles, ./prefect.toml, ./pyproject.toml
# [tool.prefect], ./.env) when it is imported, so isolation has to happen before the
# first `import prefect`: drop inherited PREFECT_* variables, point PREFECT_HOME at a
# temporary directory and run from an empty working directory.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="task-engine-prefect-"))
_HOME = _SESSION_DIR / "home"
_WORKDIR = _SESSION_DIR / "work"
_HOME.mkdir()
_WORKDIR.mkdir()
for _key in [k for k in os.environ if k.startswith("PREFECT_")]:
    del os.environ[_key]
os.environ.update(
    {
        "PREFECT_HOME": str(_HOME),
        "PREFECT_PROFILES_PATH": str(_HOME / "profiles.toml"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # The test server on a shared 2-core machine can be slow to come up.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }
)
os.chdir(_WORKDIR)
# flows/ and tests/conformance/ are plain folders next to the installed packages.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from prefect.client.orchestration import get_client  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402
from prefect.client.schemas.objects import TaskRun  # noqa: E402
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from task_engine_core import Pipeline  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    """Run the whole session against one temporary Prefect API (building it costs ~15 s)."""
    # Heartbeats cannot be switched off through the environment (None is not a valid
    # value there); without this every in-process flow run waits ~1 s at its end.
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=90):
            yield


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout the suite is testing."""
    return ROOT


def read_task_runs(flow_run_id: UUID, expected: int, timeout: float = 30.0) -> dict[str, TaskRun]:
    """Task name -> task run of a flow run as Prefect's API records it (waits for it to catch up)."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if len(runs) >= expected and all(r.state is not None and r.state.is_final() for r in runs):
                # Task run names are "<task name>-<3 hex digits>".
                return {r.name.rsplit("-", 1)[0]: r for r in runs}
            if time.monotonic() > deadline:
                raise AssertionError(f"Prefect's API did not record {expected} final task runs in {timeout} s: {runs}")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def task_runs() -> Callable[[UUID, int], dict[str, TaskRun]]:
    """Read a flow run's task runs from Prefect's API: `task_runs(flow_run_id, expected_count)`."""
    return read_task_runs


@pytest.fixture(autouse=True)
def private_stats_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test records statistics in a file of its own, so one test's durations never reorder another's tasks."""
    monkeypatch.setenv("TASK_ENGINE_STATS", str(tmp_path_factory.mktemp("stats") / "stats.sqlite3"))


@pytest.fixture(scope="session")
def two_task_chain() -> Callable[[str], Pipeline]:
    """Make the smallest pipeline with an edge: `two_task_chain(name)` is `first` -> `second`, both no-ops."""

    def make(name: str) -> Pipeline:
        pipeline = Pipeline(name)

        @pipeline.register
        def first() -> None:
            pass

        @pipeline.register(depends_on=first)
        def second() -> None:
            pass

        return pipeline

    return make
