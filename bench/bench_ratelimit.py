"""Rate-limiter acquire cost: Task Engine's token bucket next to `limits` and `pyrate-limiter`, same run.

    python bench/bench_ratelimit.py [--n 100000] [--threads 8]

Every limiter gets a limit far above the request rate, so no call ever waits: the numbers are
the bookkeeping cost of one acquire (lock, refill, take), uncontended and with 8 threads sharing
one key. Absolute times depend on the machine; compare the ratios. Needs the bench extra:
pip install 'task-engine[bench]'.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

HUGE = 10**9  # requests per second: never the bottleneck


def task_engine() -> Callable[[], object]:
    from task_engine_core import RateLimit, RateLimiter

    limiter = RateLimiter()
    limiter.set(RateLimit("key", rate=HUGE, burst=HUGE))
    return lambda: limiter.acquire("key")


def limits_fixed_window() -> Callable[[], object]:
    from limits import RateLimitItemPerSecond
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    limiter, item = FixedWindowRateLimiter(MemoryStorage()), RateLimitItemPerSecond(HUGE)
    return lambda: limiter.hit(item, "key")


def limits_sliding_window_counter() -> Callable[[], object]:
    from limits import RateLimitItemPerSecond
    from limits.storage import MemoryStorage
    from limits.strategies import SlidingWindowCounterRateLimiter

    limiter, item = SlidingWindowCounterRateLimiter(MemoryStorage()), RateLimitItemPerSecond(HUGE)
    return lambda: limiter.hit(item, "key")


def pyrate_in_memory() -> Callable[[], object]:
    from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate

    limiter = Limiter(InMemoryBucket([Rate(HUGE, Duration.SECOND)]))
    return lambda: limiter.try_acquire("key")  # blocking=False would also refuse when its lock is busy


def pyrate_token_bucket() -> Callable[[], object]:
    from pyrate_limiter import Duration, Limiter, Rate, StateBucket, TokenBucket

    limiter = Limiter(StateBucket([Rate(HUGE, Duration.SECOND)], algorithm=TokenBucket()))
    return lambda: limiter.try_acquire("key")  # blocking=False would also refuse when its lock is busy


CANDIDATES = {
    "task-engine TokenBucket": task_engine,
    "limits FixedWindow (memory)": limits_fixed_window,
    "limits SlidingWindowCounter (memory)": limits_sliding_window_counter,
    "pyrate-limiter InMemoryBucket": pyrate_in_memory,
    "pyrate-limiter TokenBucket (state)": pyrate_token_bucket,
}


def measure(acquire: Callable[[], object], n: int, threads: int) -> float:
    """Seconds per acquire, all threads together (wall time / total acquires)."""
    per_thread = n // threads
    start = threading.Barrier(threads + 1)
    refused: list[int] = []

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            if acquire() is False:
                refused.append(1)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    if refused:
        raise RuntimeError(f"{len(refused)} acquires were refused; the limit must never bind in this benchmark")
    return elapsed / (per_thread * threads)


def main(argv: list[str] | None = None) -> int:
    """Print ns per acquire and the ratio to Task Engine for each limiter."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="acquires per measurement (default 100000)")
    parser.add_argument("--threads", type=int, default=8, help="threads for the contended case (default 8)")
    args = parser.parse_args(argv)
    rows = []
    for name, make in CANDIDATES.items():
        try:
            make()  # warm imports outside the timing
            single = measure(make(), args.n, 1)
            contended = measure(make(), args.n, args.threads)
        except ImportError as error:
            print(f"skipping {name}: {error} (pip install 'task-engine[bench]')", file=sys.stderr)
            continue
        rows.append((name, single, contended))
    if not rows or rows[0][0] != "task-engine TokenBucket":
        print("task-engine limiter missing; nothing to compare against", file=sys.stderr)
        return 1
    _, base_single, base_contended = rows[0]
    print(f"acquire cost, {args.n} acquires per case, Python {sys.version.split()[0]}")
    print(f"{'limiter':<38} {'1 thread':>12} {'ratio':>7} {f'{args.threads} threads':>12} {'ratio':>7}")
    for name, single, contended in rows:
        print(
            f"{name:<38} {single * 1e9:>9.0f} ns {single / base_single:>6.2f}x "
            f"{contended * 1e9:>9.0f} ns {contended / base_contended:>6.2f}x"
        )
    print("ratio > 1 means slower than task-engine in this run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
