"""Secret values and masking: a Secret never prints its value, known secret texts are masked, and which names are secret.

A `Secret` wraps a value from the context (`!secret`, `!env NAME`, or a hydrator's mark). Its repr
and str are `***`; `.reveal()` returns the value. Every revealed text of three characters or more
is also remembered, with the escaped forms Python commonly renders it in (`repr()` / `!r` with
doubled backslashes, `json.dumps`, `ascii()`, a container's repr, the repr of its UTF-8 bytes), so
`mask_text` — the one masking function, used by every reporter, the CLI, statistics, telemetry
and a logging record factory — can replace it wherever it turns up inside other text.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SENSITIVE_WORDS",
    "is_sensitive_name",
    "Secret",
    "MASK",
    "is_secret",
    "mask_secrets",
    "mask_text",
    "error_text",
    "install_log_masking",
]

MASK = "***"
# Shorter secrets are not searched for inside other text: masking every "ab" would ruin the logs.
_MIN_MASKED_LENGTH = 3

_known: set[str] = set()
# Longest first, so a secret that contains another is masked whole; replaced (never mutated) under
# the lock, so readers on other threads can use it without locking.
_known_longest_first: tuple[str, ...] = ()
_known_lock = threading.Lock()
#: Key names that mark a value secret when they contain one of these words (case-insensitive): the
#: one list for context keys from the environment, Airflow Variables and params, and, with a few
#: URL-only markers added, HTTP query parameters.
SENSITIVE_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "access_key",
    "credential",
    "authorization",
)
_log_masking_installed = False


def is_sensitive_name(name: object) -> bool:
    """True when a key name contains one of SENSITIVE_WORDS (case-insensitive): its value is to be a Secret."""
    lowered = str(name).lower()
    return any(word in lowered for word in SENSITIVE_WORDS)


class Secret:
    """A value that must not be shown: prints as `***`; `.reveal()` gives the value."""

    __slots__ = ("_value",)
    _value: Any

    def __init__(self, value: Any) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        object.__setattr__(self, "_value", value)
        _remember(value)

    def reveal(self) -> Any:
        """The real value: pass it straight to the client that needs it, never to print or log."""
        return self._value

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("Secret is read-only")

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def is_secret(value: object) -> bool:
    """True for a Secret."""
    return isinstance(value, Secret)


def _escaped_once(text: str) -> set[str]:
    """The forms `text` takes inside the escaped renderings a Python program commonly produces."""
    forms = {
        repr(text)[1:-1],  # repr(), {x!r}, %r, a container's repr (quotes chosen by Python)
        repr(text + "'\"")[1:-3],  # ... the same inside a repr that had to escape its quotes
        ascii(text)[1:-1],  # ascii(): non-ASCII as \xe9 / \u20ac
        json.dumps(text)[1:-1],  # json.dumps (ensure_ascii, the default)
        json.dumps(text, ensure_ascii=False)[1:-1],
        repr(text.encode("utf-8", "surrogateescape"))[2:-1],  # repr of the encoded bytes: b'caf\xc3\xa9'
    }
    forms.discard(text)
    return forms


def _renderings(text: str) -> set[str]:
    """`text` and its escaped forms, escaped up to twice (a repr of an error whose message holds a repr)."""
    once = _escaped_once(text)
    twice = {form for escaped in once for form in _escaped_once(escaped)}
    return {text} | once | twice


def _remember(value: Any) -> None:
    text = str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    if text is None or len(text) < _MIN_MASKED_LENGTH:
        return
    global _known_longest_first
    with _known_lock:
        if text not in _known:
            _known.update(_renderings(text))
            _known_longest_first = tuple(sorted(_known, key=len, reverse=True))


def mask_text(text: str) -> str:
    """`text` with every known secret value replaced by `***`, also where it appears escaped (repr, json, ascii)."""
    secrets = _known_longest_first
    if not secrets or not text:
        return text
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def error_text(error: BaseException | None) -> str:
    """`str(error)` with secrets masked; an error whose `__str__` raises reads as Python shows it, not as a crash."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ in a task's error must not cost a report
        return "<exception str() failed>"
    return mask_text(text)


def mask_secrets(value: Any) -> Any:
    """A copy safe to show: Secrets become `***`, mappings and sequences are copied, text and errors are masked.

    Use it for anything derived from the context that goes into a report, a span, a log or statistics.
    """
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Mapping):
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, BaseException):
        return error_text(value)
    return value


def install_log_masking() -> None:
    """Mask known secret texts in every log record created from now on (idempotent).

    A record factory rather than a handler filter, so every handler — including ones added
    later, pytest's and OpenTelemetry's — sees the masked message.
    """
    global _log_masking_installed
    with _known_lock:
        if _log_masking_installed:
            return
        _log_masking_installed = True
    previous = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _known_longest_first:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a broken format string is logging's to report, not ours
                return record
            masked = mask_text(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(masked_record)
