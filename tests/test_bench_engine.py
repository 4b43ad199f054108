"""bench/bench_engine.py --tiny prints every target row of issue 20 with a ratio and a verdict (never a time)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_engine.py"
ROW = re.compile(
    r"^  (?P<row>.+?)\s+(?P<ours>\S+ (?:us|ms|s|KiB))\s+(?P<peer>\S+ (?:us|ms|s|KiB))\s+(?P<ratio>\d+\.\d\dx)\s+(?P<verdict>met|missed|info)$"
)


def test_tiny_bench_prints_every_target_row_with_a_verdict():
    out = subprocess.run([sys.executable, str(BENCH), "--tiny"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("row "))) + 1 :]
    sections: dict[str, list[re.Match[str]]] = {}
    current = None
    for line in table:
        if line.startswith("targets: "):
            break
        if line.startswith("  "):
            match = ROW.match(line)
            assert match, f"a target row without engine, peer, ratio and verdict: {line!r}"
            sections[current].append(match)
        else:
            current = line
            sections[current] = []
    names = list(sections)
    for expected in (
        "sequential, stats off (<= 2x floor)",
        "sequential, stats on (<= 3x floor)",
        "statistics write (<= 3 us per task row)",
        "threads, 4 workers (<= 1.0x floor)",
        "start-up, one-task `run` (<= 3x `python -c pass`)",
        "2,000 layered, 8 workers, stats on (<= 1.5x floor)",
        "2,000 layered, 8 workers, stats on (<= 1 KiB peak RSS per task)",
        "features unused (<= 1.10x the lifecycle loop)",
        "features used (info: used / unused)",
    ):
        assert expected in names, f"section {expected!r} missing from {names}"
    for section in (
        "sequential, stats off (<= 2x floor)",
        "sequential, stats on (<= 3x floor)",
        "threads, 4 workers (<= 1.0x floor)",
    ):
        assert [m["row"] for m in sections[section]] == ["chain 200", "fan-out 200", "layered 200"]
    assert [m["row"] for m in sections["start-up, one-task `run` (<= 3x `python -c pass`)"]] == [
        "wall, median of 3",
        "CPU, median of 3",
    ]
    rows = [m for members in sections.values() for m in members]
    counted = [m for m in rows if m["verdict"] != "info"]
    assert all(m["verdict"] == "info" for m in sections["features used (info: used / unused)"])
    met = sum(1 for m in counted if m["verdict"] == "met")
    summary = next(line for line in lines if line.startswith("targets: "))
    assert summary == f"targets: {met} met, {len(counted) - met} missed"
    if "dask not installed" not in lines[1]:
        assert [m["row"] for m in sections["threads vs dask.threaded.get (dask / engine >= 4x)"]] == [
            "chain 200",
            "fan-out 200",
            "layered 200",
        ]
