"""Airflow provider metadata: lets `airflow providers list` show Task Engine.

Airflow loads this through the `apache_airflow_provider` entry point of the distribution and
validates it against its provider-info schema on every command, so it must stay small, import
nothing heavy (Airflow itself included) and never raise.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

__all__ = ["DISTRIBUTION", "get_provider_info"]

DISTRIBUTION = "task-engine"
"""The distribution name; Airflow refuses a provider whose package-name differs from it."""


def get_provider_info() -> dict[str, Any]:
    """The provider-info mapping Airflow expects: package-name, name, description, versions."""
    try:
        versions = [metadata.version(DISTRIBUTION)]
    except metadata.PackageNotFoundError:
        versions = []
    return {
        "package-name": DISTRIBUTION,
        "name": "Task Engine",
        "description": "Run Task Engine pipelines as Airflow DAGs\n",
        "versions": versions,
        "integrations": [{"integration-name": "Task Engine", "tags": ["software"]}],
    }
