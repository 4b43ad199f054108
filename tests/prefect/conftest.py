"""Harness for the Prefect suite: an isolated Prefect home and one local API per session."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

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

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402


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
