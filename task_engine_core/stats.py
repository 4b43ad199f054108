"""Runtime statistics in an embedded SQLite database: written after every run, read for priority.

`StatsRecorder` is a run-event listener: on RunFinished it writes the run and one row per task in
one transaction. Statistics are a convenience, never a reason for a run to fail: a locked file is
retried, a corrupt or unreadable file is moved aside and started anew, and a location that cannot
be written (read-only or missing directory) only gives a StatsWarning.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from statistics import fmean
from typing import TypeVar

from ._secrets import mask_text
from .events import Event, RunFinished, TaskFinished
from .result import RunResult, TaskResult
from .task import TaskState

__all__ = [
    "DEFAULT_STATS_DIRECTORY",
    "DEFAULT_STATS_FILE",
    "SCHEMA_VERSION",
    "StatsRecorder",
    "StatsStore",
    "STATS_ENVIRONMENT_VARIABLE",
    "StatsWarning",
    "TaskStatsRecorder",
    "TaskSummary",
    "configured_stats_path",
    "default_stats_path",
    "percentile",
]

DEFAULT_STATS_DIRECTORY = ".task_engine"
DEFAULT_STATS_FILE = "stats.sqlite3"
STATS_ENVIRONMENT_VARIABLE = "TASK_ENGINE_STATS"
SCHEMA_VERSION = 1
#: The expected duration of a task is the plain mean of its first runs, then a moving average
#: in which the newest run weighs 1/EXPECTED_DURATION_WINDOW: recent runs count, outliers fade.
EXPECTED_DURATION_WINDOW = 20

# Kept up to date in the same transaction as the run, so reading expectations before a run costs
# one row per task however long the history grows.
_UPDATE_ESTIMATE = f"""
INSERT INTO task_estimates (pipeline, task, expected, samples) VALUES (?, ?, ?, 1)
ON CONFLICT (pipeline, task) DO UPDATE SET
    expected = expected + (excluded.expected - expected) / min(samples + 1, {EXPECTED_DURATION_WINDOW}),
    samples = samples + 1
"""

# One run's row, written by each of its tasks in turn (runs orchestrated across processes).
_UPSERT_RUN = """
INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    started_at = min(coalesce(runs.started_at, excluded.started_at), coalesce(excluded.started_at, runs.started_at)),
    finished_at = max(coalesce(runs.finished_at, excluded.finished_at), coalesce(excluded.finished_at, runs.finished_at)),
    duration = (julianday(max(coalesce(runs.finished_at, excluded.finished_at), coalesce(excluded.finished_at, runs.finished_at)))
        - julianday(min(coalesce(runs.started_at, excluded.started_at), coalesce(excluded.started_at, runs.started_at)))) * 86400.0,
    outcome = CASE WHEN runs.outcome = 'failed' THEN 'failed' ELSE excluded.outcome END,
    trace_id = coalesce(runs.trace_id, excluded.trace_id)
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

# Errors that mean "someone else holds the lock right now": wait and try again.
_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED_SHAREDCACHE"}
# Errors that mean "this file is not a usable stats database": move it aside and start anew.
_BROKEN = {"SQLITE_NOTADB", "SQLITE_CORRUPT", "SQLITE_CORRUPT_VTAB", "SQLITE_CORRUPT_SEQUENCE", "SQLITE_IOERR_SHORT_READ"}

T = TypeVar("T")


class StatsWarning(UserWarning):
    """Statistics could not be read or written; the run itself is unaffected."""


class _NotOurs(Exception):
    """The file is an SQLite database, but not a Task Engine statistics database."""


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


def configured_stats_path() -> tuple[Path | None, bool]:
    """The statistics file used when none is given, and whether it is the default location.

    `TASK_ENGINE_STATS=PATH` moves it (useful for CI and tests), `TASK_ENGINE_STATS=off` turns
    statistics off; otherwise it is `.task_engine/stats.sqlite3` under the working directory.
    """
    configured = os.environ.get(STATS_ENVIRONMENT_VARIABLE, "").strip()
    if configured.lower() in ("off", "0", "false", "no"):
        return None, False
    if configured:
        return Path(configured), False
    return default_stats_path(), True


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
    ) -> None:
        self.path = Path(path)
        self.create_directory = create_directory
        self.busy_timeout = busy_timeout
        self.give_up_after = give_up_after
        self._lock = threading.Lock()
        self._open: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"<StatsStore {str(self.path)!r}>"

    # -- writing ----------------------------------------------------------------------------
    def record(self, result: RunResult) -> bool:
        """Write `result` (the run and every task) in one transaction; False (and a warning) if skipped."""
        run_row = _run_row(result)
        task_rows = [_task_row(result, r) for r in result.tasks.values()]
        estimate_rows = [
            (result.pipeline, r.name, r.duration)
            for r in result.tasks.values()
            if r.attempts and r.duration is not None
        ]
        wait_rows = [
            (result.run_id, r.name, reason, seconds)
            for r in result.tasks.values()
            for reason, seconds in r.waits.items()
        ]

        def write(connection: sqlite3.Connection) -> bool:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(run_row))})", run_row)
                connection.executemany(
                    f"INSERT INTO task_runs VALUES ({', '.join('?' * 12)})", task_rows
                )
                connection.executemany("INSERT INTO task_waits VALUES (?, ?, ?, ?)", wait_rows)
                connection.executemany(_UPDATE_ESTIMATE, estimate_rows)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return True

        return self._use(write, False, f"run {result.run_id} of pipeline {result.pipeline!r} was not recorded")

    def record_task(
        self, run_id: str, pipeline: str, task: TaskResult, *, tasks: int, trace_id: str | None = None
    ) -> bool:
        """Write one finished task of a run no single process sees whole (an Airflow dag run).

        The task gets its `task_runs` row (a cleared task's later run replaces it); the run's one
        `runs` row is created by its first finished task and widened by the others: earliest
        start, latest end, `failed` once any task failed. False (and a warning) if skipped.
        """
        outcome = "failed" if task.state is TaskState.FAILED else "success"
        start, end = _iso(task.start), _iso(task.end)
        run_row = (run_id, pipeline, start, end, task.duration, 1, tasks, outcome, None, trace_id, os.getpid())
        holder = RunResult(run_id, pipeline, {task.name: task})
        task_row = _task_row(holder, task)
        wait_rows = [(run_id, task.name, reason, seconds) for reason, seconds in task.waits.items()]

        def statements(connection: sqlite3.Connection) -> None:
            connection.execute(_UPSERT_RUN, run_row)
            replaced = connection.execute(
                "DELETE FROM task_runs WHERE run_id = ? AND task = ?", (run_id, task.name)
            ).rowcount
            connection.execute(f"INSERT INTO task_runs VALUES ({', '.join('?' * 12)})", task_row)
            connection.execute("DELETE FROM task_waits WHERE run_id = ? AND task = ?", (run_id, task.name))
            connection.executemany("INSERT INTO task_waits VALUES (?, ?, ?, ?)", wait_rows)
            if task.attempts and task.duration is not None and not replaced:  # a cleared task's rerun counts once
                connection.execute(_UPDATE_ESTIMATE, (pipeline, task.name, task.duration))

        return self._use(partial(_in_transaction, statements), False, f"task {task.name!r} of run {run_id} (pipeline {pipeline!r}) was not recorded")

    # -- reading ----------------------------------------------------------------------------
    def expected_durations(self, pipeline: str) -> dict[str, float]:
        """Task -> expected seconds from its recent runs (every run that started counts); {} without history."""

        def read(connection: sqlite3.Connection) -> dict[str, float]:
            rows = connection.execute("SELECT task, expected FROM task_estimates WHERE pipeline = ?", (pipeline,))
            return dict(rows.fetchall())

        return self._use(read, {}, "expected durations are unavailable; ready tasks start in registration order")

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
                return connection.execute("SELECT count(*) FROM runs").fetchone()[0]
            return connection.execute("SELECT count(*) FROM runs WHERE pipeline = ?", (pipeline,)).fetchone()[0]

        return self._use(read, 0, "the statistics cannot be read")

    # -- plumbing ---------------------------------------------------------------------------
    def _use(self, action: Callable[[sqlite3.Connection], T], fallback: T, consequence: str) -> T:
        """Run `action` on a ready connection; retry while busy, recover once from a broken file."""
        deadline = time.monotonic() + self.give_up_after
        recovered = False
        delay = 0.02
        while True:
            try:
                if not self._directory_ready():
                    return fallback
                with self._lock:
                    return action(self._connection())
            except sqlite3.DatabaseError as error:
                self.close()
                code = getattr(error, "sqlite_errorname", "")
                if code in _BUSY and time.monotonic() < deadline:
                    time.sleep(delay * (1 + random.random()))  # jitter: two writers must not retry in step
                    delay = min(delay * 2, 1.0)
                    continue
                if (code in _BROKEN or code == "SQLITE_CANTOPEN" and self.path.is_file()) and not recovered:
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

    def _connection(self) -> sqlite3.Connection:
        """The store's open connection, opened (and the schema checked) on first use.

        Kept open between runs: closing the last connection of a WAL database checkpoints it,
        which would cost every run a copy of the log.
        """
        if self._open is not None:
            return self._open
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE takes the write lock up
        # front, so two writers never deadlock upgrading a read lock). check_same_thread=False:
        # the store's lock serialises use, and a run may finish on another thread than it began.
        connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # WAL + NORMAL: a crash may lose the last run's rows, never corrupt the file; commits
            # skip an fsync each.
            connection.execute("PRAGMA synchronous=NORMAL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._create_schema(connection)
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
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        # Only once the file is known to be ours (a foreign file is left as it was found):
        # WAL, so readers never block the writer. The setting is stored in the file.
        connection.execute("PRAGMA journal_mode=WAL")

    def _move_aside(self, why: str) -> bool:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
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


class TaskStatsRecorder:
    """A listener recording each finished task on its own (`StatsStore.record_task`), for orchestrated runs.

    Use it where no process sees a whole run (an Airflow try runs one task): every task's
    TaskFinished adds its row, and together they make the run's one `runs` row.
    """

    event_types = (TaskFinished,)

    def __init__(self, store: StatsStore, pipeline: str, tasks: int, trace_id: str | None = None) -> None:
        self.store = store
        self.pipeline = pipeline
        self.tasks = tasks
        self.trace_id = trace_id

    def __call__(self, event: Event) -> None:
        if type(event) is TaskFinished:
            self.store.record_task(event.run_id, self.pipeline, event.result, tasks=self.tasks, trace_id=self.trace_id)

    def __repr__(self) -> str:
        return f"<TaskStatsRecorder {str(self.store.path)!r}>"


class StatsRecorder:
    """A run-event listener that records every finished run in a StatsStore."""

    #: Only RunFinished matters here; the bus need not build task events for this listener.
    event_types = (RunFinished,)

    def __init__(self, store: StatsStore) -> None:
        self.store = store

    def __call__(self, event: Event) -> None:
        if type(event) is RunFinished:
            self.store.record(event.result)

    def __repr__(self) -> str:
        return f"<StatsRecorder {str(self.store.path)!r}>"


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
    if result.interrupted:
        outcome = "interrupted"
    else:
        outcome = "success" if result.succeeded else "failed"
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
    )


def _task_row(run: RunResult, task: TaskResult) -> tuple[object, ...]:
    return (
        run.run_id,
        run.pipeline,
        task.name,
        task.state.value,
        task.attempts,
        _iso(task.start),
        _iso(task.end),
        task.duration,
        task.waited,
        task.worker or None,
        type(task.error).__name__ if task.error is not None else None,
        mask_text(task.reason) or None,  # a SkipTask message or an explanation may quote a secret
    )


def _summarise(task: str, history: list[tuple[str, float | None, float]]) -> TaskSummary:
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
