"""The HTTP errors: what failed (method, masked URL) and what to do, all TaskEngineErrors."""

from __future__ import annotations

from ..errors import TaskEngineError
from ._status import status_hint

__all__ = ["HttpConnectionError", "HttpError", "HttpStatusError", "HttpTimeoutError"]


class HttpError(TaskEngineError):
    """An HTTP request made by a task failed; `method` and `url` (secrets masked) say which."""

    def __init__(self, message: str, method: str, url: str) -> None:
        self.method = method
        self.url = url
        super().__init__(message)


class HttpStatusError(HttpError):
    """A response came back with an error status (4xx or 5xx); `response` is the requests Response."""

    def __init__(
        self,
        method: str,
        url: str,
        status: int,
        reason: str = "",
        body: str = "",
        retry_after: str | None = None,
        response: object | None = None,
    ) -> None:
        self.status = status
        self.response = response
        self.reason = reason
        self.body = body
        self.retry_after = retry_after
        title = f"{status} {reason}".strip()
        body_part = f"; body: {body!r}" if body else "; empty body"
        super().__init__(f"{title} from {method} {url}{body_part}; {status_hint(status)}", method, url)


class HttpConnectionError(HttpError):
    """No response: the connection was refused, reset or closed by the server."""

    def __init__(self, method: str, url: str, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"{method} {url} got no response ({detail}); check that the service is running and reachable",
            method,
            url,
        )


class HttpTimeoutError(HttpConnectionError):
    """The connection or the response took longer than the task's timeout."""

    def __init__(self, method: str, url: str, phase: str, seconds: float | None) -> None:
        self.phase = phase
        self.seconds = seconds
        limit = f"{seconds:g} s" if seconds is not None else "its limit"
        HttpError.__init__(
            self,
            f"{method} {url} timed out: no {'connection' if phase == 'connect' else 'response'} within {limit} "
            f"({phase}_timeout); raise {phase}_timeout on the task if the service is this slow",
            method,
            url,
        )
        self.detail = f"{phase} timeout"
