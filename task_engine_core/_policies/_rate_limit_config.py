"""The rate-limit keys of a context file: `rate_limits:` into RateLimit objects, `rate_limit_store:` into a store.

Pure reading: nothing here configures a limiter (`_limiter.apply_context_rate_limits` does), so the
limiter, the pre-run checks and the workers' lazy self-configuration all parse through this one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgumentError
from ._bucket import PERIODS, RateLimit
from ._bucket_stores import bucket_store

__all__ = ["context_store", "parse_rate_limits"]


def parse_rate_limits(section: Any, where: str = "rate_limits") -> list[RateLimit]:
    """Read a `rate_limits:` mapping: key -> rate | {rate, burst, per} | a list of those."""
    if not isinstance(section, Mapping):
        raise InvalidArgumentError(
            f"{where} must map keys to limits (e.g. '/jobs/runs/get': {{rate: 30}}), not {type(section).__name__}"
        )
    limits = []
    for key, spec in section.items():
        for item in spec if isinstance(spec, (list, tuple)) else [spec]:
            limits.append(_parse_one(str(key), item, f"{where}.{key}"))
    return limits


def _parse_one(key: str, spec: Any, where: str) -> RateLimit:
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"rate", "burst", "per"}
        if unknown or "rate" not in spec:
            problem = f"unknown field(s) {', '.join(sorted(map(str, unknown)))}" if unknown else "no rate"
            raise InvalidArgumentError(f"{where}: {problem}; a limit has rate, and optionally burst and per")
        rate, burst, per = spec["rate"], spec.get("burst"), spec.get("per", 1.0)
    else:
        rate, burst, per = spec, None, 1.0
    try:
        return RateLimit(key, _number(rate), None if burst is None else _number(burst), _period(per))
    except InvalidArgumentError as error:
        raise InvalidArgumentError(f"{where}: {error}") from None


def _number(value: Any) -> Any:
    # Values from environment variables arrive as strings; RateLimit refuses whatever is not a number.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _period(value: Any) -> Any:
    return value if isinstance(value, str) and value in PERIODS else _number(value)


def context_store(context: Mapping[str, Any]) -> Any:
    """The bucket store a context's `rate_limit_store:` URL names (a Secret is revealed, never logged)."""
    value = context["rate_limit_store"]
    reveal = getattr(value, "reveal", None)  # a Secret: the URL may carry a password
    url = reveal() if callable(reveal) else value
    if not isinstance(url, str):
        raise InvalidArgumentError(
            f"context key rate_limit_store must be a URL such as redis://HOST:PORT/DB, not {type(url).__name__}"
        )
    return bucket_store(url, "context key rate_limit_store")
