"""Shared rate-limit stores: accuracy across processes, and the cost of one acquire next to peers, same run.

    python bench/bench_ratelimit_stores.py [--seconds 10] [--n 2000] [--threads 8]

Starts its own redis-server on 127.0.0.1 (apt-get install redis-server). Two parts:

1. Accuracy: 4 processes x 8 threads on one key with rate=50, burst=5 for `--seconds`, for the
   SQLite file store and the Redis store: the most grants ever above `burst + rate * window`
   (over every window between two grants), and the achieved rate as a share of the limit.
2. Cost: one acquire (a limit far above the request rate, so nothing waits), uncontended and
   with 8 threads, for Task Engine's memory, SQLite and Redis stores next to `limits` (Redis
   storage, moving window) and `pyrate-limiter` (Redis token-bucket state, Redis log bucket,
   SQLite log bucket). Absolute times depend on the machine; compare the ratios.
Needs the bench and redis extras: pip install 'task-engine[bench,redis]'.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_ratelimit import measure
from tests._rate_limit_worker import run_processes, worst_excess
from tests._services import RedisServer

HUGE = 10**9  # requests per second: never the bottleneck


def task_engine(url: str) -> Callable[[], Callable[[], object]]:
    def make() -> Callable[[], object]:
        from task_engine_core import RateLimit, RateLimiter

        limiter = RateLimiter(store=url)
        key = f"cost-{time.monotonic_ns()}"
        limiter.set(RateLimit(key, rate=HUGE, burst=HUGE))
        return lambda: limiter.acquire(key)

    return make


def limits_redis(url: str) -> Callable[[], Callable[[], object]]:
    def make() -> Callable[[], object]:
        from limits import RateLimitItemPerSecond
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        limiter, item = MovingWindowRateLimiter(RedisStorage(url)), RateLimitItemPerSecond(HUGE)
        key = f"limits-{time.monotonic_ns()}"
        return lambda: limiter.hit(item, key)

    return make


def pyrate_redis_token_bucket(url: str) -> Callable[[], Callable[[], object]]:
    def make() -> Callable[[], object]:
        from pyrate_limiter import Duration, Limiter, Rate, StateBucket, TokenBucket
        from pyrate_limiter.buckets.redis_state import RedisStateStore
        from redis import Redis

        store = RedisStateStore(Redis.from_url(url), f"pyrate-state-{time.monotonic_ns()}")
        limiter = Limiter(StateBucket([Rate(HUGE, Duration.SECOND)], algorithm=TokenBucket(), store=store))
        return lambda: limiter.try_acquire("key")

    return make


def pyrate_redis_log(url: str) -> Callable[[], Callable[[], object]]:
    def make() -> Callable[[], object]:
        from pyrate_limiter import Duration, Limiter, Rate, RedisBucket
        from redis import Redis

        bucket = RedisBucket.init(
            [Rate(HUGE, Duration.SECOND)], Redis.from_url(url), f"pyrate-log-{time.monotonic_ns()}"
        )
        limiter = Limiter(bucket)
        return lambda: limiter.try_acquire("key")

    return make


def pyrate_sqlite_log(folder: str) -> Callable[[], Callable[[], object]]:
    def make() -> Callable[[], object]:
        from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket

        bucket = SQLiteBucket.init_from_file(
            [Rate(HUGE, Duration.SECOND)], db_path=f"{folder}/pyrate-{time.monotonic_ns()}.sqlite3", use_file_lock=True
        )
        limiter = Limiter(bucket)
        return lambda: limiter.try_acquire("key")

    return make


def accuracy(server: RedisServer, folder: str, seconds: float) -> None:
    """Part 1: 4 processes x 8 threads, rate=50, burst=5, on the file and the Redis store."""
    rate, burst = 50.0, 5.0
    print(f"accuracy: 4 processes x 8 threads, one key, rate={rate:g}/s burst={burst:g}, {seconds:g} s")
    print(
        f"{'store':<10} {'grants':>7} {'achieved':>9} {'of limit':>9} {'most above burst + rate*t':>27} "
        f"{'latest wake-up':>15}"
    )
    for name, url in (("sqlite", f"sqlite:///{folder}/accuracy.sqlite3"), ("redis", server.url)):
        grants, start, stop, late = run_processes(
            url, f"accuracy-{name}", rate=rate, burst=burst, processes=4, threads=8, duration=seconds
        )
        achieved = sum(1 for t in grants if start <= t <= stop) / seconds
        print(
            f"{name:<10} {len(grants):>7} {achieved:>7.1f}/s {achieved / rate:>8.1%} "
            f"{worst_excess(grants, rate, burst):>20.2f} tokens {late * 1000:>9.1f} ms late"
        )


def cost(server: RedisServer, folder: str, n: int, threads: int) -> None:
    """Part 2: one acquire per store next to limits and pyrate-limiter."""
    candidates = {
        "task-engine memory": task_engine("memory"),
        "task-engine sqlite file": task_engine(f"sqlite:///{folder}/cost.sqlite3"),
        "task-engine redis": task_engine(server.url),
        "limits redis (moving window)": limits_redis(server.url),
        "pyrate-limiter redis token bucket": pyrate_redis_token_bucket(server.url),
        "pyrate-limiter redis log bucket": pyrate_redis_log(server.url),
        "pyrate-limiter sqlite log bucket": pyrate_sqlite_log(folder),
    }
    rows = []
    for name, make in candidates.items():
        try:
            make()()  # warm imports and connections outside the timing
            rows.append((name, measure(make(), n, 1), measure(make(), n, threads)))
        except ImportError as error:
            print(f"skipping {name}: {error} (pip install 'task-engine[bench,redis]')", file=sys.stderr)
    base = {row[0]: row for row in rows}
    print(f"\nacquire cost, {n} acquires per case, Python {sys.version.split()[0]}")
    print(f"{'limiter':<36} {'1 thread':>11} {'vs te redis':>11} {f'{threads} threads':>11} {'vs te redis':>11}")
    _, redis_single, redis_contended = base["task-engine redis"]
    for name, single, contended in rows:
        print(
            f"{name:<36} {single * 1e6:>8.1f} us {single / redis_single:>10.2f}x "
            f"{contended * 1e6:>8.1f} us {contended / redis_contended:>10.2f}x"
        )
    sqlite_single = base["task-engine sqlite file"][1]
    if "pyrate-limiter sqlite log bucket" in base:
        print(
            f"pyrate-limiter sqlite / task-engine sqlite (1 thread): "
            f"{base['pyrate-limiter sqlite log bucket'][1] / sqlite_single:.2f}x"
        )
    print("ratio > 1 means slower than task-engine's Redis store in this run")


def main(argv: list[str] | None = None) -> int:
    """Run both parts against a redis-server started here."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="accuracy run length (default 10)")
    parser.add_argument("--n", type=int, default=2000, help="acquires per cost measurement (default 2000)")
    parser.add_argument("--threads", type=int, default=8, help="threads for the contended case (default 8)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="task-engine-bench-") as folder:
        server = RedisServer(folder).start()
        try:
            accuracy(server, folder, args.seconds)
            cost(server, folder, args.n, args.threads)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
