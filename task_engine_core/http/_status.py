"""What a response status asks of a client: the default rule that covers it, the hint for its error, Retry-After."""

from __future__ import annotations

import email.utils
import math
import time

__all__ = ["UNAVAILABLE_STATUSES", "default_rule_name", "retry_after_seconds", "status_hint"]

#: The service is briefly away (or the request timed out on its side): worth a few patient retries.
UNAVAILABLE_STATUSES = frozenset({408, 502, 503, 504})

_STATUS_HINTS = {
    400: "the service rejected the request; check its parameters and body",
    401: "the service did not accept the credentials; check the token or password the task sends",
    403: "the credentials lack permission for this resource; check the account's grants",
    404: "nothing is at this URL; check the address and the identifiers in it",
    409: "the resource is in a conflicting state; check for a concurrent change before repeating it",
    422: "the service could not process the request body; check its fields",
    429: "the service is throttling this client; lower the request rate (see rate_limit)",
}


def status_hint(status: int) -> str:
    """What to do about an error status, in words (the end of an HttpStatusError's message)."""
    return _STATUS_HINTS.get(status) or (
        "the service failed; check its health and logs" if status >= 500 else "the request was not accepted"
    )


def default_rule_name(status: int) -> str | None:
    """The HttpTask attribute whose RetryRule covers `status` by default; None = fail at once (a 4xx)."""
    if status == 429:
        return "too_many_requests"
    if status in UNAVAILABLE_STATUSES:
        return "unavailable"
    return "server_error" if status >= 500 else None


def retry_after_seconds(value: str, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None when unreadable."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # an HTTP date is GMT by definition
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
