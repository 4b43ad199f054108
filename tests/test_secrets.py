"""`_secrets`: the one list of sensitive key names, and the places that mark or mask by it."""

from __future__ import annotations

import pytest

from task_engine_core import Secret
from task_engine_core._hydrators import ENV_PREFIX, hydrate
from task_engine_core._secrets import SENSITIVE_WORDS, is_sensitive_name
from task_engine_core.sensible_defaults import mask_url

# Every listed word, alone, inside a longer name, and in capitals (environment variables are upper case).
SENSITIVE_NAMES = sorted({name for word in SENSITIVE_WORDS for name in (word, f"db_{word}", f"{word.upper()}_2")})
PLAIN_NAMES = ["host", "region", "url", "user", "port"]


def test_the_predicate_reads_the_one_word_list() -> None:
    assert all(is_sensitive_name(name) for name in SENSITIVE_NAMES)
    assert not any(is_sensitive_name(name) for name in PLAIN_NAMES)
    assert is_sensitive_name("Db_PassWord") and not is_sensitive_name("")


def _marked_by_environment(name: str) -> bool:
    context = hydrate(environ={f"{ENV_PREFIX}SERVICE__{name.upper()}": "v4lue-123"}, cwd="/nonexistent-dir")
    return isinstance(context["service"][name.lower()], Secret)


def _masked_in_url(name: str) -> bool:
    return "v4lue-123" not in mask_url(f"https://api.example/v1?{name}=v4lue-123")


@pytest.mark.parametrize("name", SENSITIVE_NAMES + PLAIN_NAMES)
def test_context_and_http_agree_with_the_word_list(name: str) -> None:
    # A name counts as secret for the environment hydrator exactly when the predicate says so;
    # HTTP query masking covers at least the same names (it adds URL-only markers such as "sig").
    expected = is_sensitive_name(name)
    assert _marked_by_environment(name) is expected
    if expected:
        assert _masked_in_url(name)
    else:
        assert not _masked_in_url(name)
