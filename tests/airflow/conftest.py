"""Fixtures of the Airflow tests: a private AIRFLOW_HOME, one migrated SQLite database per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Must come before anything imports airflow: it sets AIRFLOW_HOME and friends.
from airflow_harness import AIRFLOW_HOME, DAGS_FOLDER, DATABASE, TEMPLATE_DATABASE, airflow_command


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the private AIRFLOW_HOME."""
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_database() -> Path:
    """Migrate one database per session (`airflow db migrate` takes seconds) and keep it as a template."""
    airflow_command("db", "migrate")
    shutil.copyfile(DATABASE, TEMPLATE_DATABASE)
    return TEMPLATE_DATABASE


@pytest.fixture()
def airflow_db(migrated_database: Path) -> Path:
    """Give the test a fresh copy of the migrated database at the configured path."""
    from airflow import settings

    # Drop pooled connections first: they would keep pointing at the replaced file.
    if settings.Session is not None:
        settings.Session.remove()
    if settings.engine is not None:
        settings.engine.dispose()
    shutil.copyfile(migrated_database, DATABASE)
    return DATABASE


@pytest.fixture()
def dags_folder(airflow_db: Path) -> Iterator[Path]:
    """An empty DAG folder: dag.test() re-parses the whole folder, so tests must not share one."""
    for entry in DAGS_FOLDER.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    yield DAGS_FOLDER
