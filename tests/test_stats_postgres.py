"""Statistics in a real PostgreSQL server (initdb'd in a temporary folder): recorded, read, shared, and down."""

from __future__ import annotations

import sys
import threading
import warnings
from datetime import UTC

import pytest

from task_engine_core import Pipeline, PipelineExecutor
from task_engine_core._cli import main
from task_engine_core._stats import SCHEMA_VERSION, PostgresStatsStore, StatsStore, StatsWarning, open_stats_store
from task_engine_core.errors import MissingExtraError

from ._services import PostgresServer

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def postgres():
    if not PostgresServer.available():
        pytest.skip("PostgreSQL 15 is not installed (tests/run_all.sh installs it with apt-get)")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def database(postgres, request) -> str:
    # A database per test: runs recorded by one test must not show in the next.
    return postgres.create_database(f"t{abs(hash(request.node.nodeid)) % 10**9}")


def pipeline_of_three(name: str = "pg") -> Pipeline:
    pipeline = Pipeline(name)

    @pipeline.register
    def extract():
        pass

    @pipeline.register(depends_on=extract)
    def transform():
        pass

    @pipeline.register(depends_on=transform)
    def load():
        pass

    return pipeline


def test_a_postgresql_url_records_runs_and_the_same_queries_read_them(database, monkeypatch):
    monkeypatch.setenv("TASK_ENGINE_STATS", database)
    executor = PipelineExecutor(pipeline_of_three(), reporters=[])
    assert isinstance(executor.stats_store, PostgresStatsStore)
    for _ in range(3):
        executor.run()
    store = open_stats_store(database)
    assert store.run_count("pg") == 3 and store.run_count() == 3
    assert set(store.expected_durations("pg")) == {"extract", "transform", "load"}
    summaries = {s.task: s for s in store.summaries("pg", ["extract", "transform", "load"])}
    assert [summaries[t].runs for t in ("extract", "transform", "load")] == [3, 3, 3]
    assert all(s.failures == 0 and s.mean is not None for s in summaries.values())
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT version FROM task_engine_schema").fetchall() == [(SCHEMA_VERSION,)]
        columns = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'task_estimates'"
            ).fetchall()
        )
    assert columns["expected"] == "double precision"  # SQLite's REAL is a double; so is ours here


def test_the_moving_average_is_the_same_on_sqlite_and_postgresql(database, tmp_path):
    from task_engine_core._result import RunResult, TaskResult
    from task_engine_core._task import TaskState

    stores = [StatsStore(tmp_path / "s.sqlite3"), open_stats_store(database)]
    for number, seconds in enumerate([1.0, 3.0, 8.0]):
        task = TaskResult("only", state=TaskState.SUCCESS, attempts=1, duration=seconds)
        result = RunResult(run_id=f"run{number}", pipeline="avg", tasks={"only": task}, workers=1)
        for store in stores:
            assert store.record(result) is True
    sqlite_expected, postgres_expected = (store.expected_durations("avg") for store in stores)
    assert sqlite_expected == postgres_expected == {"only": pytest.approx(4.0)}


def test_workers_on_many_machines_record_into_one_database_at_once(database):
    # One store (one connection) per worker, as on separate machines, all writing together.
    stores = [open_stats_store(database) for _ in range(4)]
    errors: list[BaseException] = []

    def worker(store: StatsStore) -> None:
        try:
            for _ in range(3):
                PipelineExecutor(pipeline_of_three("shared"), reporters=[], stats=store, handle_signals=False).run()
        except BaseException as error:
            errors.append(error)

    with warnings.catch_warnings():
        warnings.simplefilter("error", StatsWarning)  # a lost run would only warn: make it fail here
        threads = [threading.Thread(target=worker, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert open_stats_store(database).run_count("shared") == 12


def test_the_stats_command_reads_the_postgresql_store(database, monkeypatch, tmp_path, capsys):
    target = tmp_path / "three.py"
    target.write_text(
        "from task_engine_core import register\n"
        "@register\n"
        "def extract():\n    pass\n"
        "@register(depends_on=extract)\n"
        "def load():\n    pass\n"
    )
    monkeypatch.setenv("TASK_ENGINE_STATS", database)
    assert main(["run", str(target)]) == 0
    capsys.readouterr()
    assert main(["stats", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"pipeline 'three': 1 run(s) recorded in '{database}'" in out
    assert "extract" in out and "load" in out


def test_the_runs_command_reads_the_postgresql_store(database, monkeypatch, tmp_path, capsys):
    # `runs` resolved the location on its own and took a postgresql:// URL for a file name.
    target = tmp_path / "two.py"
    target.write_text("from task_engine_core import register\n@register\ndef only():\n    pass\n")
    monkeypatch.setenv("TASK_ENGINE_STATS", database)
    assert main(["run", str(target)]) == 0
    capsys.readouterr()
    assert main(["runs", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"pipeline 'two': 1 recorded run(s) in '{database}', newest first" in out
    assert "1 success" in out


def test_an_unreachable_server_warns_once_and_the_run_still_succeeds(postgres):
    url = f"postgresql://postgres@127.0.0.1:{postgres.port + 1 if postgres.port < 65535 else 1}/nowhere"
    store = open_stats_store(url, connect_timeout=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = PipelineExecutor(pipeline_of_three(), reporters=[], stats=store).run()
    assert result.succeeded
    messages = [str(w.message) for w in caught if issubclass(w.category, StatsWarning)]
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"statistics database {url}: connection failed: ")
    assert messages[0].endswith(
        "(OperationalError); expected durations are unavailable; ready tasks start in registration order"
    )


def test_a_database_written_by_a_newer_version_is_left_alone(database):
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("CREATE TABLE task_engine_schema (version INTEGER NOT NULL)")
        connection.execute("INSERT INTO task_engine_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.warns(
        StatsWarning,
        match=rf"written by a newer Task Engine \(schema {SCHEMA_VERSION + 1}, this one "
        rf"knows {SCHEMA_VERSION}\)",
    ):
        assert open_stats_store(database).run_count() == 0
    with psycopg.connect(database) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    assert tables == [("task_engine_schema",)]


def test_the_password_never_shows_and_a_missing_psycopg_names_the_extra(monkeypatch):
    store = open_stats_store("postgresql://te:hunter2@127.0.0.1:1/stats")
    assert store.location == "postgresql://te:***@127.0.0.1:1/stats" and "hunter2" not in repr(store)
    from task_engine_core._stats import RunStatsRecorder, TaskStatsRecorder

    assert [repr(r) for r in (RunStatsRecorder(store), TaskStatsRecorder(store, "p", 1))] == [
        "<RunStatsRecorder 'postgresql://te:***@127.0.0.1:1/stats'>",
        "<TaskStatsRecorder 'postgresql://te:***@127.0.0.1:1/stats'>",
    ]
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` meets where it is not installed
    with pytest.raises(
        MissingExtraError,
        match=r"the PostgreSQL statistics store postgresql://te:\*\*\*@127.0.0.1:1/stats "
        r"needs the 'psycopg' package.*task-engine\[postgres\]",
    ):
        PipelineExecutor(pipeline_of_three(), reporters=[], stats="postgresql://te:hunter2@127.0.0.1:1/stats")


def test_a_run_recorded_task_by_task_on_postgresql_gives_the_same_rows_as_on_sqlite(database, tmp_path):
    # How an Airflow dag run records: each try writes its task, and the tasks together make the run's row.
    from datetime import datetime, timedelta

    from task_engine_core._result import TaskResult
    from task_engine_core._task import TaskState

    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = TaskResult("a", TaskState.SUCCESS, 1, start + timedelta(seconds=1), start + timedelta(seconds=3), 2.0)
    second = TaskResult(
        "b", TaskState.FAILED, 2, start, start + timedelta(seconds=6), 6.0, RuntimeError("x"), waits={"retry": 1.0}
    )
    stores = [StatsStore(tmp_path / "s.sqlite3"), open_stats_store(database)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatsWarning)  # a statement PostgreSQL rejects only warns: make it fail
        for store in stores:
            assert store.record_task("run-1", "p", first, tasks=2, trace_id="t" * 32)
            assert store.record_task("run-1", "p", second, tasks=2, trace_id="t" * 32)
            assert store.record_task("run-1", "p", second, tasks=2)  # a cleared task's rerun replaces its row
    for store in stores:
        assert [(r.run_id, r.started_at, r.duration, r.outcome, r.counts) for r in store.recorded_runs("p")] == [
            ("run-1", start.isoformat(), pytest.approx(6.0), "failed", {"success": 1, "failed": 1})
        ]
        assert [(t.task, t.state, t.attempts) for t in store.recorded_tasks("run-1")] == [
            ("a", "success", 1),
            ("b", "failed", 2),
        ]
        assert store.expected_durations("p") == {"a": 2.0, "b": 6.0}
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT tasks, trace_id, finished_at FROM runs").fetchall() == [
            (2, "t" * 32, (start + timedelta(seconds=6)).isoformat())
        ]
        assert connection.execute("SELECT task, reason, seconds FROM task_waits").fetchall() == [("b", "retry", 1.0)]


def test_tasks_of_one_run_recorded_at_once_from_many_machines_widen_one_run_row(database):
    from datetime import datetime, timedelta

    from task_engine_core._result import TaskResult
    from task_engine_core._task import TaskState

    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Task i runs from second i to second 2i+1: the run spans 0 .. 15 s.
    results = [
        TaskResult(
            f"t{i}", TaskState.SUCCESS, 1, start + timedelta(seconds=i), start + timedelta(seconds=2 * i + 1), i + 1.0
        )
        for i in range(8)
    ]
    stores = [open_stats_store(database) for _ in results]
    outcomes: list[bool] = []
    barrier = threading.Barrier(len(results))

    def worker(store: StatsStore, task: TaskResult) -> None:
        barrier.wait()
        outcomes.append(store.record_task("run-x", "wide", task, tasks=len(results)))

    with warnings.catch_warnings():
        warnings.simplefilter("error", StatsWarning)
        threads = [threading.Thread(target=worker, args=pair) for pair in zip(stores, results)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes == [True] * len(results)
    [run] = open_stats_store(database).recorded_runs("wide")
    assert (run.started_at, run.duration, run.counts) == (start.isoformat(), pytest.approx(15.0), {"success": 8})
