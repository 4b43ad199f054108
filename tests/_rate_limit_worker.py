"""One process of the many-process rate-limit measurements (tests and bench/): prints its grant times.

Usage: python tests/_rate_limit_worker.py STORE_URL KEY RATE BURST THREADS DURATION
Once connected it prints `ready` and reads START_AT (a time.monotonic() value: one clock for every
process of the host) from standard input; then every thread takes tokens of KEY from the store
until DURATION seconds after START_AT and notes when each grant began.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    """Run the threads and print a JSON list of [granted, reserved] moments (monotonic seconds)."""
    from task_engine_core import RateLimit, RateLimiter

    url, key, rate, burst, threads, duration = argv
    limiter = RateLimiter(store=url)
    limiter.set(RateLimit(key, rate=float(rate), burst=float(burst)))
    limiter.available(key)  # connect (and import) before the clock starts; takes nothing
    print("ready", flush=True)
    start_at = sys.stdin.readline()
    start, stop = float(start_at), float(start_at) + float(duration)
    grants: list[tuple[float, float]] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = []
        time.sleep(max(0.0, start - time.monotonic()))
        while time.monotonic() < stop:
            asked = time.monotonic()
            wait = limiter.acquire(key)
            # (granted, when it was due): a loaded machine wakes a sleep late, and the store's
            # round trip adds its own delay on top.
            mine.append((time.monotonic(), asked + wait))
        with lock:
            grants.extend(mine)

    workers = [threading.Thread(target=hammer) for _ in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    json.dump(sorted(grants), sys.stdout)


def run_processes(
    url: str, key: str, *, rate: float, burst: float, processes: int, threads: int, duration: float
) -> tuple[list[float], float, float, float]:
    """Start `processes` workers of `threads` threads on one key.

    Returns (sorted grant moments, start, stop, the latest any sleep woke past its due moment).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    children = [
        subprocess.Popen(
            [sys.executable, __file__, url, key, str(rate), str(burst), str(threads), str(duration)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(processes)
    ]
    for child in children:  # every process has imported and connected: now all start together
        line = child.stdout.readline().strip()  # type: ignore[union-attr]
        if line != "ready":
            raise RuntimeError(f"a rate-limit worker did not start (said {line!r})")
    start_at = time.monotonic() + 0.2
    for child in children:
        child.stdin.write(f"{start_at!r}\n")  # type: ignore[union-attr]
        child.stdin.close()  # type: ignore[union-attr]
    grants: list[float] = []
    late = 0.0
    for child in children:
        out = child.stdout.read()  # type: ignore[union-attr]
        if child.wait(timeout=120 + duration) != 0:
            raise RuntimeError(f"a rate-limit worker exited with {child.returncode}")
        for granted, due in json.loads(out):
            grants.append(granted)
            late = max(late, granted - due)
    return sorted(grants), start_at, start_at + duration, late


def worst_excess(grants: list[float], rate: float, burst: float) -> float:
    """The most grants above `burst + rate * window` over every window that starts and ends at a grant."""
    worst = 0.0
    for i, start in enumerate(grants):
        for j in range(i, len(grants)):
            worst = max(worst, (j - i + 1) - (burst + rate * (grants[j] - start)))
    return worst


if __name__ == "__main__":
    main(sys.argv[1:])
