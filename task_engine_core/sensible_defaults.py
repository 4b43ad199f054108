"""HTTP tasks with sensible defaults: a Task whose `requests` calls are retried by status code.

Extend `SensibleDefaultsRequests` instead of `Task` when a task talks to an HTTP API. The task gets
`self.session` (a `requests.Session` with connect/read timeouts that raises on error statuses) and a
`retry_handler` that decides per status code or failure kind. The retry loop stays the core's: the
handler receives the AttemptState and answers a `HandlerDecision` (retry after seconds, or give up)
with its reason, so the decision shows up in `RetryScheduled.reason` and `TaskResult.reason` on every backend.

Importing this module loads the standard library only; `requests` is imported on first use
(install it with `pip install 'task-engine[http]'`).
"""

from __future__ import annotations

import email.utils
import functools
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from ._attempt import AttemptState, HandlerDecision
from ._policies import Backoff, RetryPolicy, attach, stored_settings
from ._secrets import SENSITIVE_WORDS, mask_text
from ._task import Task
from .errors import (
    HttpConnectionError,
    HttpStatusError,
    HttpTimeoutError,
    InvalidArgumentError,
    MissingExtraError,
)

__all__ = [
    "NO_RETRY",
    "RetryRule",
    "SensibleDefaultsRequests",
    "mask_url",
    "retry_after_seconds",
]


@dataclass(frozen=True)
class RetryRule:
    """Retry one kind of failure at most `retries` times, waiting `backoff` (or Retry-After, if honoured)."""

    retries: int
    backoff: Backoff = field(default_factory=lambda: Backoff.exponential(1.0, 2.0))
    honour_retry_after: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidArgumentError(
                f"RetryRule(retries={self.retries!r}): retries is how often this failure is retried, an integer >= 0"
            )
        if not isinstance(self.backoff, Backoff):
            raise InvalidArgumentError(f"RetryRule(backoff={self.backoff!r}): backoff must be a Backoff")


#: Fail at once: the rule of 400, 401, 403, 404, 409, 422 and every other 4xx.
NO_RETRY = RetryRule(retries=0)

#: Query parameters whose values never appear in messages (matched as substrings, case-insensitively):
#: the sensitive words of context keys, plus short markers usual in URLs that would over-match key
#: names ("key", "auth", "sig", ...).
SECRET_QUERY_MARKERS = (*SENSITIVE_WORDS, "pwd", "key", "signature", "sig", "auth", "session")


class _ClassDefaultRetry(RetryPolicy):
    """The attempt budget a SensibleDefaultsRequests class derives from its rules (no explicit @retries)."""


class SensibleDefaultsRequests(Task):
    """A Task for HTTP APIs: `self.session` has timeouts, and failures are retried by status code.

    Defaults (class attributes; override them in a subclass):
    429 -> 3 retries after 1 s, 2 s, 4 s, or after Retry-After when it is at most `max_retry_after`;
    502/503/504/408, dropped connections and timeouts -> 3 retries, exponential backoff with jitter;
    500 and other 5xx -> 2 retries; 400/401/403/404/409/422 and other 4xx -> fail at once;
    any other exception -> not retried (override `retry_handler` to change that).
    """

    #: Seconds to wait for the connection, and then for each read of the response.
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: 429 Too Many Requests.
    too_many_requests: RetryRule = RetryRule(3, Backoff.exponential(1.0, 2.0), honour_retry_after=True)
    #: 502, 503, 504, 408, connection errors and timeouts: the service is briefly away.
    unavailable: RetryRule = RetryRule(
        3, Backoff.exponential(1.0, 2.0, maximum=30.0, jitter=0.5), honour_retry_after=True
    )
    #: 500 and other 5xx: often a bug on the server, so only a couple of tries.
    server_error: RetryRule = RetryRule(2, Backoff.exponential(1.0, 2.0, jitter=0.5))
    #: The longest Retry-After honoured; a longer demand fails the task at once.
    max_retry_after: float = 60.0
    #: Per-status overrides, merged over the base classes' (e.g. {404: RetryRule(2)} to wait for a resource).
    status_rules: Mapping[int, RetryRule] = {}
    #: Per-exception overrides, matched along the error's class hierarchy before the status rules.
    exception_rules: Mapping[type[BaseException], RetryRule] = {}
    #: Characters of the response body quoted in an HttpStatusError.
    body_snippet_length: int = 200
    #: The RateLimiter for keys from `rate_limit_key_for` and `rate_limit_key=`; None = the process-wide one.
    rate_limiter: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("status_rules", "exception_rules"):
            merged: dict[Any, RetryRule] = {}
            for klass in reversed(cls.__mro__):
                merged.update(klass.__dict__.get(name) or {})
            setattr(cls, name, merged)
        _attach_default_attempts(cls)

    # -- the session ------------------------------------------------------------------------
    @functools.cached_property
    def session(self) -> Any:
        """A `requests.Session` for this task: timeouts, per-request rate limits, errors raised by status."""
        return _session_class()(self)

    def rate_limit_key_for(self, method: str, url: str) -> str | None:
        """The rate-limit key of one request, taken on top of `@rate_limit` keys; None = no extra key."""
        return None

    # -- deciding -------------------------------------------------------------------------------
    def retry_handler(self, error: Exception, state: AttemptState | None = None) -> HandlerDecision:
        """Decide by the failure's rule; the reason is reported in RetryScheduled and TaskResult.reason."""
        run = state if state is not None else self.attempt_state
        attempt = run.attempt if run is not None else 1
        max_attempts = run.max_attempts if run is not None else self.default_attempts()
        decision, reason = self.decide(error, attempt, max_attempts)
        if decision is False or decision is None:
            return HandlerDecision.give_up(reason)
        return HandlerDecision.retry_after(None if decision is True else float(decision), reason)

    def decide(self, error: BaseException, attempt: int, max_attempts: int) -> tuple[float | bool, str]:
        """After failed attempt `attempt`: (False or seconds to wait, the reason in words)."""
        rule = self.rule_for(error)
        error = _as_http_error(error, self.body_snippet_length)
        what = describe_failure(error)
        if rule is None:
            return False, f"{what} is not an HTTP failure; not retried (override retry_handler to retry it)"
        if rule.retries == 0:
            return False, f"{what}: not retried"
        if attempt > rule.retries:
            return False, f"{what}: giving up after {rule.retries} {'retry' if rule.retries == 1 else 'retries'}"
        delay = rule.backoff.delay(attempt)
        source = ""
        if rule.honour_retry_after and isinstance(error, HttpStatusError) and error.retry_after:
            asked = retry_after_seconds(error.retry_after)
            if asked is not None and asked > self.max_retry_after:
                return False, (
                    f"{what}: Retry-After asks for {asked:.1f} s, more than max_retry_after "
                    f"({self.max_retry_after:g} s); failing now instead of waiting"
                )
            if asked is not None:
                delay, source = asked, " as Retry-After asks"
        return delay, f"{what}, retrying in {delay:.1f} s{source} (attempt {attempt + 1} of {max_attempts})"

    def rule_for(self, error: BaseException) -> RetryRule | None:
        """The rule for `error`: exception_rules, then status_rules, then the defaults; None = not HTTP."""
        translated = _as_http_error(error, self.body_snippet_length)
        # The session's errors keep the requests exception they replace as __context__, so a rule
        # may name either (HttpTimeoutError or requests.Timeout).
        wrapped = error.__context__ if isinstance(error, (HttpStatusError, HttpConnectionError)) else None
        for candidate in (c for c in (error, translated, wrapped) if c is not None):
            for klass in type(candidate).__mro__:
                if klass in self.exception_rules:
                    return self.exception_rules[klass]
        error = translated
        if isinstance(error, HttpStatusError):
            status = error.status
            if status in self.status_rules:
                return self.status_rules[status]
            if status == 429:
                return self.too_many_requests
            if status in (408, 502, 503, 504):
                return self.unavailable
            return self.server_error if status >= 500 else NO_RETRY
        if isinstance(error, HttpConnectionError):  # timeouts included
            return self.unavailable
        return None

    @classmethod
    def default_attempts(cls) -> int:
        """Total attempts the rules can use: one plus the most retries any rule allows (4 by default)."""
        rules = [cls.too_many_requests, cls.unavailable, cls.server_error]
        rules += [*cls.status_rules.values(), *cls.exception_rules.values()]
        return 1 + max(rule.retries for rule in rules)


def _attach_default_attempts(cls: type[SensibleDefaultsRequests]) -> None:
    # An explicit @retries (on this class, a base, or perform_task) wins; only a derived budget is replaced.
    inherited = stored_settings(cls).get("retry")
    if inherited is None or isinstance(inherited, _ClassDefaultRetry):
        attach(cls, retry=_ClassDefaultRetry(attempts=cls.default_attempts()))


_attach_default_attempts(SensibleDefaultsRequests)


# -- describing failures and URLs --------------------------------------------------------------------
def mask_url(url: str) -> str:
    """`url` with the password and the values of secret-looking query parameters replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = "&".join(
        f"{quote(name, safe='')}={'***' if _is_secret(name) else quote(value, safe='')}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_QUERY_MARKERS)


def short_url(url: str) -> str:
    """The end of `url`'s path for one-line reasons: `.../runs/get`."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    if len(segments) > 2:
        return ".../" + "/".join(segments[-2:])
    return "/" + "/".join(segments)


def describe_failure(error: BaseException) -> str:
    """A short phrase for a failure: `429 from GET .../runs/get`, `read timeout on GET /slow`."""
    if isinstance(error, HttpStatusError):
        return f"{error.status} from {error.method} {short_url(error.url)}"
    if isinstance(error, HttpTimeoutError):
        return f"{error.phase} timeout on {error.method} {short_url(error.url)}"
    if isinstance(error, HttpConnectionError):
        return f"no response from {error.method} {short_url(error.url)} ({error.detail})"
    return type(error).__name__


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
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def _as_http_error(error: BaseException, snippet_length: int) -> BaseException:
    """Translate a requests exception raised outside `self.session` into the HttpError it stands for."""
    requests = _loaded_requests()
    if requests is None or isinstance(error, (HttpStatusError, HttpConnectionError)):
        return error
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return _status_error(error.response, snippet_length)
    if isinstance(error, (requests.Timeout, requests.ConnectionError)):
        request = getattr(error, "request", None)
        method = getattr(request, "method", None) or "?"
        url = getattr(request, "url", None) or ""
        return _transport_error(requests, error, method, url, None)
    return error


# -- the requests side (imported lazily) -----------------------------------------------------------
def _requests() -> Any:
    try:
        import requests
    except ImportError:
        raise MissingExtraError("requests", "http", "SensibleDefaultsRequests") from None
    return requests


def _loaded_requests() -> Any:
    import sys

    return sys.modules.get("requests")


def _status_error(response: Any, snippet_length: int) -> HttpStatusError:
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


_QUERY = re.compile(r"\?[^\s'\")]*")


def _transport_error(requests: Any, error: BaseException, method: str, url: str, timeout: Any) -> HttpConnectionError:
    masked = mask_text(mask_url(url))
    root = _root_cause(error)
    read_timeout = isinstance(error, requests.ReadTimeout) or type(root).__name__ == "ReadTimeoutError"
    if isinstance(error, requests.ConnectTimeout) or (isinstance(error, requests.Timeout) and not read_timeout):
        return HttpTimeoutError(method, masked, "connect", _timeout_part(timeout, 0))
    if read_timeout:
        return HttpTimeoutError(method, masked, "read", _timeout_part(timeout, 1))
    detail = _QUERY.sub(lambda m: "?" + mask_url("http://x/?" + m.group(0)[1:]).split("?", 1)[1], str(root))
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


@functools.cache
def _session_class() -> type:
    requests = _requests()

    class TaskSession(requests.Session):  # type: ignore[misc, name-defined]
        """A requests Session of one task: timeouts, per-request rate limits, HttpError on failure."""

        def __init__(self, task: SensibleDefaultsRequests) -> None:
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
                    raise _transport_error(requests, error, method.upper(), sent, timeout) from None
            if raise_for_status and response.status_code >= 400:
                raise _status_error(response, task.body_snippet_length)
            return response

        @contextmanager
        def _rate_limited(self, method: str, url: str, extra_key: str | None) -> Iterator[None]:
            limits = self._limits_for(method, url, extra_key)
            if not limits:
                yield
                return
            from ._policies._ratelimit import rate_limited

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
        from ._policies._ratelimit import RateLimitGuard
    except ImportError:  # the rate limiter is not part of this build
        return []
    return [guard for guard in guards if isinstance(guard, RateLimitGuard)]
