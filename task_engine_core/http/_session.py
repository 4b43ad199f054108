"""The `requests.Session` of one HTTP task: its timeouts, per-request rate-limit tokens, HttpErrors on failure.

The class is built on first use, so that importing this package does not import `requests`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from ._failures import requests_module, status_error, transport_error

if TYPE_CHECKING:
    from ._tasks import HttpTask

__all__ = ["session_class"]


@functools.cache
def session_class() -> type:
    """The TaskSession class (a `requests.Session` subclass); imports `requests`, or raises MissingExtraError."""
    requests = requests_module()

    class TaskSession(requests.Session):  # type: ignore[misc, name-defined]
        """A requests Session of one task: timeouts, per-request rate limits, HttpError on failure."""

        def __init__(self, task: HttpTask) -> None:
            super().__init__()
            self.task = task
            self._prepaid: dict[str, float] = {}
            self._prepaid_attempt: tuple[int, int] | None = None
            self._lock = threading.Lock()

        def request(
            self,
            method: str,
            url: str,
            *args: Any,
            rate_limit_key: str | None = None,
            raise_for_status: bool = True,
            **kwargs: Any,
        ) -> Any:
            """Send one request; `rate_limit_key` takes a token of that key too; 4xx/5xx raise HttpStatusError."""
            task = self.task
            timeout = kwargs.setdefault("timeout", (task.connect_timeout, task.read_timeout))
            with self._rate_limited(method, url, rate_limit_key):
                try:
                    response = super().request(method, url, *args, **kwargs)
                except (requests.Timeout, requests.ConnectionError) as error:
                    request = getattr(error, "request", None)
                    sent = getattr(request, "url", None) or url
                    raise transport_error(requests, error, method.upper(), sent, timeout) from None
            if raise_for_status and response.status_code >= 400:
                raise status_error(response, task.body_snippet_length)
            return response

        @contextmanager
        def _rate_limited(self, method: str, url: str, extra_key: str | None) -> Iterator[None]:
            limits = self._limits_for(method, url, extra_key)
            if not limits:
                yield
                return
            from .._policies import rate_limited

            with ExitStack() as stack:
                for key, tokens, timeout, limiter in limits:
                    stack.enter_context(
                        rate_limited(key, tokens, timeout=timeout, limiter=limiter, attempt=self.task.attempt_state)
                    )
                yield

        def _limits_for(self, method: str, url: str, extra_key: str | None) -> list[tuple[str, float, Any, Any]]:
            """(key, tokens, timeout, limiter) to take now: @rate_limit keys, the task's key, the call's key."""
            run = self.task.attempt_state
            limits: list[tuple[str, float, Any, Any]] = []
            covered: set[str] = set()
            if run is not None:
                guards = _rate_limit_guards(run.policies.guards)
                with self._lock:
                    # The @rate_limit guard already took one token for this attempt: that token pays
                    # for the attempt's first request of the key, later requests take their own.
                    identity = (id(run), run.attempt)
                    if self._prepaid_attempt != identity:
                        self._prepaid_attempt = identity
                        self._prepaid = {guard.key: 1 for guard in guards}
                    for guard in guards:
                        covered.add(guard.key)
                        if self._prepaid.get(guard.key):
                            self._prepaid[guard.key] -= 1
                        else:
                            limits.append((guard.key, guard.tokens, guard.timeout, guard.limiter))
            for key in (self.task.rate_limit_key_for(method, url), extra_key):
                if key is not None and key not in covered:
                    covered.add(key)
                    limits.append((key, 1, None, self.task.rate_limiter))
            return limits

    return TaskSession


def _rate_limit_guards(guards: tuple[Any, ...]) -> list[Any]:
    try:
        from .._policies._ratelimit import RateLimitGuard
    except ImportError:  # the rate limiter is not part of this build
        return []
    return [guard for guard in guards if isinstance(guard, RateLimitGuard)]
