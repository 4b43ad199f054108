"""From `requests` to HttpErrors: error responses and transport failures translated (secrets masked), and named.

`requests` is imported only by `requests_module()`, on a task's first request; the other
functions use it only when some code has already imported it.
"""

from __future__ import annotations

import sys
from typing import Any

from .._secrets import mask_text
from ..errors import MissingExtraError
from ._errors import HttpConnectionError, HttpStatusError, HttpTimeoutError
from ._urls import mask_query_strings, mask_url, short_url

__all__ = ["as_http_error", "describe_failure", "requests_module", "status_error", "transport_error"]


def requests_module(user: str = "HttpTask") -> Any:
    """The `requests` module, imported now; MissingExtraError naming `user` and the `http` extra when it is missing."""
    try:
        import requests
    except ImportError:
        raise MissingExtraError("requests", "http", user) from None
    return requests


def describe_failure(error: BaseException) -> str:
    """A short phrase for a failure: `429 from GET .../runs/get`, `read timeout on GET /slow`."""
    if isinstance(error, HttpStatusError):
        return f"{error.status} from {error.method} {short_url(error.url)}"
    if isinstance(error, HttpTimeoutError):
        return f"{error.phase} timeout on {error.method} {short_url(error.url)}"
    if isinstance(error, HttpConnectionError):
        return f"no response from {error.method} {short_url(error.url)} ({error.detail})"
    return type(error).__name__


def as_http_error(error: BaseException, snippet_length: int) -> BaseException:
    """Translate a requests exception raised outside a task's session into the HttpError it stands for."""
    # Never imports requests: an error of requests can only exist once something imported it.
    requests = sys.modules.get("requests")
    if requests is None or isinstance(error, (HttpStatusError, HttpConnectionError)):
        return error
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return status_error(error.response, snippet_length)
    if isinstance(error, (requests.Timeout, requests.ConnectionError)):
        request = getattr(error, "request", None)
        method = getattr(request, "method", None) or "?"
        url = getattr(request, "url", None) or ""
        return transport_error(requests, error, method, url, None)
    return error


def status_error(response: Any, snippet_length: int) -> HttpStatusError:
    """The HttpStatusError of an error response: masked URL, and at most `snippet_length` characters of its body."""
    try:
        text = response.text
    except Exception:  # noqa: BLE001 - a body that cannot be decoded is no reason to lose the status
        text = ""
    body = mask_text(" ".join(text.split()))  # before cutting, so a secret cannot straddle the cut
    if len(body) > snippet_length:
        body = body[:snippet_length] + "..."
    request = response.request
    return HttpStatusError(
        method=(getattr(request, "method", None) or "?"),
        url=mask_text(mask_url(response.url or getattr(request, "url", ""))),
        status=response.status_code,
        reason=response.reason or "",
        body=body,
        retry_after=response.headers.get("Retry-After"),
        response=response,
    )


def transport_error(requests: Any, error: BaseException, method: str, url: str, timeout: Any) -> HttpConnectionError:
    """The HttpConnectionError (HttpTimeoutError for a timeout) of a request that got no response."""
    masked = mask_text(mask_url(url))
    root = _root_cause(error)
    read_timeout = isinstance(error, requests.ReadTimeout) or type(root).__name__ == "ReadTimeoutError"
    if isinstance(error, requests.ConnectTimeout) or (isinstance(error, requests.Timeout) and not read_timeout):
        return HttpTimeoutError(method, masked, "connect", _timeout_part(timeout, 0))
    if read_timeout:
        return HttpTimeoutError(method, masked, "read", _timeout_part(timeout, 1))
    detail = mask_query_strings(str(root))
    detail = mask_text(f"{type(root).__name__}: {detail}" if detail else type(root).__name__)
    return HttpConnectionError(method, masked, detail)


def _timeout_part(timeout: Any, index: int) -> float | None:
    part = timeout[index] if isinstance(timeout, tuple) else timeout
    return None if part is None else float(part)


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception requests and urllib3 wrapped (their messages repeat the URL)."""
    cause, seen = error, {id(error)}
    while True:
        inner = getattr(cause, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in getattr(cause, "args", ()) if isinstance(arg, BaseException)), None)
        if inner is None or id(inner) in seen:
            return cause
        seen.add(id(inner))
        cause = inner
