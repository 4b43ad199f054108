"""Where rate-limit buckets live: this process (`memory`), a SQLite file for one host, or Redis.

A store holds only bucket *state* (tokens, last refill); the limits themselves (rate, burst, per)
are configured in every process as before and sent with each request, so a key means the same
wherever it is taken. Each shared store does the refill-and-take step atomically in one place:
SQLite in one `BEGIN IMMEDIATE` transaction (the host's monotonic clock, which every process on
a host shares), Redis in one Lua script (the server's clock, `TIME`, never a worker's).

A store that cannot be used raises RateLimitStoreError before anything is taken: an attempt fails
(and may be retried) instead of going ahead without a token.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy handler alone serialises the processes
    fcntl = None  # type: ignore[assignment]

from ..errors import InvalidArgumentError, MissingExtraError, RateLimitStoreError
from ._bucket import TokenBucket

__all__ = [
    "BucketStore",
    "MEMORY",
    "RATE_LIMIT_STORE_ENVIRONMENT_VARIABLE",
    "RedisBucketStore",
    "SqliteBucketStore",
    "bucket_store",
    "display_url",
]

RATE_LIMIT_STORE_ENVIRONMENT_VARIABLE = "TASK_ENGINE_RATE_LIMIT_STORE"
#: Seconds a shared store may take to answer before the attempt fails with RateLimitStoreError.
STORE_TIMEOUT = 5.0


class BucketStore(Protocol):
    """Shared bucket state: one atomic refill-and-take per call."""

    name: str

    def reserve(
        self, key: str, limits: Sequence[Any], tokens: float, timeout: float | None
    ) -> tuple[float, bool, float]:
        """Take `tokens` from every bucket of `key` (now or from the future) unless the wait exceeds `timeout`.

        Returns (seconds the caller must wait, whether the tokens were taken, the fewest tokens any
        bucket held before taking). `limits` are RateLimit objects, one bucket each (by period).
        """


class _Memory:
    """The marker of the default store: buckets stay in the RateLimiter of this process."""

    name = "memory"

    def __repr__(self) -> str:
        return "<memory rate-limit store>"


MEMORY = _Memory()
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def display_url(url: str) -> str:
    """`url` with any password replaced by `***`, for messages and reports."""
    # A regular expression, not urlsplit: a malformed URL (bad port) must still be shown masked.
    return _PASSWORD.sub(r"\1***@", url)


class SqliteBucketStore:
    """Buckets in one SQLite file (WAL): every process on this host that opens the file shares them."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = os.fspath(path)
        self.name = f"sqlite:///{self.path}"
        # CLOCK_MONOTONIC is one clock for every process of a host (and never jumps with NTP).
        self.clock = clock
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._lock_file: Any = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"<SqliteBucketStore {self.name}>"

    def reserve(
        self, key: str, limits: Sequence[Any], tokens: float, timeout: float | None
    ) -> tuple[float, bool, float]:
        """One `BEGIN IMMEDIATE` transaction: read the key's buckets, refill, take, write back."""
        with self._lock, self._host_lock(key):
            try:
                connection = self._connect()
                connection.execute("BEGIN IMMEDIATE")
                try:
                    stored = {
                        per: (left, updated)
                        for per, left, updated in connection.execute(
                            "SELECT per, tokens, updated FROM rate_limit_buckets WHERE key = ?", (key,)
                        )
                    }
                    now = self.clock()
                    buckets = []
                    for limit in limits:
                        left, updated = stored.get(limit.per, (None, now))
                        # A stored moment after now means the host rebooted (a new monotonic clock).
                        bucket = TokenBucket(limit, min(updated, now), left)
                        bucket.refill(now)
                        buckets.append(bucket)
                    wait = max(bucket.wait_for(tokens) for bucket in buckets)
                    fewest = min(bucket.tokens for bucket in buckets)
                    if timeout is not None and wait > timeout:
                        connection.execute("ROLLBACK")
                        return wait, False, fewest
                    for bucket in buckets:
                        bucket.take(tokens)
                    connection.executemany(
                        "INSERT INTO rate_limit_buckets (key, per, tokens, updated) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (key, per) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                        [(key, b.limit.per, b.tokens, now) for b in buckets],
                    )
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
                return wait, True, fewest
            except sqlite3.Error as error:
                self._drop()
                code = getattr(error, "sqlite_errorname", "") or type(error).__name__
                raise RateLimitStoreError(self.name, key, f"{error} ({code})") from error

    @contextmanager
    def _host_lock(self, key: str) -> Iterator[None]:
        # SQLite's own busy handler polls with sleeps of up to 100 ms, which starves a contended
        # bucket (measured: 20/s of 50/s with 4 processes); a kernel lock wakes the next process
        # the moment the last one commits. BEGIN IMMEDIATE still guards any other writer.
        if fcntl is None:
            yield
            return
        if self._lock_file is None or self._pid != os.getpid():
            try:
                self._lock_file = open(self.path + ".lock", "a+b")  # noqa: SIM115 - kept open for flock
            except OSError as error:
                raise RateLimitStoreError(self.name, key, f"cannot open {self.path}.lock: {error}") from error
        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        # After a fork (Airflow's LocalExecutor) the parent's connection must not be used here.
        self._connection = None
        self._pid = os.getpid()
        # isolation_level=None: transactions are explicit; check_same_thread=False: self._lock serialises.
        connection = sqlite3.connect(self.path, timeout=STORE_TIMEOUT, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # a crash may lose the last take, never the file
            connection.execute(
                "CREATE TABLE IF NOT EXISTS rate_limit_buckets ("
                "key TEXT NOT NULL, per REAL NOT NULL, tokens REAL NOT NULL, updated REAL NOT NULL, "
                "PRIMARY KEY (key, per)) WITHOUT ROWID"
            )
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._pid == os.getpid():
            try:
                connection.close()
            except sqlite3.Error:
                pass  # already unusable; a new connection is opened next time

    def close(self) -> None:
        """Close the file (it reopens on next use)."""
        with self._lock:
            self._drop()


# KEYS: one hash per bucket. ARGV: tokens, timeout (< 0: none), then capacity and tokens per second
# of each bucket. Numbers travel as %.17g strings: Redis would truncate a Lua number reply to an
# integer and print arguments with only 14 digits.
_RESERVE_SCRIPT = """
local need = tonumber(ARGV[1])
local timeout = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local wait = 0
local fewest = nil
local left = {}
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[1 + 2 * i])
  local rate = tonumber(ARGV[2 + 2 * i])
  local stored = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens = capacity
  if stored[1] then
    local updated = math.min(tonumber(stored[2]), now)
    tokens = math.min(capacity, math.min(tonumber(stored[1]), capacity) + (now - updated) * rate)
  end
  local missing = need - tokens
  if missing > 0 and missing / rate > wait then wait = missing / rate end
  if fewest == nil or tokens < fewest then fewest = tokens end
  left[i] = tokens
end
if timeout >= 0 and wait > timeout then
  return {0, string.format('%.17g', wait), string.format('%.17g', fewest)}
end
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[1 + 2 * i])
  local rate = tonumber(ARGV[2 + 2 * i])
  local tokens = left[i] - need
  redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'updated', string.format('%.17g', now))
  -- Once the bucket would be full again, forgetting it changes nothing: let Redis drop it then.
  redis.call('PEXPIRE', key, math.ceil((capacity - tokens) / rate * 1000) + 1000)
end
return {1, string.format('%.17g', wait), string.format('%.17g', fewest)}
"""


class RedisBucketStore:
    """Buckets in Redis: one Lua script refills and takes atomically on the server, by the server's clock."""

    #: Prefix of the bucket hashes; the key sits in braces so every bucket of a key is in one cluster slot.
    PREFIX = "task_engine:rate_limit:"

    def __init__(self, url: str, *, timeout: float = STORE_TIMEOUT) -> None:
        try:
            import redis
        except ImportError:
            raise MissingExtraError("redis", "redis", f"the Redis rate-limit store ({display_url(url)})") from None
        self.url = url
        self.name = display_url(url)
        self._redis = redis
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        except ValueError as error:
            raise InvalidArgumentError(f"rate-limit store {self.name!r}: {error}") from None
        # EVALSHA with a fallback to EVAL: the script body travels once per server, not per call.
        self._script = self._client.register_script(_RESERVE_SCRIPT)

    def __repr__(self) -> str:
        return f"<RedisBucketStore {self.name}>"

    def reserve(
        self, key: str, limits: Sequence[Any], tokens: float, timeout: float | None
    ) -> tuple[float, bool, float]:
        """Run the reserve script for the key's buckets; a Redis error becomes RateLimitStoreError."""
        keys = [f"{self.PREFIX}{{{key}}}:{limit.per:g}" for limit in limits]
        args: list[str] = [repr(float(tokens)), repr(-1.0 if timeout is None else float(timeout))]
        for limit in limits:
            args += [repr(float(limit.burst)), repr(limit.tokens_per_second)]
        try:
            taken, wait, fewest = self._script(keys=keys, args=args)
        except self._redis.RedisError as error:
            raise RateLimitStoreError(self.name, key, f"{type(error).__name__}: {error}") from error
        return float(wait), bool(int(taken)), float(fewest)

    def close(self) -> None:
        """Close the client's connections (they reopen on next use)."""
        self._client.close()


_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def bucket_store(url: str, where: str = RATE_LIMIT_STORE_ENVIRONMENT_VARIABLE) -> Any:
    """The store named by `url` (`memory`, `sqlite:///PATH`, `redis://HOST:PORT/DB`), one per URL per process."""
    text = str(url).strip()
    if not text or text == "memory":
        return MEMORY
    store = _stores.get(text)
    if store is not None:
        return store
    with _stores_lock:
        store = _stores.get(text)
        if store is None:
            store = _stores[text] = _open(text, where)
    return store


def _open(url: str, where: str) -> Any:
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else ""
        if not path:
            raise InvalidArgumentError(
                f"{where}={display_url(url)!r}: a file store is written sqlite:///PATH "
                f"(sqlite:////abs/path for an absolute path)"
            )
        return SqliteBucketStore(path)
    if scheme in ("redis", "rediss", "unix"):
        return RedisBucketStore(url)
    raise InvalidArgumentError(
        f"{where}={display_url(url)!r} is not a rate-limit store; use memory, sqlite:///PATH "
        f"(one host) or redis://HOST:PORT/DB (many hosts)"
    )
