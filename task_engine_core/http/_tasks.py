"""HttpTask (alias SensibleDefaultsRequests): a Task whose `requests` calls are retried by status code."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from .._attempt import AttemptState, HandlerDecision
from .._policies import Backoff, RetryPolicy, attach, stored_settings
from .._task import Task
from ._errors import HttpConnectionError, HttpStatusError
from ._failures import as_http_error, describe_failure, requests_module
from ._rules import NO_RETRY, RetryRule
from ._session import session_class
from ._status import default_rule_name, retry_after_seconds

__all__ = ["HttpTask", "SensibleDefaultsRequests"]


class _ClassDefaultRetry(RetryPolicy):
    """The attempt budget an HttpTask class derives from its rules (no explicit @retries)."""


class HttpTask(Task):
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
        requests_module(f"HTTP task {type(self).__name__!r}")  # a missing `requests` names this task
        return session_class()(self)

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
        error = as_http_error(error, self.body_snippet_length)
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
        translated = as_http_error(error, self.body_snippet_length)
        # The session's errors keep the requests exception they replace as __context__, so a rule
        # may name either (HttpTimeoutError or requests.Timeout).
        wrapped = error.__context__ if isinstance(error, (HttpStatusError, HttpConnectionError)) else None
        for candidate in (c for c in (error, translated, wrapped) if c is not None):
            for klass in type(candidate).__mro__:
                if klass in self.exception_rules:
                    return self.exception_rules[klass]
        if isinstance(translated, HttpStatusError):
            status = translated.status
            if status in self.status_rules:
                return self.status_rules[status]
            name = default_rule_name(status)
            if name is None:
                return NO_RETRY
            rule: RetryRule = getattr(self, name)
            return rule
        if isinstance(translated, HttpConnectionError):  # timeouts included
            return self.unavailable
        return None

    @classmethod
    def default_attempts(cls) -> int:
        """Total attempts the rules can use: one plus the most retries any rule allows (4 by default)."""
        rules = [cls.too_many_requests, cls.unavailable, cls.server_error]
        rules += [*cls.status_rules.values(), *cls.exception_rules.values()]
        return 1 + max(rule.retries for rule in rules)


def _attach_default_attempts(cls: type[HttpTask]) -> None:
    # An explicit @retries (on this class, a base, or perform_task) wins; only a derived budget is replaced.
    inherited = stored_settings(cls).get("retry")
    if inherited is None or isinstance(inherited, _ClassDefaultRetry):
        attach(cls, retry=_ClassDefaultRetry(attempts=cls.default_attempts()))


_attach_default_attempts(HttpTask)

#: The seed's name for HttpTask (the same class): `class PollRun(SensibleDefaultsRequests)` keeps working.
SensibleDefaultsRequests = HttpTask
