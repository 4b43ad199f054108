"""Runtime statistics in an embedded SQLite database (or PostgreSQL for many machines): written after every run, read for priority.

`RunStatsRecorder` is a run-event listener: on RunFinished it writes the run and one row per task in
one transaction. Statistics are a convenience, never a reason for a run to fail: a locked file is
retried, a corrupt or unreadable file is moved aside and started anew, and a location that cannot
be written (read-only or missing directory) only gives a StatsWarning.

`open_stats_store` is the one place that decides where statistics live (a `stats=` argument,
else TASK_ENGINE_STATS, else `.task_engine/stats.sqlite3`); a `postgresql://` URL there selects
`PostgresStatsStore`, the same schema and queries on a server every worker can reach.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, TypeVar

from ._result import RunResult, TaskResult
from ._secrets import mask_text
from ._task import TaskState
from ._text import encodable
from .errors import StatsWarning
from .events import Event, RunFinished, RunStarted, TaskFinished

__all__ = [
    "DEFAULT_STATS_DIRECTORY",
    "DEFAULT_STATS_FILE",
    "RecordedRun",
    "RecordedTask",
    "SCHEMA_VERSION",
    "PostgresStatsStore",
    "RunStatsRecorder",
    "StatsStore",
    "STATS_ENVIRONMENT_VARIABLE",
    "STATS_OFF_VALUES",
    "StatsWarning",
    "TaskStatsRecorder",
    "TaskSummary",
    "default_stats_path",
    "open_stats_store",
    "percentile",
]

DEFAULT_STATS_DIRECTORY = ".task_engine"
DEFAULT_STATS_FILE = "stats.sqlite3"
STATS_ENVIRONMENT_VARIABLE = "TASK_ENGINE_STATS"
SCHEMA_VERSION = 2
#: At most this many seconds a run waits to read expected durations from a locked statistics file.
PRIORITY_READ_WAIT = 1.0
#: The expected duration of a task is the plain mean of its first runs, then a moving average
#: in which the newest run weighs 1/EXPECTED_DURATION_WINDOW: recent runs count, outliers fade.
EXPECTED_DURATION_WINDOW = 20

# Kept up to date in the same transaction as the run, so reading expectations before a run costs
# one row per task however long the history grows.
_UPDATE_ESTIMATE = f"""
INSERT INTO task_estimates (pipeline, task, expected, samples) VALUES (?, ?, ?, 1)
ON CONFLICT (pipeline, task) DO UPDATE SET
    expected = task_estimates.expected + (excluded.expected - task_estimates.expected)
        / (CASE WHEN task_estimates.samples < {EXPECTED_DURATION_WINDOW} THEN task_estimates.samples + 1
           ELSE {EXPECTED_DURATION_WINDOW} END),
    samples = task_estimates.samples + 1
"""
# (Qualified names and CASE rather than min(): the one statement runs on SQLite and PostgreSQL.)

_INSERT_RUN = f"INSERT INTO runs VALUES ({', '.join('?' * 13)})"
_INSERT_TASK_RUN = f"INSERT INTO task_runs VALUES ({', '.join('?' * 15)})"

# One run's row, written by each of its tasks in turn (runs orchestrated across processes).
# Portable SQL (CASE, not SQLite's two-argument min/max; no julianday): it runs on SQLite and
# PostgreSQL alike. ISO-8601 UTC text orders as time does; record_task sets the duration after.
_EARLIER = "CASE WHEN {new} IS NULL OR ({old} IS NOT NULL AND {old} <= {new}) THEN {old} ELSE {new} END"
_LATER = "CASE WHEN {new} IS NULL OR ({old} IS NOT NULL AND {old} >= {new}) THEN {old} ELSE {new} END"
_UPSERT_RUN = f"""
INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    started_at = {_EARLIER.format(old="runs.started_at", new="excluded.started_at")},
    finished_at = {_LATER.format(old="runs.finished_at", new="excluded.finished_at")},
    outcome = CASE WHEN runs.outcome = 'failed' THEN 'failed' ELSE excluded.outcome END,
    trace_id = coalesce(runs.trace_id, excluded.trace_id),
    resumed_from = coalesce(runs.resumed_from, excluded.resumed_from),
    selection = coalesce(runs.selection, excluded.selection)
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    pipeline    TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    duration    REAL,
    workers     INTEGER NOT NULL,
    tasks       INTEGER NOT NULL,
    outcome     TEXT NOT NULL,          -- success | failed | interrupted
    interrupted TEXT,                   -- SIGINT, SIGTERM, ... or NULL
    trace_id    TEXT,                   -- filled in when telemetry is on
    pid         INTEGER
);
CREATE TABLE IF NOT EXISTS task_runs (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    pipeline    TEXT NOT NULL,
    task        TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    duration    REAL,
    waited      REAL NOT NULL DEFAULT 0,
    worker      TEXT,
    error_type  TEXT,
    reason      TEXT,
    PRIMARY KEY (run_id, task)
);
CREATE TABLE IF NOT EXISTS task_estimates (
    pipeline    TEXT NOT NULL,
    task        TEXT NOT NULL,
    expected    REAL NOT NULL,          -- seconds: mean of the recent runs (see EXPECTED_DURATION_WINDOW)
    samples     INTEGER NOT NULL,
    PRIMARY KEY (pipeline, task)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_waits (
    run_id  TEXT NOT NULL,
    task    TEXT NOT NULL,
    reason  TEXT NOT NULL,              -- retry | rate_limit | resource | ...
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, task, reason)
);
"""

# Schema changes after version 1, applied in order to older files (and to new ones after _SCHEMA).
# Columns are only ever appended, so the positional INSERTs below match every migrated file.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (  # run history and --resume: what a run resumed and selected; each task's upstream and origin
        "ALTER TABLE runs ADD COLUMN resumed_from TEXT",
        "ALTER TABLE runs ADD COLUMN selection TEXT",
        "ALTER TABLE task_runs ADD COLUMN upstream TEXT",  # JSON list of task names; NULL before version 2
        "ALTER TABLE task_runs ADD COLUMN resumed_from TEXT",
        "ALTER TABLE task_runs ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0",
    ),
}

# Errors that mean "someone else holds the lock right now": wait and try again.
_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED_SHAREDCACHE"}
# Errors that mean "this file is not a usable stats database": move it aside and start anew.
_BROKEN = {
    "SQLITE_NOTADB",
    "SQLITE_CORRUPT",
    "SQLITE_CORRUPT_VTAB",
    "SQLITE_CORRUPT_SEQUENCE",
    "SQLITE_IOERR_SHORT_READ",
}

T = TypeVar("T")


class _NotOurs(Exception):
    """The file is an SQLite database, but not a Task Engine statistics database."""


class _NewerSchema(Exception):
    """The PostgreSQL database holds a schema newer than this version knows: leave it alone."""


@dataclass(frozen=True)
class TaskSummary:
    """Aggregated history of one task: how often it ran, how long it took, how often it failed."""

    task: str
    runs: int
    mean: float | None
    p50: float | None
    p95: float | None
    failures: int
    mean_waited: float | None

    @property
    def failure_rate(self) -> float | None:
        """Failed runs / started runs, or None without history."""
        return self.failures / self.runs if self.runs else None


@dataclass(frozen=True)
class RecordedRun:
    """One recorded run, as `runs TARGET` lists it: identity, timing, outcome and counts per state."""

    run_id: str
    pipeline: str
    started_at: str | None
    duration: float | None
    outcome: str
    counts: dict[str, int]
    resumed_from: str | None
    selection: str


@dataclass(frozen=True)
class RecordedTask:
    """One task of one recorded run; `upstream` is None for runs recorded before schema 2."""

    task: str
    state: str
    attempts: int
    duration: float | None
    upstream: tuple[str, ...] | None
    resumed_from: str | None
    excluded: bool
    error_type: str | None
    reason: str | None


#: Values of TASK_ENGINE_STATS that turn statistics off.
STATS_OFF_VALUES = frozenset({"off", "0", "false", "no"})


#: URL schemes that select PostgresStatsStore.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_stats_store(
    stats: StatsStore | str | os.PathLike[str] | bool | None = None,
    *,
    use_default: bool = True,
    connect_timeout: float | None = None,
) -> StatsStore | None:
    """Where statistics live, as a store: the one resolution every writer and reader uses.

    Readers never resolve a path of their own (the `--progress` ETA, `stats`, `runs`, priority
    and Airflow's priority weights all come through here), so TASK_ENGINE_STATS=PATH, a
    `postgresql://` URL and `off` mean the same to each; `tests/test_stats_location.py` checks it.

    `stats` is a StatsStore, a file path, a `postgresql://` URL, False (none) or None/True (the
    configured place: TASK_ENGINE_STATS, else `.task_engine/stats.sqlite3`, created when first
    written). `use_default=False` returns None instead of the working-directory file, for readers
    whose working directory means nothing (Airflow's DAG parsing). `connect_timeout` bounds how
    long a PostgreSQL store waits for its server.
    """
    if stats is False:
        return None
    if isinstance(stats, StatsStore):
        return stats
    create_directory = False
    if stats is None or stats is True:
        configured = os.environ.get(STATS_ENVIRONMENT_VARIABLE, "").strip()
        if configured.lower() in STATS_OFF_VALUES:
            return None
        if not configured and not use_default:
            return None
        stats, create_directory = (configured, False) if configured else (default_stats_path(), True)
    if isinstance(stats, (str, os.PathLike)) and str(stats):
        text = os.fspath(stats)
        if isinstance(text, str) and text.lower().startswith(POSTGRES_SCHEMES):
            return PostgresStatsStore(text, connect_timeout=connect_timeout or 10.0)
        return StatsStore(text, create_directory=create_directory)
    from .errors import InvalidArgumentError

    raise InvalidArgumentError(
        f"stats={stats!r}: pass a file path, a postgresql:// URL, None for .task_engine/stats.sqlite3, "
        f"or False for no statistics"
    )


def default_stats_path(directory: str | os.PathLike[str] | None = None) -> Path:
    """`.task_engine/stats.sqlite3` under `directory` (the working directory by default)."""
    return Path(directory if directory is not None else os.getcwd()) / DEFAULT_STATS_DIRECTORY / DEFAULT_STATS_FILE


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (`fraction` in 0..1) of already sorted values."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


class StatsStore:
    """One statistics database file, used through one connection that a lock serialises.

    Writers use WAL, a busy timeout and a retry loop, so several processes may record at once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create_directory: bool = False,
        busy_timeout: float = 10.0,
        give_up_after: float = 60.0,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        #: Read-only stores (a dry run) never create, migrate, move or write the file.
        self.read_only = read_only
        self._version = SCHEMA_VERSION
        self.create_directory = create_directory
        self.busy_timeout = busy_timeout
        self.give_up_after = give_up_after
        self._lock = threading.Lock()
        self._open: sqlite3.Connection | None = None
        self._busy_now = busy_timeout

    def __repr__(self) -> str:
        return f"<StatsStore {str(self.path)!r}>"

    def reader(self) -> StatsStore:
        """A read-only twin of this store (for a dry run): reads what exists, never creates or writes."""
        return StatsStore(self.path, busy_timeout=self.busy_timeout, give_up_after=self.give_up_after, read_only=True)

    @property
    def location(self) -> str:
        """Where the statistics are, for messages: the file path (a URL for PostgreSQL, password masked)."""
        return str(self.path)

    def exists(self) -> bool:
        """Whether there may be statistics to read (the file exists); readers check before opening."""
        return self.path.is_file()

    # -- writing ----------------------------------------------------------------------------
    def record(self, result: RunResult, upstream: Mapping[str, Sequence[str]] | None = None) -> bool:
        """Write `result` (the run and every task, with its `upstream`) in one transaction; False if skipped."""
        if self.read_only:
            return False
        run_row = _run_row(result)
        upstream = upstream or {}
        wait_rows = [
            (result.run_id, encodable(r.name), encodable(reason), seconds)
            for r in result.tasks.values()
            if r.waits
            for reason, seconds in r.waits.items()
        ]

        def write(connection: sqlite3.Connection) -> bool:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(_INSERT_RUN, run_row)
                # Rows are generated as SQLite takes them: a 100,000-task run never holds them all.
                connection.executemany(_INSERT_TASK_RUN, _task_rows(result, upstream))
                if wait_rows:
                    connection.executemany("INSERT INTO task_waits VALUES (?, ?, ?, ?)", wait_rows)
                connection.executemany(_UPDATE_ESTIMATE, _estimate_rows(result))
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return True

        return self._use(write, False, f"run {result.run_id} of pipeline {result.pipeline!r} was not recorded")

    def record_task(
        self,
        run_id: str,
        pipeline: str,
        task: TaskResult,
        *,
        tasks: int,
        trace_id: str | None = None,
        upstream: Sequence[str] | None = None,
        resumed_from: str | None = None,
        selection: str = "",
    ) -> bool:
        """Write one finished task of a run no single process sees whole (an Airflow dag run).

        The task gets its `task_runs` row (a cleared task's later run replaces it), with its
        `upstream`, and whether the selection left it out or it was resumed; the run's one
        `runs` row is created by its first finished task and widened by the others: earliest
        start, latest end, `failed` once any task failed, the run's `resumed_from` and
        `selection` as the first task wrote them. False (and a warning) if skipped.
        """
        if self.read_only:
            return False
        outcome = "failed" if task.state is TaskState.FAILED else "success"
        start, end = _iso(task.start), _iso(task.end)
        run_row = (
            run_id,
            pipeline,
            start,
            end,
            task.duration,
            1,
            tasks,
            outcome,
            None,
            trace_id,
            os.getpid(),
            resumed_from,
            selection or None,
        )
        task_row = _task_row(run_id, pipeline, task, upstream)
        wait_rows = [(run_id, task.name, reason, seconds) for reason, seconds in task.waits.items()]

        def statements(connection: sqlite3.Connection) -> None:
            connection.execute(_UPSERT_RUN, run_row)
            # The run lasts from its earliest start to its latest end; the row is ours (locked) until commit.
            started, finished = connection.execute(
                "SELECT started_at, finished_at FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if started is not None and finished is not None:
                span = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
                connection.execute("UPDATE runs SET duration = ? WHERE run_id = ?", (span, run_id))
            replaced = connection.execute(
                "DELETE FROM task_runs WHERE run_id = ? AND task = ?", (run_id, task.name)
            ).rowcount
            connection.execute(_INSERT_TASK_RUN, task_row)
            connection.execute("DELETE FROM task_waits WHERE run_id = ? AND task = ?", (run_id, task.name))
            connection.executemany("INSERT INTO task_waits VALUES (?, ?, ?, ?)", wait_rows)
            if task.attempts and task.duration is not None and not replaced:  # a cleared task's rerun counts once
                connection.execute(_UPDATE_ESTIMATE, (pipeline, task.name, task.duration))

        return self._use(
            partial(_in_transaction, statements),
            False,
            f"task {task.name!r} of run {run_id} (pipeline {pipeline!r}) was not recorded",
        )

    # -- reading ----------------------------------------------------------------------------
    def expected_durations(self, pipeline: str) -> dict[str, float]:
        """Task -> expected seconds from its recent runs (every run that started counts); {} without history."""

        def read(connection: sqlite3.Connection) -> dict[str, float]:
            rows = connection.execute("SELECT task, expected FROM task_estimates WHERE pipeline = ?", (pipeline,))
            return dict(rows.fetchall())

        # Priority is a nicety: a database another process holds locked may delay the first task by
        # about a second (PRIORITY_READ_WAIT), never for as long as the lock is held.
        return self._use(
            read,
            {},
            "expected durations are unavailable; ready tasks start in registration order",
            wait=PRIORITY_READ_WAIT,
        )

    def summaries(self, pipeline: str, tasks: Sequence[str] | None = None) -> list[TaskSummary]:
        """Per-task history of `pipeline`: runs, mean / p50 / p95 duration, failures; `tasks` order first."""

        def read(connection: sqlite3.Connection) -> list[TaskSummary]:
            rows = connection.execute(
                "SELECT task, state, duration, waited FROM task_runs WHERE pipeline = ? AND attempts > 0",
                (pipeline,),
            )
            history: dict[str, list[tuple[str, float | None, float]]] = {}
            for task, state, duration, waited in rows:
                history.setdefault(task, []).append((state, duration, waited))
            names = list(tasks or ()) + sorted(set(history) - set(tasks or ()))
            return [_summarise(name, history.get(name, [])) for name in names]

        return self._use(read, [], "the statistics cannot be read")

    def run_count(self, pipeline: str | None = None) -> int:
        """How many runs are recorded (of `pipeline`, or of every pipeline)."""

        def read(connection: sqlite3.Connection) -> int:
            if pipeline is None:
                return int(connection.execute("SELECT count(*) FROM runs").fetchone()[0])
            return int(connection.execute("SELECT count(*) FROM runs WHERE pipeline = ?", (pipeline,)).fetchone()[0])

        return self._use(read, 0, "the statistics cannot be read")

    def recorded_runs(self, pipeline: str, limit: int | None = None) -> list[RecordedRun]:
        """The recorded runs of `pipeline`, newest first (at most `limit`), with counts per state."""

        def read(connection: sqlite3.Connection) -> list[RecordedRun]:
            newer = self._version >= 2
            columns = "resumed_from, selection" if newer else "NULL, NULL"
            rows = connection.execute(
                f"SELECT run_id, started_at, duration, outcome, {columns} FROM runs WHERE pipeline = ? "
                f"ORDER BY started_at DESC, rowid DESC" + (" LIMIT ?" if limit is not None else ""),
                (pipeline, limit) if limit is not None else (pipeline,),
            ).fetchall()
            counted = "state, excluded, resumed_from IS NOT NULL" if newer else "state, 0, 0"
            counts: dict[str, dict[str, int]] = {}
            for run_id, state, excluded, resumed, n in connection.execute(
                f"SELECT run_id, {counted}, count(*) FROM task_runs WHERE pipeline = ? GROUP BY 1, 2, 3, 4",
                (pipeline,),
            ):
                label = "not selected" if excluded else f"{state} (resumed)" if resumed else state
                per_run = counts.setdefault(run_id, {})
                per_run[label] = per_run.get(label, 0) + n
            return [
                RecordedRun(
                    run_id, pipeline, started, duration, outcome, counts.get(run_id, {}), resumed_from, selection or ""
                )
                for run_id, started, duration, outcome, resumed_from, selection in rows
            ]

        return self._use(read, [], "the recorded runs cannot be read")

    def recorded_tasks(self, run_id: str) -> list[RecordedTask]:
        """Every task of recorded run `run_id` in the order it was recorded (plan order); [] if unknown."""

        def read(connection: sqlite3.Connection) -> list[RecordedTask]:
            columns = "upstream, resumed_from, excluded" if self._version >= 2 else "NULL, NULL, 0"
            rows = connection.execute(
                f"SELECT task, state, attempts, duration, {columns}, error_type, reason FROM task_runs "
                f"WHERE run_id = ? ORDER BY rowid",
                (run_id,),
            )
            return [
                RecordedTask(
                    task,
                    state,
                    attempts,
                    duration,
                    None if upstream is None else tuple(json.loads(upstream)),
                    resumed_from,
                    bool(excluded),
                    error_type,
                    reason,
                )
                for task, state, attempts, duration, upstream, resumed_from, excluded, error_type, reason in rows
            ]

        return self._use(read, [], f"the tasks of run {run_id} cannot be read")

    def run_pipelines(self, prefix: str) -> dict[str, str]:
        """Run id -> pipeline for every recorded run whose id starts with `prefix`."""

        def read(connection: sqlite3.Connection) -> dict[str, str]:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = connection.execute(
                "SELECT run_id, pipeline FROM runs WHERE run_id LIKE ? ESCAPE '\\'", (escaped + "%",)
            )
            return dict(rows.fetchall())

        return self._use(read, {}, "the recorded runs cannot be read")

    # -- plumbing ---------------------------------------------------------------------------
    def _use(
        self, action: Callable[[sqlite3.Connection], T], fallback: T, consequence: str, *, wait: float | None = None
    ) -> T:
        """Run `action` on a ready connection; retry while busy (at most `wait` s), recover once from a broken file."""
        deadline = time.monotonic() + (self.give_up_after if wait is None else wait)
        busy = self.busy_timeout if wait is None else min(self.busy_timeout, wait)
        recovered = False
        delay = 0.02
        while True:
            try:
                if self.read_only and not self.path.is_file():
                    return fallback  # nothing recorded yet, and a read-only store creates nothing
                if not self._directory_ready():
                    return fallback
                with self._lock:
                    return action(self._connection(busy))
            except sqlite3.DatabaseError as error:
                self.close()
                code = getattr(error, "sqlite_errorname", "")
                if code in _BUSY and time.monotonic() < deadline:
                    time.sleep(delay * (1 + random.random()))  # jitter: two writers must not retry in step
                    delay = min(delay * 2, 1.0)
                    continue
                if (code in _BROKEN or (code == "SQLITE_CANTOPEN" and self.path.is_file())) and not recovered:
                    recovered = self._move_aside(f"{error} ({code})")
                    if recovered:
                        continue
                self._warn(f"{error} ({code or type(error).__name__}); {consequence}")
                return fallback
            except _NotOurs as error:
                self.close()
                if not recovered:
                    recovered = self._move_aside(str(error))
                    if recovered:
                        continue
                self._warn(f"{error}; {consequence}")
                return fallback
            except OSError as error:
                self._warn(f"{error}; {consequence}")
                return fallback

    def _directory_ready(self) -> bool:
        directory = self.path.parent
        if directory.is_dir():
            return True
        if self.create_directory:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                return True
            except OSError as error:
                self._warn(f"cannot create the statistics folder {str(directory)!r}: {error}; statistics are off")
                return False
        self._warn(
            f"the statistics folder {str(directory)!r} does not exist; create it or pass another path "
            f"with --stats PATH (or --no-stats)"
        )
        return False

    def _connection(self, busy: float | None = None) -> sqlite3.Connection:
        """The store's open connection, opened (and the schema checked) on first use; `busy` s of lock waiting.

        Kept open between runs: closing the last connection of a WAL database checkpoints it,
        which would cost every run a copy of the log.
        """
        busy = self.busy_timeout if busy is None else busy
        if self._open is not None:
            if busy != self._busy_now:
                self._open.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
                self._busy_now = busy
            return self._open
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE takes the write lock up
        # front, so two writers never deadlock upgrading a read lock). check_same_thread=False:
        # the store's lock serialises use, and a run may finish on another thread than it began.
        if self.read_only:
            # Without a write-ahead log beside it the file is complete, and `immutable` reads it
            # without creating the -shm/-wal files a WAL reader otherwise leaves behind.
            wal = self.path.with_name(self.path.name + "-wal")
            mode = "ro" if wal.exists() else "ro&immutable=1"
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode={mode}",
                uri=True,
                timeout=busy,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version == 0 or version > SCHEMA_VERSION:
                    raise _NotOurs(f"it holds no statistics this Task Engine can read (schema {version})")
            except BaseException:
                connection.close()
                raise
            self._version = version
            self._busy_now = busy
            self._open = connection
            return connection
        connection = sqlite3.connect(self.path, timeout=busy, isolation_level=None, check_same_thread=False)
        self._busy_now = busy
        try:
            # WAL + NORMAL: a crash may lose the last run's rows, never corrupt the file; commits
            # skip an fsync each.
            connection.execute("PRAGMA synchronous=NORMAL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._create_schema(connection)
            elif version < SCHEMA_VERSION:
                self._migrate(connection)
            elif version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"it was written by a newer Task Engine (schema {version}, this one knows {SCHEMA_VERSION})"
                )
        except BaseException:
            connection.close()
            raise
        self._open = connection
        return connection

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._open is not None:
            connection, self._open = self._open, None
            connection.close()

    @staticmethod
    def _create_schema(connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created it between our check and our lock.
            if connection.execute("PRAGMA user_version").fetchone()[0] == 0:
                existing = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
                if existing:
                    raise _NotOurs(f"it is an SQLite database with other tables ({', '.join(sorted(existing))})")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                _apply_migrations(connection, 1)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        # Only once the file is known to be ours (a foreign file is left as it was found):
        # WAL, so readers never block the writer. The setting is stored in the file.
        connection.execute("PRAGMA journal_mode=WAL")

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated it between our check and our lock.
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                _apply_migrations(connection, version)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _move_aside(self, why: str) -> bool:
        if self.read_only:
            return False  # a dry run leaves even a broken file where it is
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.broken-{stamp}-{os.getpid()}")
        try:
            os.replace(self.path, target)
        except FileNotFoundError:
            return True  # another process moved it aside first
        except OSError as error:
            self._warn(f"{why}; it could not be moved aside ({error}); statistics are off for this run")
            return False
        for suffix in ("-wal", "-shm"):
            sidecar = self.path.with_name(self.path.name + suffix)
            try:
                os.replace(sidecar, target.with_name(target.name + suffix))
            except OSError:
                pass  # usually absent
        self._warn(f"{why}; moved it to {str(target)!r} and started a new one")
        return True

    def _warn(self, message: str) -> None:
        warnings.warn(f"statistics file {str(self.path)!r}: {message}", StatsWarning, stacklevel=2)


def _apply_migrations(connection: sqlite3.Connection, version: int) -> None:
    """Bring a schema of `version` to SCHEMA_VERSION inside the caller's transaction."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[target]:
            connection.execute(statement)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class TaskStatsRecorder:
    """A listener recording each finished task on its own (`StatsStore.record_task`), for orchestrated runs.

    Use it where no process sees a whole run (an Airflow try runs one task): every task's
    TaskFinished adds its row, and together they make the run's one `runs` row.
    """

    event_types = (TaskFinished,)

    def __init__(
        self,
        store: StatsStore,
        pipeline: str,
        tasks: int,
        trace_id: str | None = None,
        *,
        upstream: Mapping[str, Sequence[str]] | None = None,
        resumed_from: str | None = None,
        selection: str = "",
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.tasks = tasks
        self.trace_id = trace_id
        self.upstream = upstream or {}
        self.resumed_from = resumed_from
        self.selection = selection

    def __call__(self, event: Event) -> None:
        if type(event) is TaskFinished:
            result = event.result
            self.store.record_task(
                event.run_id,
                self.pipeline,
                result,
                tasks=self.tasks,
                trace_id=self.trace_id,
                upstream=self.upstream.get(result.name),
                resumed_from=self.resumed_from,
                selection=self.selection,
            )

    def __repr__(self) -> str:
        return f"<TaskStatsRecorder {self.store.location!r}>"


class RunStatsRecorder:
    """A listener recording each finished run whole in a StatsStore (`StatsStore.record`); TaskStatsRecorder's sibling."""

    #: Only the run's start (its graph) and end matter; the bus need not build task events for this.
    event_types = (RunStarted, RunFinished)

    def __init__(self, store: StatsStore) -> None:
        self.store = store
        self._upstream: dict[str, Mapping[str, Sequence[str]]] = {}

    def __call__(self, event: Event) -> None:
        if type(event) is RunStarted:
            self._upstream[event.run_id] = event.upstream
        elif type(event) is RunFinished:
            self.store.record(event.result, self._upstream.pop(event.run_id, None))

    def __repr__(self) -> str:
        return f"<RunStatsRecorder {self.store.location!r}>"


def _in_transaction(statements: Callable[[sqlite3.Connection], None], connection: sqlite3.Connection) -> bool:
    """Run `statements` in one immediate transaction; True once committed."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        statements(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return True


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _run_row(result: RunResult) -> tuple[object, ...]:
    outcome = "interrupted" if result.interrupted else "success" if result.succeeded else "failed"
    return (
        result.run_id,
        result.pipeline,
        _iso(result.start),
        _iso(result.end),
        result.duration,
        result.workers,
        len(result.tasks),
        outcome,
        result.interrupted,
        result.trace_id,
        os.getpid(),
        result.resumed_from,
        result.selection or None,
    )


def _task_rows(run: RunResult, upstream: Mapping[str, Sequence[str]]) -> Iterator[tuple[object, ...]]:
    """A run's `task_runs` rows, one task at a time."""
    run_id, pipeline = run.run_id, run.pipeline
    for task in run.tasks.values():
        yield _task_row(run_id, pipeline, task, upstream.get(task.name))


def _estimate_rows(run: RunResult) -> Iterator[tuple[str, str, float]]:
    """A run's `task_estimates` updates: every task that started."""
    pipeline = run.pipeline
    for task in run.tasks.values():
        if task.attempts and task.duration is not None:
            yield pipeline, task.name, task.duration


def _task_row(run_id: str, pipeline: str, task: TaskResult, upstream: Sequence[str] | None) -> tuple[object, ...]:
    start, end, waits, reason = task.start, task.end, task.waits, task.reason
    return (
        run_id,
        pipeline,
        encodable(task.name),
        task.state.value,
        task.attempts,
        start.isoformat() if start is not None else None,
        end.isoformat() if end is not None else None,
        task.duration,
        sum(waits.values()) if waits else 0.0,  # TaskResult.waited, without a generator per row
        task.worker or None,
        type(task.error).__name__ if task.error is not None else None,
        encodable(mask_text(reason)) or None if reason else None,  # a SkipTask message may quote a secret
        _json_names(upstream) if upstream is not None else None,
        task.resumed_from,
        int(task.excluded),
    )


def _json_names(names: Sequence[str]) -> str:
    """`json.dumps(list(names))` for a list of strings, without the encoder's per-call set-up."""
    return "[" + ", ".join(map(encode_basestring_ascii, names)) + "]"


def _summarise(task: str, history: list[tuple[str, float | None, float]]) -> TaskSummary:
    from statistics import fmean  # only the `stats` command summarises; a run does not import statistics

    durations = sorted(duration for _, duration, _ in history if duration is not None)
    waits = [waited for _, _, waited in history]
    return TaskSummary(
        task=task,
        runs=len(history),
        mean=fmean(durations) if durations else None,
        p50=percentile(durations, 0.50) if durations else None,
        p95=percentile(durations, 0.95) if durations else None,
        failures=sum(1 for state, _, _ in history if state == TaskState.FAILED.value),
        mean_waited=fmean(waits) if waits else None,
    )


class _PostgresConnection:
    """A psycopg connection spoken to like the sqlite3 one, so every StatsStore query runs on both."""

    def __init__(self, connection: Any) -> None:
        self.raw = connection

    @staticmethod
    def _sql(statement: str) -> str:
        # Our statements hold no literal "?"; BEGIN IMMEDIATE is SQLite's "take the write lock now".
        statement = statement.replace("BEGIN IMMEDIATE", "BEGIN")
        # SQLite's rowid (insertion order of a row) is PostgreSQL's ctid for these append-only tables.
        statement = re.sub(r"\browid\b", "ctid", statement)
        return statement.replace("?", "%s")

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the cursor (fetchone, fetchall, iteration)."""
        return self.raw.execute(self._sql(statement), tuple(parameters))

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement per row."""
        rows = [tuple(row) for row in rows]
        if rows:
            with self.raw.cursor() as cursor:
                cursor.executemany(self._sql(statement), rows)


class PostgresStatsStore(StatsStore):
    """Statistics in PostgreSQL (psycopg 3): one database every worker of every machine records into.

    The schema is the SQLite one, created on first use under an advisory lock (two workers may
    start at once) and versioned in `task_engine_schema`. Like the file store it never fails a
    run: an unreachable server gives one StatsWarning per store and the fallback (no history).
    """

    def __init__(self, url: str, *, connect_timeout: float = 10.0, give_up_after: float = 30.0) -> None:
        self.url = url
        try:
            import psycopg  # noqa: F401 - checked here so a missing extra stops a run before it starts
        except ImportError:
            from .errors import MissingExtraError

            raise MissingExtraError("psycopg", "postgres", f"the PostgreSQL statistics store {self.location}") from None
        self.connect_timeout = connect_timeout
        self.give_up_after = give_up_after
        self.path = Path(url)  # unused for PostgreSQL; kept so code reading .path sees something
        self._lock = threading.Lock()
        self._open: _PostgresConnection | None = None  # type: ignore[assignment]
        self._pid = os.getpid()
        self._warned = False
        self.read_only = False
        self.busy_timeout = 0.0
        self._version = SCHEMA_VERSION  # _ensure_schema brings every server's schema to this version

    def __repr__(self) -> str:
        return f"<PostgresStatsStore {self.location!r}>"

    def reader(self) -> PostgresStatsStore:
        """A twin of this store that never records (for a dry run); reading may still create the schema."""
        twin = PostgresStatsStore(self.url, connect_timeout=self.connect_timeout, give_up_after=self.give_up_after)
        twin.read_only = True
        return twin

    @property
    def location(self) -> str:
        """The URL with its password masked."""
        return _POSTGRES_PASSWORD.sub(r"\1***@", self.url)

    def exists(self) -> bool:
        """A server is always worth asking (an unreachable one warns and reads as empty)."""
        return True

    def _use(self, action: Callable[[Any], T], fallback: T, consequence: str, *, wait: float | None = None) -> T:
        """Run `action` on a ready connection; retry a deadlock until `wait` (default give_up_after), else warn once."""
        import psycopg

        deadline = time.monotonic() + (self.give_up_after if wait is None else wait)
        delay = 0.05
        reason: Exception
        while True:
            try:
                with self._lock:
                    return action(self._connection())
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as error:
                retry, reason = True, error
            except psycopg.OperationalError as error:
                # Connecting failed, or the server went away: no point retrying until the deadline.
                retry, reason = False, error
            except (psycopg.Error, _NewerSchema) as error:
                retry, reason = False, error
            self.close()
            if retry and time.monotonic() < deadline:
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
                continue
            detail = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
            self._warn(f"{detail} ({type(reason).__name__}); {consequence}")
            return fallback

    def _connection(self, busy: float | None = None) -> Any:  # busy: SQLite's lock wait; a server has its own
        if self._open is not None and self._pid == os.getpid():
            return self._open
        import psycopg

        self._open, self._pid = None, os.getpid()  # a forked worker opens its own connection
        raw = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, math.ceil(self.connect_timeout)))
        connection = _PostgresConnection(raw)
        try:
            self._ensure_schema(connection)
        except BaseException:
            raw.close()
            raise
        self._open = connection
        return connection

    @staticmethod
    def _ensure_schema(connection: _PostgresConnection) -> None:
        connection.execute("BEGIN")
        try:
            # One creator at a time: the lock ends with the transaction.
            connection.execute("SELECT pg_advisory_xact_lock(hashtext('task_engine_stats_schema'))")
            connection.execute("CREATE TABLE IF NOT EXISTS task_engine_schema (version INTEGER NOT NULL)")
            version = connection.execute("SELECT max(version) FROM task_engine_schema").fetchone()[0]
            if version is None:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(_postgres_ddl(statement))
                _postgres_migrate(connection, 1)
                connection.execute("INSERT INTO task_engine_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            elif version < SCHEMA_VERSION:
                _postgres_migrate(connection, version)
                connection.execute("INSERT INTO task_engine_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            elif version > SCHEMA_VERSION:
                raise _NewerSchema(
                    f"it was written by a newer Task Engine (schema {version}, this one knows {SCHEMA_VERSION})"
                )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        connection, self._open = self._open, None
        if connection is not None and self._pid == os.getpid():
            try:
                connection.raw.close()
            except Exception:  # noqa: BLE001 - the connection is being dropped because it failed
                pass

    def _warn(self, message: str) -> None:
        # One warning per store: a DAG file parsed with the server down must not repeat it per query.
        if not self._warned:
            self._warned = True
            warnings.warn(f"statistics database {self.location}: {message}", StatsWarning, stacklevel=3)


_POSTGRES_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def _postgres_ddl(statement: str) -> str:
    # SQLite's REAL is a double; PostgreSQL's REAL is single precision.
    return statement.replace(" REAL", " DOUBLE PRECISION").replace(") WITHOUT ROWID", ")")


def _postgres_migrate(connection: _PostgresConnection, version: int) -> None:
    """Apply _MIGRATIONS after `version` (inside the caller's transaction, under its advisory lock)."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS.get(target, ()):
            connection.execute(_postgres_ddl(statement.replace("ADD COLUMN ", "ADD COLUMN IF NOT EXISTS ")))
