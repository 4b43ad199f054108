"""The Prefect suite's harness is isolated from the user's Prefect configuration."""

import os
from pathlib import Path

from prefect import flow
from prefect.settings import get_current_settings


def test_settings_are_isolated(repo_root: Path) -> None:
    settings = get_current_settings()
    assert str(settings.home) == os.environ["PREFECT_HOME"]
    assert settings.home != Path("~/.prefect").expanduser()
    assert settings.flows.heartbeat_frequency is None
    assert settings.server.analytics_enabled is False
    assert settings.api.url is not None and settings.api.url.startswith("http://127.0.0.1:")
    assert Path.cwd() != repo_root


def test_a_flow_runs_against_the_test_api() -> None:
    @flow(persist_result=False)
    def hello() -> str:
        return "hello"

    state = hello(return_state=True)
    assert state.is_completed()
    assert state.result() == "hello"
