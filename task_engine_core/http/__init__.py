"""HTTP tasks: a Task whose `requests` calls have timeouts and are retried by status code, and their errors.

Extend `HttpTask` (the seed's name `SensibleDefaultsRequests` is the same class) instead of `Task`
when a task talks to an HTTP API. The task gets `self.session` (a `requests.Session` with
connect/read timeouts that raises on error statuses) and a `retry_handler` that decides per status
code or failure kind. The retry loop stays the core's: the handler answers a `HandlerDecision`
with its reason, so the decision shows up in `RetryScheduled.reason` and `TaskResult.reason` on
every backend.

Names:
- `HttpTask` / `SensibleDefaultsRequests`: the Task class for HTTP APIs.
- `RetryRule`, `NO_RETRY`: how often one kind of failure is retried, and the rule that never retries.
- `HttpError`: base of the errors below (a `TaskEngineError`), with `.method` and the masked `.url`.
- `HttpStatusError`: a 4xx/5xx response (`.status`, `.body`, `.retry_after`, `.response`).
- `HttpConnectionError`: no response (refused, reset, dropped).
- `HttpTimeoutError`: no connection or no response in time (`.phase` is `connect` or `read`).
- `mask_url`: a URL with its password and secret-looking query values replaced by `***`.
- `retry_after_seconds`: the seconds a Retry-After header asks for.

Importing this package loads the standard library only; `requests` is imported on a task's first
request (install it with `pip install 'task-engine[http]'`).
"""

from ._errors import HttpConnectionError, HttpError, HttpStatusError, HttpTimeoutError
from ._rules import NO_RETRY, RetryRule
from ._status import retry_after_seconds
from ._tasks import HttpTask, SensibleDefaultsRequests
from ._urls import mask_url

__all__ = [
    "HttpTask",
    "SensibleDefaultsRequests",
    "RetryRule",
    "NO_RETRY",
    "HttpError",
    "HttpStatusError",
    "HttpConnectionError",
    "HttpTimeoutError",
    "mask_url",
    "retry_after_seconds",
]
