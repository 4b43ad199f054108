"""The Airflow adapter marks Variables and params secret by the core's one sensitive-word list."""

from __future__ import annotations

import pytest

from task_engine.airflow import _mark_sensitive
from task_engine_core import Secret
from task_engine_core._secrets import SENSITIVE_WORDS, is_sensitive_name

SENSITIVE_NAMES = sorted({name for word in SENSITIVE_WORDS for name in (word, f"db_{word}", f"{word.upper()}_2")})
PLAIN_NAMES = ["host", "region", "url", "user", "port"]


@pytest.mark.parametrize("name", SENSITIVE_NAMES + PLAIN_NAMES)
def test_variables_and_params_are_marked_by_the_one_word_list(name: str) -> None:
    # Nested, as a Variable holding a JSON object of sections would be.
    marked = _mark_sensitive({"service": {name: "v4lue-123"}})
    assert isinstance(marked["service"][name], Secret) is is_sensitive_name(name)
    assert is_sensitive_name(name) is (name in SENSITIVE_NAMES)
