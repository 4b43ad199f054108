"""Provider metadata: a malformed provider info breaks every Airflow command, so check it as Airflow does."""

from __future__ import annotations

import json
from importlib import metadata

from adapters._provider import DISTRIBUTION, get_provider_info
from airflow_harness import airflow_command


def test_provider_info_passes_airflows_own_schema() -> None:
    from airflow.providers_manager import _create_provider_info_schema_validator

    _create_provider_info_schema_validator().validate(get_provider_info())


def test_entry_point_is_registered_and_names_this_distribution() -> None:
    entry_points = [ep for ep in metadata.entry_points(group="apache_airflow_provider") if ep.dist.name == DISTRIBUTION]
    assert [ep.value for ep in entry_points] == ["adapters._provider:get_provider_info"]
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
