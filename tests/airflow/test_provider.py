"""Provider metadata: a malformed provider info breaks every Airflow command, so check it as Airflow does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

from airflow_harness import airflow_command

from task_engine._provider import DISTRIBUTION, get_provider_info


def test_provider_info_passes_airflows_own_schema() -> None:
    from airflow.providers_manager import _create_provider_info_schema_validator

    _create_provider_info_schema_validator().validate(get_provider_info())


def test_entry_point_is_registered_and_names_this_distribution() -> None:
    entry_points = [ep for ep in metadata.entry_points(group="apache_airflow_provider") if ep.dist.name == DISTRIBUTION]
    assert [ep.value for ep in entry_points] == ["task_engine._provider:get_provider_info"]
    # Airflow refuses a provider whose package-name differs from its distribution's name.
    assert entry_points[0].load()()["package-name"] == DISTRIBUTION


def test_provider_info_carries_the_installed_version() -> None:
    assert get_provider_info()["versions"] == [metadata.version(DISTRIBUTION)]


def test_airflow_providers_list_shows_task_engine() -> None:
    providers = json.loads(airflow_command("providers", "list", "--output", "json"))
    ours = [provider for provider in providers if provider["package_name"] == DISTRIBUTION]
    assert ours == [
        {
            "package_name": "task-engine",
            "description": "Run Task Engine pipelines as Airflow DAGs",
            "version": metadata.version(DISTRIBUTION),
        }
    ]


EXAMPLE_DAG_DISCOVERY = """
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.providers_manager import ProvidersManager
print("providers:", " ".join(sorted(ProvidersManager().providers)))
DagBundlesManager()
"""


def test_load_examples_finds_the_provider_module_without_an_error_in_the_log() -> None:
    # With load_examples, Airflow imports each provider's package-name with '-' as '_' (task_engine)
    # to look for an example_dags folder; a missing module logs an error with a traceback.
    done = subprocess.run(
        [sys.executable, "-c", EXAMPLE_DAG_DISCOVERY],
        env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "True"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert DISTRIBUTION in log.split("providers:", 1)[1].split("\n", 1)[0].split()  # our provider was looked at
    assert "DAG bundles loaded: dags-folder, example_dags" in log  # load_examples took effect
    assert "Could not load provider module" not in log, log
