"""Shared fixtures for the core test suite (the Airflow and Prefect suites run in their own venvs)."""

from __future__ import annotations

import pytest

# These folders run in their own virtualenvs (see tests/run_all.sh): Airflow and Prefect cannot share one.
collect_ignore = ["airflow", "prefect"]


class Recorder:
    """A listener that keeps every event, for assertions on what a run reported."""

    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def no_sleep():
    """An injectable sleep that records the delays instead of sleeping."""
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)

    sleep.delays = delays  # type: ignore[attr-defined]
    return sleep


@pytest.fixture(autouse=True)
def _private_stats_file(tmp_path_factory, monkeypatch):
    # Each test gets its own statistics file: durations recorded by one test would otherwise
    # reorder the ready tasks of the next (priority by critical path), and nothing lands in the repo.
    monkeypatch.setenv("TASK_ENGINE_STATS", str(tmp_path_factory.mktemp("stats") / "stats.sqlite3"))
