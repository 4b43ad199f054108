"""One process of the many-process rate-limit measurements (tests and bench/): prints its grant times.

Usage: python tests/_rate_limit_worker.py STORE_URL KEY RATE BURST THREADS DURATION
Once connected it prints `ready` and reads START_AT (a time.monotonic() value: one clock for every
process of the host) from standard input; then every thread takes tokens of KEY from the store
until DURATION seconds after START_AT and notes when each grant began.
"""

from __future__ import annotations

import json
import sys
import threading
import time


def main(argv: list[str]) -> None:
    """Run the threads and print a JSON list of grant moments (monotonic seconds)."""
    from task_engine_core import RateLimit, RateLimiter

    url, key, rate, burst, threads, duration = argv
    limiter = RateLimiter(store=url)
    limiter.set(RateLimit(key, rate=float(rate), burst=float(burst)))
    limiter.available(key)  # connect (and import) before the clock starts; takes nothing
    print("ready", flush=True)
    start_at = sys.stdin.readline()
    start, stop = float(start_at), float(start_at) + float(duration)
    grants: list[float] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = []
        time.sleep(max(0.0, start - time.monotonic()))
        while time.monotonic() < stop:
            limiter.acquire(key)
            mine.append(time.monotonic())
        with lock:
            grants.extend(mine)

    workers = [threading.Thread(target=hammer) for _ in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    json.dump(sorted(grants), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
