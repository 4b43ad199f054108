"""Runtime statistics on real SQLite files: rows written, concurrent writers, broken files, the CLI table."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from task_engine_core import Pipeline, PipelineExecutor, SkipTask, TaskState, retries
from task_engine_core._cli import main
from task_engine_core._stats import (
    SCHEMA_VERSION,
    RunStatsRecorder,
    StatsStore,
    StatsWarning,
    default_stats_path,
    open_stats_store,
    percentile,
)
from task_engine_core.errors import InvalidArgumentError

ROOT = Path(__file__).resolve().parents[1]


def small_pipeline(name: str = "stats") -> Pipeline:
    pipeline = Pipeline(name)
    attempts = {"flaky": 0}

    @retries(2, backoff=0.01)
    def flaky() -> None:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            raise RuntimeError("first attempt fails")

    def nothing_to_do() -> None:
        raise SkipTask("nothing to do")

    pipeline.add(lambda: None, name="first")
    pipeline.add(flaky, name="flaky", depends_on=["first"])
    pipeline.add(nothing_to_do, name="skipper", depends_on=["first"])
    return pipeline


def rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def test_a_run_writes_one_row_per_run_and_per_task(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    result = PipelineExecutor(small_pipeline(), workers=2, reporters=[], stats=database).run()
    assert rows(database, "SELECT run_id, pipeline, workers, tasks, outcome, interrupted, trace_id FROM runs") == [
        (result.run_id, "stats", 2, 3, "success", None, None)
    ]
    tasks = rows(
        database, "SELECT task, state, attempts, duration IS NOT NULL, error_type FROM task_runs ORDER BY task"
    )
    assert tasks == [
        ("first", "success", 1, 1, None),
        ("flaky", "success", 2, 1, None),
        ("skipper", "skipped", 1, 1, "SkipTask"),
    ]
    waits = rows(database, "SELECT task, reason, seconds > 0 FROM task_waits")
    assert waits == [("flaky", "retry", 1)]
    assert rows(database, "SELECT waited > 0 FROM task_runs WHERE task = 'flaky'") == [(1,)]
    assert rows(database, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(database, "PRAGMA journal_mode") == [("wal",)]


def test_a_failed_run_is_recorded_before_the_error_is_raised(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    pipeline = Pipeline("failing")
    pipeline.add(lambda: 1 / 0, name="broken")
    pipeline.add(lambda: None, name="after", depends_on=["broken"])
    with pytest.raises(ZeroDivisionError):
        PipelineExecutor(pipeline, reporters=[], stats=database).run()
    assert rows(database, "SELECT outcome FROM runs") == [("failed",)]
    assert rows(database, "SELECT task, state, attempts, error_type FROM task_runs ORDER BY task") == [
        ("after", "upstream_failed", 0, None),
        ("broken", "failed", 1, "ZeroDivisionError"),
    ]


def test_the_default_file_is_under_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASK_ENGINE_STATS")
    assert open_stats_store().path == tmp_path / ".task_engine" / "stats.sqlite3"
    assert default_stats_path() == tmp_path / ".task_engine" / "stats.sqlite3"
    PipelineExecutor(small_pipeline(), reporters=[]).run()
    assert rows(tmp_path / ".task_engine" / "stats.sqlite3", "SELECT count(*) FROM task_runs") == [(3,)]


def test_the_environment_moves_or_turns_off_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASK_ENGINE_STATS", str(tmp_path / "elsewhere.sqlite3"))
    PipelineExecutor(small_pipeline(), reporters=[]).run()
    assert rows(tmp_path / "elsewhere.sqlite3", "SELECT count(*) FROM runs") == [(1,)]
    monkeypatch.setenv("TASK_ENGINE_STATS", "off")
    assert PipelineExecutor(small_pipeline(), reporters=[]).stats_store is None
    assert not (tmp_path / ".task_engine").exists()


def test_no_stats_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    executor = PipelineExecutor(small_pipeline(), reporters=[], stats=False)
    executor.run()
    assert executor.stats_store is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stats", ["", 3, object()])
def test_a_bad_stats_argument_is_rejected(stats: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        PipelineExecutor(Pipeline("p"), stats=stats)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"stats={stats!r}: pass a file path, a postgresql:// URL, None for .task_engine/stats.sqlite3, "
        f"or False for no statistics"
    )


WRITER = textwrap.dedent(
    """
    import os, sys, time
    from task_engine_core import Pipeline, PipelineExecutor

    database, runs, tasks, me, other = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    open(me, "w").close()
    while not os.path.exists(other):  # start together, so the writes really overlap
        time.sleep(0.005)
    pipeline = Pipeline("concurrent")
    for i in range(tasks):
        pipeline.add(lambda: None, name=f"t{i}", depends_on=[f"t{i - 1}"] if i else [])
    for _ in range(runs):
        PipelineExecutor(pipeline, workers=2, reporters=[], stats=database).run()
    """
)


def test_two_processes_writing_at_once_lose_no_row(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    runs, tasks = 40, 25
    ready_a, ready_b = tmp_path / "a.ready", tmp_path / "b.ready"
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(database), str(runs), str(tasks), str(me), str(other)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in ((ready_a, ready_b), (ready_b, ready_a))
    ]
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    assert all("StatsWarning" not in error for error in errors), errors
    assert rows(database, "SELECT count(*), count(DISTINCT pid) FROM runs") == [(2 * runs, 2)]
    assert rows(database, "SELECT count(*) FROM task_runs") == [(2 * runs * tasks,)]
    assert rows(database, "SELECT count(*) FROM task_runs WHERE state = 'success'") == [(2 * runs * tasks,)]


def test_a_corrupt_file_is_moved_aside_and_started_anew(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    database.write_bytes(b"this is not a database" * 500)
    with pytest.warns(StatsWarning) as warned:
        result = PipelineExecutor(small_pipeline(), reporters=[], stats=database).run()
    assert result.succeeded
    moved = [path for path in tmp_path.iterdir() if path.name.startswith("stats.sqlite3.broken-")]
    assert len(moved) == 1
    assert moved[0].read_bytes() == b"this is not a database" * 500
    messages = [str(w.message) for w in warned]
    assert messages[0] == (
        f"statistics file {str(database)!r}: file is not a database (SQLITE_NOTADB); "
        f"moved it to {str(moved[0])!r} and started a new one"
    )
    assert rows(database, "SELECT count(*) FROM runs") == [(1,)]


def test_a_database_with_damaged_pages_is_moved_aside(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    store = StatsStore(database)
    for _ in range(5):
        PipelineExecutor(small_pipeline(), reporters=[], stats=store).run()
    store.close()  # checkpoints the WAL into the file
    damaged = bytearray(database.read_bytes())
    for offset in range(4096, len(damaged), 4096):  # every page after the header page
        damaged[offset : offset + 100] = b"\xff" * 100
    database.write_bytes(bytes(damaged))
    with pytest.warns(StatsWarning, match=r"database disk image is malformed \(SQLITE_CORRUPT\); moved it to"):
        result = PipelineExecutor(small_pipeline(), reporters=[], stats=database).run()
    assert result.succeeded
    assert rows(database, "SELECT count(*) FROM runs") == [(1,)]
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("stats.sqlite3.broken-")]) == 1


def test_an_sqlite_file_of_another_application_is_moved_aside(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.warns(StatsWarning, match="it is an SQLite database with other tables \\(invoices\\); moved it to"):
        PipelineExecutor(small_pipeline(), reporters=[], stats=database).run()
    assert rows(database, "SELECT count(*) FROM runs") == [(1,)]
    (moved,) = [p for p in tmp_path.iterdir() if p.name.startswith("stats.sqlite3.broken-")]
    assert rows(moved, "PRAGMA journal_mode") == [("delete",)]  # left as it was found
    assert rows(moved, "SELECT name FROM sqlite_master") == [("invoices",)]


def test_a_newer_schema_is_left_alone(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA user_version = 99")
    with pytest.warns(StatsWarning) as warned:
        result = PipelineExecutor(small_pipeline(), reporters=[], stats=database).run()
    assert result.succeeded
    assert str(warned[-1].message) == (
        f"statistics file {str(database)!r}: it was written by a newer Task Engine (schema 99, this one "
        f"knows {SCHEMA_VERSION}) (DatabaseError); run {result.run_id} of pipeline 'stats' was not recorded"
    )
    assert rows(database, "PRAGMA user_version") == [(99,)]
    assert [path.name for path in tmp_path.iterdir()] == ["stats.sqlite3"]


def test_a_missing_directory_skips_statistics_with_a_warning(tmp_path: Path) -> None:
    database = tmp_path / "missing" / "stats.sqlite3"
    with pytest.warns(StatsWarning) as warned:
        result = PipelineExecutor(small_pipeline(), reporters=[], stats=database).run()
    assert result.succeeded
    assert str(warned[0].message) == (
        f"statistics file {str(database)!r}: the statistics folder {str(database.parent)!r} does not exist; "
        f"create it or pass another path with --stats PATH (or --no-stats)"
    )
    assert not database.parent.exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc, a folder nobody can write to")
def test_a_read_only_directory_skips_statistics_with_a_warning() -> None:
    database = Path("/proc/stats.sqlite3")
    with pytest.warns(StatsWarning) as warned:
        result = PipelineExecutor(small_pipeline(), reporters=[], stats=database).run()
    assert result.succeeded
    assert str(warned[-1].message).startswith(
        "statistics file '/proc/stats.sqlite3': unable to open database file (SQLITE_CANTOPEN); "
    )


def test_a_broken_store_never_fails_the_run_even_via_the_listener(tmp_path: Path) -> None:
    store = StatsStore(tmp_path / "missing" / "stats.sqlite3")
    recorder = RunStatsRecorder(store)
    with pytest.warns(StatsWarning):
        result = PipelineExecutor(small_pipeline(), reporters=[], listeners=[recorder], stats=False).run()
    assert result.succeeded


def test_expected_durations_average_recent_successes(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    store = StatsStore(database)
    pipeline = small_pipeline("expect")
    for _ in range(3):
        PipelineExecutor(pipeline, reporters=[], stats=store).run()
    durations = rows(database, "SELECT task, avg(duration) FROM task_runs GROUP BY task")
    expected = store.expected_durations("expect")
    assert expected == pytest.approx(dict(durations))
    assert store.expected_durations("another pipeline") == {}


def test_percentile_interpolates() -> None:
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_summaries_count_runs_failures_and_percentiles(tmp_path: Path) -> None:
    store = StatsStore(tmp_path / "stats.sqlite3")
    pipeline = Pipeline("summary")
    outcomes = iter([None, None, RuntimeError("third run fails")])

    def sometimes() -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    pipeline.add(sometimes, name="sometimes")
    pipeline.add(lambda: None, name="after", depends_on=["sometimes"])
    for _ in range(3):
        try:
            PipelineExecutor(pipeline, reporters=[], stats=store).run()
        except RuntimeError:
            pass
    summaries = {s.task: s for s in store.summaries("summary", ["sometimes", "after", "never"])}
    assert list(summaries) == ["sometimes", "after", "never"]
    assert (summaries["sometimes"].runs, summaries["sometimes"].failures) == (3, 1)
    assert summaries["sometimes"].failure_rate == pytest.approx(1 / 3)
    assert (summaries["after"].runs, summaries["after"].failures) == (2, 0)  # upstream_failed is not a run
    assert summaries["never"].runs == 0 and summaries["never"].mean is None
    assert summaries["sometimes"].p50 <= summaries["sometimes"].p95
    assert store.run_count("summary") == 3


def test_cli_stats_prints_the_per_task_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ledger.py"
    target.write_text(
        textwrap.dedent(
            """
            from task_engine_core import register, skippable

            @register
            def load():
                pass

            @register(depends_on=load)
            @skippable
            def report():
                raise RuntimeError("no printer")
            """
        )
    )
    database = tmp_path / "stats.sqlite3"
    for _ in range(2):
        assert main(["run", str(target), "--stats", str(database)]) == 0
    capsys.readouterr()
    assert main(["stats", str(target), "--stats", str(database)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"pipeline 'ledger': 2 run(s) recorded in {str(database)!r}"
    assert re.split(r"\s{2,}", lines[1]) == ["task", "runs", "mean", "p50", "p95", "failure rate", "mean wait"]
    load, report = (re.split(r"\s{2,}", line.strip()) for line in lines[2:])
    assert load[:2] == ["load", "2"] and load[5] == "0%"
    assert report[:2] == ["report", "2"] and report[5] == "0%"  # skipped is not a failure
    assert all(re.fullmatch(r"\d+\.\d(ms)|\d+\.\d{3}s", cell) for cell in load[2:5] + [load[6]])


def test_cli_stats_without_a_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "lonely.py"
    target.write_text("from task_engine_core import register\n\n@register\ndef only():\n    pass\n")
    assert main(["stats", str(target), "--stats", str(tmp_path / "none.sqlite3")]) == 0
    assert capsys.readouterr().out == (
        f"no statistics at {str(tmp_path / 'none.sqlite3')!r}: run the pipeline first "
        f"(python -m task_engine_core run {target})\n"
    )
    assert not (tmp_path / "none.sqlite3").exists()


def test_cli_no_stats_and_stats_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "x", "--no-stats", "--stats", "y"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.endswith("error: argument --stats: not allowed with argument --no-stats\n")


def test_task_states_are_stored_as_their_values(tmp_path: Path) -> None:
    database = tmp_path / "stats.sqlite3"
    PipelineExecutor(small_pipeline(), reporters=[], stats=database).run()
    stored = {state for (state,) in rows(database, "SELECT DISTINCT state FROM task_runs")}
    assert stored <= {state.value for state in TaskState}


def test_the_trace_id_of_a_traced_run_is_recorded(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from task_engine_core.telemetry import TracingListener

    database = tmp_path / "stats.sqlite3"
    listener = TracingListener([InMemorySpanExporter()], use_registered=False)
    try:
        result = PipelineExecutor(small_pipeline(), reporters=[listener], stats=database).run()
    finally:
        listener.shutdown()
    assert result.trace_id is not None and len(result.trace_id) == 32
    assert rows(database, "SELECT trace_id FROM runs") == [(result.trace_id,)]
