"""The README's Reliability table, end to end: the real CLI in a subprocess, real files, real signals.

Bad input ends with exit code 2, one message, no traceback and nothing half-done; faults keep
every other task's result and the statistics; secrets reach no output channel.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from task_engine_core import Pipeline, PipelineExecutor, TaskState
from task_engine_core._stats import RunStatsRecorder, StatsStore
from task_engine_core.events import RunFinished

ROOT = Path(__file__).resolve().parents[1]

TASK = """
from task_engine_core import register

@register
def only():
    print("only ran")
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASK_ENGINE", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "task_engine_core", "run", *args],
        cwd=tmp_path,
        env=environment(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


# -- bad input: exit 2, one message, no traceback, nothing half-done ------------------------------------------
def outputs(tmp_path: Path) -> tuple[list[str], Path]:
    """Every output option of `run`, with a trace file left by an earlier run that must survive."""
    old_trace = write(tmp_path / "trace.jsonl", '{"type": "span", "name": "an earlier run"}\n')
    args = ["--report", "run.html", "--json", "run.json", "--trace", str(old_trace), "--stats", "stats.sqlite3"]
    return args, old_trace


def assert_nothing_done(tmp_path: Path, done: subprocess.CompletedProcess[str], message: str) -> None:
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {message}\n")
    for name in ("run.html", "run.json", "stats.sqlite3"):
        assert not (tmp_path / name).exists(), name
    assert (tmp_path / "trace.jsonl").read_text() == '{"type": "span", "name": "an earlier run"}\n'


TARGET_ERRORS = [
    (
        "no_such_pipeline",
        "no module named 'no_such_pipeline' (target 'no_such_pipeline'); check the spelling, run from the "
        "project folder, or pass the path of a .py file",
    ),
    ("nothing.py", "no such file or folder: 'nothing.py'; pass a module name, a .py file or a package folder"),
    ("plain_folder", "folder 'plain_folder' is not a package (it has no __init__.py)"),
    ("own:pipe", "'own' has no attribute 'pipe' (target 'own:pipe'); pipelines there: pipeline"),
    (
        "own:NOT_A_PIPELINE",
        "'own:NOT_A_PIPELINE' is an int, not a Pipeline; point at a Pipeline object or at the module",
    ),
]


@pytest.mark.parametrize(
    ("target", "message"), TARGET_ERRORS, ids=["module", "file", "folder", "attribute", "not-a-pipeline"]
)
def test_a_target_that_cannot_be_loaded_exits_2(tmp_path: Path, target: str, message: str) -> None:
    (tmp_path / "plain_folder").mkdir()
    write(
        tmp_path / "own.py",
        """
        from task_engine_core import Pipeline

        NOT_A_PIPELINE = 3
        pipeline = Pipeline("own")
        pipeline.add(lambda: print("ran"), name="t")
    """,
    )
    args, _ = outputs(tmp_path)
    assert_nothing_done(tmp_path, cli(tmp_path, target, *args), message)


def test_a_module_that_exits_while_imported_exits_2_naming_its_line(tmp_path: Path) -> None:
    pipe = write(
        tmp_path / "pipe.py",
        """
        import sys
        from task_engine_core import register

        @register
        def only():
            print("only ran")

        if len(sys.argv) > 1:  # script code that should sit under `if __name__ == "__main__":`
            sys.exit(3)
    """,
    )
    args, _ = outputs(tmp_path)
    assert_nothing_done(
        tmp_path,
        cli(tmp_path, "pipe.py", *args),
        f"cannot load 'pipe.py': it called sys.exit(3) while being imported at {pipe}, line 10; a pipeline module "
        f'should only define tasks: put script code under `if __name__ == "__main__":`',
    )


CONTEXT_ERRORS = [
    (
        None,
        "context file '{dir}/ctx.yml' does not exist; check the path given with --context or PipelineExecutor(context=...)",
    ),
    (
        "a: [1\n",
        "context file '{dir}/ctx.yml' is not valid YAML, line 2, column 1: expected ',' or ']', but got "
        "'<stream end>' (while parsing a flow sequence that starts on line 1); fix the file",
    ),
    ("- a\n- b\n", "context file '{dir}/ctx.yml' must hold a mapping (key: value lines) at the top level, not a list"),
    ("just text\n", "context file '{dir}/ctx.yml' must hold a mapping (key: value lines) at the top level, not a str"),
    (
        "x: !!python/object/apply:os.system ['touch {dir}/owned']\n",
        "context file '{dir}/ctx.yml', line 1: the tag '!!python/object/apply:os.system' is not allowed: the "
        "context loader builds plain data only (yaml.safe_load), never Python objects; remove the tag",
    ),
    (
        "rate_limits:\n  api: {{rate: 0}}\n",
        "context key rate_limits.api: RateLimit('api', rate=0): rate must be a finite number > 0",
    ),
    (
        "rate_limits:\n  api: {{rate: -2}}\n",
        "context key rate_limits.api: RateLimit('api', rate=-2): rate must be a finite number > 0",
    ),
    (
        "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)),
        "context file '{dir}/ctx.yml': its YAML aliases expand to more than 100,000 values; use fewer or smaller "
        "aliases (the limit keeps a small file from taking every byte of memory)",
    ),
    (
        "x: 1\na: &a [1, *a]\n",
        "context file '{dir}/ctx.yml', line 2: a value contains an alias of itself (a recursive alias), which the "
        "context cannot hold; replace the alias with the values it should have",
    ),
    (
        "rate_limits:\n  api: {{rate: 5, burst: 0.5}}\n",
        "context key rate_limits.api: RateLimit('api', burst=0.5): burst must be a finite number >= 1",
    ),
    (  # about 300 levels: was a RecursionError traceback and exit 1
        "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n",
        "context file '{dir}/ctx.yml', line 101: its mappings and lists nest more than 100 levels deep; flatten "
        "the structure (a context holds configuration, not deep data)",
    ),
    (
        "a: " + "{{x: " * 300 + "1" + "}}" * 300 + "\n",
        "context file '{dir}/ctx.yml', line 1: its mappings and lists nest more than 100 levels deep; flatten "
        "the structure (a context holds configuration, not deep data)",
    ),
    (  # so deep that PyYAML's own parser runs out of stack
        "a: " + "[" * 5000 + "1" + "]" * 5000 + "\n",
        "context file '{dir}/ctx.yml': its mappings and lists nest more than 100 levels deep; flatten "
        "the structure (a context holds configuration, not deep data)",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"),
    CONTEXT_ERRORS,
    ids=[
        "missing",
        "malformed",
        "list",
        "scalar",
        "python-tag",
        "rate-0",
        "rate-neg",
        "alias-bomb",
        "recursive-alias",
        "burst",
        "deep-300",
        "deep-flow-300",
        "deep-5000",
    ],
)
def test_a_bad_context_file_exits_2_before_anything_happens(tmp_path: Path, text: str | None, message: str) -> None:
    write(tmp_path / "pipe.py", TASK)
    if text is not None:
        write(tmp_path / "ctx.yml", text.format(dir=tmp_path))
    args, _ = outputs(tmp_path)
    done = cli(tmp_path, "pipe.py", "--context", "ctx.yml", *args)
    assert_nothing_done(tmp_path, done, message.format(dir=tmp_path))
    assert not (tmp_path / "owned").exists()  # the python tag constructed nothing


def test_a_definition_error_leaves_an_earlier_trace_file_alone(tmp_path: Path) -> None:
    write(
        tmp_path / "pipe.py",
        """
        from task_engine_core import register

        @register(depends_on="b")
        def a():
            pass

        @register(depends_on="a")
        def b():
            pass
    """,
    )
    args, _ = outputs(tmp_path)
    done = cli(tmp_path, "pipe.py", *args)
    assert_nothing_done(tmp_path, done, "dependency cycle: a -> b -> a; remove one of these dependencies")


@pytest.mark.parametrize("n", [0, -1])
def test_bad_retries_in_the_users_module_point_at_its_line(tmp_path: Path, n: int) -> None:
    pipe = write(
        tmp_path / "pipe.py",
        f"""
        from task_engine_core import register, retries

        @register
        @retries({n})
        def flaky():
            print("flaky ran")
    """,
    )
    args, _ = outputs(tmp_path)
    done = cli(tmp_path, "pipe.py", *args)
    assert_nothing_done(
        tmp_path,
        done,
        f"cannot load 'pipe.py': InvalidArgumentError: retries({n}): n is the total number of attempts and must be "
        f"an integer of at least 1 at {pipe}, line 5",
    )


def test_a_stats_folder_that_is_missing_skips_statistics_with_one_warning(tmp_path: Path) -> None:
    write(tmp_path / "pipe.py", TASK)
    database = tmp_path / "missing" / "stats.sqlite3"
    done = cli(tmp_path, "pipe.py", "--stats", str(database))
    assert (done.returncode, done.stdout) == (0, "Executing only\nonly ran\n")
    assert done.stderr == (
        f"warning: statistics file {str(database)!r}: the statistics folder {str(database.parent)!r} does not exist; "
        f"create it or pass another path with --stats PATH (or --no-stats)\n"
    )
    assert not database.parent.exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc, a folder even root cannot write to")
def test_a_read_only_stats_folder_skips_statistics_with_one_warning(tmp_path: Path) -> None:
    write(tmp_path / "pipe.py", TASK)
    done = cli(tmp_path, "pipe.py", "--stats", "/proc/stats.sqlite3")
    assert (done.returncode, done.stdout) == (0, "Executing only\nonly ran\n")
    cannot = "warning: statistics file '/proc/stats.sqlite3': unable to open database file (SQLITE_CANTOPEN); "
    read, written = done.stderr.splitlines()  # reading expected durations, then recording the run
    assert read == cannot + "expected durations are unavailable; ready tasks start in registration order"
    assert re.fullmatch(re.escape(cannot) + "run [0-9a-f]{32} of pipeline 'pipe' was not recorded", written)


@pytest.mark.skipif(
    not Path("/proc/self").is_dir(), reason="needs Linux /proc and /sys, folders even root cannot write to"
)
@pytest.mark.parametrize(
    ("option", "value", "what", "problem"),
    [
        (
            "--report",
            "/proc/run.html",
            "HTML run report",
            "directory '/proc' is not writable (No such file or directory)",
        ),
        ("--json", "/sys/run.json", "JSON run summary", "directory '/sys' is not writable (Permission denied)"),
        ("--trace", "/proc/trace.jsonl", "trace file", "directory '/proc' is not writable (No such file or directory)"),
    ],
)
def test_an_output_folder_that_refuses_files_is_found_before_any_task(
    tmp_path: Path, option: str, value: str, what: str, problem: str
) -> None:
    # Permission bits say yes to root; only a real try finds out.
    write(tmp_path / "pipe.py", TASK)
    done = cli(tmp_path, "pipe.py", option, value, "--stats", "stats.sqlite3")
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"error: cannot write the {what} to {value!r}: {problem}; choose a writable path\n",
    )
    assert not (tmp_path / "stats.sqlite3").exists()


# -- faults -------------------------------------------------------------------------------------------------------
ESCAPING = """
import os, pathlib, time
from task_engine_core import register

marks = pathlib.Path(os.environ["MARKS"])

class Boom(BaseException):
    pass

@register
def slow():
    (marks / "slow.started").touch()
    deadline = time.monotonic() + 30
    while not (marks / "bad.raised").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # still running after the other task's exception
    print("slow done")

@register
def bad():
    while not (marks / "slow.started").exists():
        time.sleep(0.01)
    (marks / "bad.raised").touch()
    raise {error}

@register(depends_on="bad")
def after_bad():
    print("after_bad ran")

@register(depends_on="slow")
def after_slow():
    print("after_slow ran")
"""


@pytest.mark.parametrize(
    ("error", "shown"),
    [("KeyboardInterrupt", "KeyboardInterrupt"), ("SystemExit(3)", "SystemExit: 3"), ("Boom('kaput')", "Boom: kaput")],
)
def test_a_base_exception_in_a_worker_thread_keeps_the_other_results(tmp_path: Path, error: str, shown: str) -> None:
    write(tmp_path / "pipe.py", ESCAPING.format(error=error))
    (tmp_path / "marks").mkdir()
    database = tmp_path / "stats.sqlite3"
    done = cli(
        tmp_path, "pipe.py", "--workers", "4", "--keep-going", "--stats", str(database), MARKS=str(tmp_path / "marks")
    )
    name = shown.split(":")[0]
    assert done.returncode == 1, done.stderr
    assert sorted(done.stdout.splitlines()) == ["Executing bad", "Executing slow", "slow done"]  # no new start
    assert done.stderr.splitlines()[0] == f"task 'bad' failed after 1 attempt(s): {shown}"
    assert done.stderr.splitlines()[-2] == f"Task Engine: task 'bad' failed on attempt 1 ({name} escaped the task)"
    totals = re.fullmatch(rf"run interrupted by {name} in \d+\.\d\d s: (.*)", done.stderr.splitlines()[-1])
    assert totals and sorted(totals[1].split(", ")) == ["1 failed", "1 not_run", "1 success", "1 upstream_failed"]
    assert rows(database, "SELECT task, state, error_type FROM task_runs ORDER BY task") == [
        ("after_bad", "upstream_failed", None),
        ("after_slow", "not_run", None),
        ("bad", "failed", name),
        ("slow", "success", None),
    ]
    assert rows(database, "SELECT outcome, interrupted FROM runs") == [("interrupted", name)]


RAISING_LISTENERS = """
from opentelemetry.sdk.trace.export import SpanExporter
from task_engine_core import register
from task_engine_core.reporters import Reporter, register_reporter
from task_engine_core.telemetry import register_span_exporter


class BrokenReporter(Reporter):
    def __call__(self, event):
        raise RuntimeError("reporter bug on " + type(event).__name__)


class BrokenExporter(SpanExporter):
    def export(self, spans):
        raise ConnectionError("collector down")

    def force_flush(self, timeout_millis=30000):
        raise ConnectionError("collector down")

    def shutdown(self):
        raise ConnectionError("collector gone")


register_reporter(BrokenReporter())
register_span_exporter(BrokenExporter())

@register
def first():
    print("first ran")

@register(depends_on="first")
def second():
    {second}
"""


@pytest.mark.parametrize(("second", "code"), [("print('second ran')", 0), ("raise ValueError('second broke')", 1)])
def test_a_raising_reporter_and_exporter_leave_results_stats_trace_and_exit_code(
    tmp_path: Path, second: str, code: int
) -> None:
    write(tmp_path / "pipe.py", RAISING_LISTENERS.format(second=second))
    database, trace = tmp_path / "stats.sqlite3", tmp_path / "trace.jsonl"
    done = cli(
        tmp_path, "pipe.py", "--workers", "2", "--stats", str(database), "--trace", str(trace), "--json", "run.json"
    )
    assert done.returncode == code, done.stderr
    assert done.stdout.splitlines()[:3] == ["Executing first", "first ran", "Executing second"]
    assert "listener <pipe.BrokenReporter object at" in done.stderr  # logged, and the run went on
    assert (
        "tracing: shutting down exporter BrokenExporter failed: ConnectionError: collector gone; the run's results are unaffected"
        in done.stderr
    )
    states = dict(rows(database, "SELECT task, state FROM task_runs"))
    assert states == {"first": "success", "second": "success" if code == 0 else "failed"}
    summary = json.loads((tmp_path / "run.json").read_text())
    assert {t["name"]: t["state"] for t in summary["tasks"]} == states
    spans = [row["name"] for row in map(json.loads, trace.read_text().splitlines()) if row["type"] == "span"]
    assert sorted(spans) == ["run pipe", "task first", "task second"]
    trace_id = rows(database, "SELECT trace_id FROM runs")[0][0]
    assert f"trace id: {trace_id}" in done.stderr


QUITTING_REPORTER = """
import sys
from task_engine_core import register
from task_engine_core.reporters import Reporter, register_reporter


class Quitter(Reporter):
    def on_task_finished(self, event):
        sys.exit(f"stop after {event.task}")  # a reporter that means to stop everything


register_reporter(Quitter())
for i in range(4):
    register(name=f"t{i}")(lambda: None)
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_reporter_raising_system_exit_neither_kills_nor_hangs_the_run(tmp_path: Path, workers: str) -> None:
    write(tmp_path / "pipe.py", QUITTING_REPORTER)
    database = tmp_path / "stats.sqlite3"
    done = cli(tmp_path, "pipe.py", "--workers", workers, "--stats", str(database))
    assert done.returncode == 0, done.stderr  # was: the worker threads died and the run waited forever
    logged = re.findall(
        r"^listener <pipe\.Quitter object at \w+> raised SystemExit on TaskFinished; the run goes on$",
        done.stderr,
        re.M,
    )
    assert len(logged) == 4 and "SystemExit: stop after t3" in done.stderr
    assert dict(rows(database, "SELECT task, state FROM task_runs")) == {f"t{i}": "success" for i in range(4)}


def test_a_stats_path_that_cannot_be_a_database_warns_and_keeps_the_exit_code(tmp_path: Path) -> None:
    write(tmp_path / "pipe.py", TASK.replace('print("only ran")', 'raise ValueError("nope")'))
    (tmp_path / "folder").mkdir()
    done = cli(tmp_path, "pipe.py", "--stats", "folder", "--json", "run.json")
    assert done.returncode == 1
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2  # reading expected durations, then recording the run
    assert warnings[-1].startswith(
        "warning: statistics file 'folder': unable to open database file (SQLITE_CANTOPEN); run "
    )
    assert json.loads((tmp_path / "run.json").read_text())["tasks"][0]["state"] == "failed"


def test_a_stats_store_that_raises_never_costs_the_run_its_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Exploding(StatsStore):
        def record(self, result):
            raise TypeError("cannot adapt this value")

    pipeline = Pipeline("exploding")
    pipeline.add(lambda: None, name="a")
    pipeline.add(lambda: None, name="b", depends_on=["a"])
    finished: list[RunFinished] = []
    with caplog.at_level(logging.ERROR):
        result = PipelineExecutor(
            pipeline,
            reporters=[],
            stats=Exploding(tmp_path / "s.sqlite3"),
            listeners=[lambda e: finished.append(e) if isinstance(e, RunFinished) else None],
        ).run()
    assert result.states() == {"a": TaskState.SUCCESS, "b": TaskState.SUCCESS}
    assert len(finished) == 1  # the other listeners got RunFinished (they come before the recorder)
    assert [r.getMessage() for r in caplog.records] == [
        f"listener {RunStatsRecorder(Exploding(tmp_path / 's.sqlite3'))!r} failed on RunFinished; the run goes on"
    ]


BROKEN_STR = """
from task_engine_core import register, skippable


class Unprintable(Exception):
    def __str__(self):
        return self.detail  # never set: str() itself raises, as some libraries' errors do


@register
@skippable
def skipped():
    raise Unprintable()


@register
def failed():
    raise Unprintable()


@register
def fine():
    print("fine ran")
"""


@pytest.mark.parametrize("console", ["--plan", "--progress"])
def test_an_error_that_cannot_be_printed_costs_no_report_and_no_summary(tmp_path: Path, console: str) -> None:
    write(tmp_path / "pipe.py", BROKEN_STR)
    done = cli(
        tmp_path,
        "pipe.py",
        console,
        "--keep-going",
        "--report",
        "run.html",
        "--json",
        "run.json",
        "--trace",
        "trace.jsonl",
        "--stats",
        "stats.sqlite3",
    )
    assert done.returncode == 1
    assert (
        done.stderr.count("Traceback") == 1 and "the run goes on" not in done.stderr
    )  # the task's own; no listener failed
    assert "task 'failed' failed after 1 attempt(s): Unprintable: <exception str() failed>\n" in done.stderr
    summary = json.loads((tmp_path / "run.json").read_text())
    assert [t["error"] for t in summary["tasks"]] == [
        {"type": "Unprintable", "message": "<exception str() failed>"}
    ] * 2 + [None]
    assert "Unprintable: &lt;exception str() failed&gt;" in (tmp_path / "run.html").read_text()
    events = [
        e for line in (tmp_path / "trace.jsonl").read_text().splitlines() for e in json.loads(line).get("events", [])
    ]
    assert {e["attributes"].get("exception.message") for e in events if e["name"] == "exception"} == {
        "<exception str() failed>"
    }
    assert dict(rows(tmp_path / "stats.sqlite3", "SELECT task, state FROM task_runs")) == {
        "skipped": "skipped",
        "failed": "failed",
        "fine": "success",
    }


PARALLEL_SLOW = """
import os, pathlib, time
from task_engine_core import Pipeline

pipeline = Pipeline("stoppable")
marks = pathlib.Path(os.environ["MARKS"])

def slow(name):
    def run():
        (marks / f"{name}.started").touch()
        deadline = time.monotonic() + 2.0  # long enough that all three still run when the signal lands, even on a loaded machine
        while time.monotonic() < deadline:
            time.sleep(0.01)
        (marks / f"{name}.done").touch()
    return run

for i in range(3):
    pipeline.add(slow(f"slow{i}"), name=f"slow{i}")
    pipeline.add(slow(f"next{i}"), name=f"next{i}", depends_on=[f"slow{i}"])
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_lets_three_running_tasks_finish_and_starts_none(tmp_path: Path, signum: int, code: int) -> None:
    write(tmp_path / "stoppable.py", PARALLEL_SLOW)
    marks = tmp_path / "marks"
    marks.mkdir()
    database = tmp_path / "stats.sqlite3"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "task_engine_core",
            "run",
            "stoppable.py",
            "--workers",
            "4",
            "--stats",
            str(database),
            "--json",
            "run.json",
        ],
        cwd=tmp_path,
        env=environment(tmp_path, MARKS=str(marks)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while len(list(marks.glob("slow*.started"))) < 3:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert process.returncode == code, err
    assert sorted(p.name for p in marks.iterdir()) == sorted(
        f"slow{i}.{s}" for i in range(3) for s in ("started", "done")
    )
    assert err.splitlines()[0] == (
        f"interrupted: run {rows(database, 'SELECT run_id FROM runs')[0][0]} of pipeline 'stoppable' stopped by "
        f"{name}; finished tasks kept their results"
    )
    assert re.fullmatch(rf"run interrupted by {name} in \d+\.\d\d s: 3 success, 3 not_run\n", err.split("\n", 1)[1])
    assert dict(rows(database, "SELECT task, state FROM task_runs")) == {
        **{f"slow{i}": "success" for i in range(3)},
        **{f"next{i}": "not_run" for i in range(3)},
    }
    assert rows(database, "SELECT outcome, interrupted FROM runs") == [("interrupted", name)]
    summary = json.loads((tmp_path / "run.json").read_text())
    assert (summary["interrupted"], summary["counts"]) == (name, {"success": 3, "not_run": 3})


SLOW_IMPORT = """
import os, pathlib, time

pathlib.Path(os.environ["MARKS"], "importing").touch()
time.sleep(30)  # a slow import: the user gives up with Ctrl-C
"""


def test_ctrl_c_before_the_run_starts_exits_130_without_a_traceback(tmp_path: Path) -> None:
    write(tmp_path / "pipe.py", SLOW_IMPORT)
    marks = tmp_path / "marks"
    marks.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "task_engine_core", "run", "pipe.py", "--stats", "stats.sqlite3"],
        cwd=tmp_path,
        env=environment(tmp_path, MARKS=str(marks)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (marks / "importing").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (130, "", "interrupted before the run started; no task ran\n")
    assert not (tmp_path / "stats.sqlite3").exists()


SLOW_WRITER = """
import os, pathlib, time
from task_engine_core import register
from task_engine_core.reporters import Reporter, register_reporter

marks = pathlib.Path(os.environ["MARKS"])


class SlowWriter(Reporter):
    # Stands for a long statistics write or a big report: the signal lands while it runs.
    def on_run_finished(self, event):
        (marks / "writing").touch()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            time.sleep(0.01)
        (marks / "written").touch()


register_reporter(SlowWriter())

@register
def only():
    print("only ran")
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_results_are_written_lets_the_writing_finish(tmp_path: Path, signum: int) -> None:
    write(tmp_path / "pipe.py", SLOW_WRITER)
    marks = tmp_path / "marks"
    marks.mkdir()
    database = tmp_path / "stats.sqlite3"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "task_engine_core",
            "run",
            "pipe.py",
            "--workers",
            "2",
            "--stats",
            str(database),
            "--json",
            "run.json",
        ],
        cwd=tmp_path,
        env=environment(tmp_path, MARKS=str(marks)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (marks / "writing").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    # Every task had finished: the run's outcome stands, and nothing it writes is cut short.
    assert (process.returncode, out, err) == (0, "Executing only\nonly ran\n", "")
    assert (marks / "written").exists()
    assert rows(database, "SELECT task, state FROM task_runs") == [("only", "success")]
    assert json.loads((tmp_path / "run.json").read_text())["succeeded"] is True


CONCURRENT = """
import os, pathlib, time
from task_engine_core import Pipeline

pipeline = Pipeline("concurrent")
marks = pathlib.Path(os.environ["MARKS"])

def meet():
    # Every process gets here before any records its run, so the writes really overlap.
    (marks / os.environ["ME"]).touch()
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < int(os.environ["PROCESSES"]) and time.monotonic() < deadline:
        time.sleep(0.005)

for i in range(400):
    pipeline.add(lambda: None, name=f"t{i}", depends_on=[f"t{i - 1}"] if i else [])
pipeline.add(meet, name="meet", depends_on=["t399"])
"""


def test_four_cli_runs_recording_into_one_database_at_once_lose_no_row(tmp_path: Path) -> None:
    write(tmp_path / "concurrent.py", CONCURRENT)
    marks = tmp_path / "marks"
    marks.mkdir()
    database = tmp_path / "stats.sqlite3"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "task_engine_core",
                "run",
                "concurrent.py",
                "--workers",
                "2",
                "--stats",
                str(database),
            ],
            cwd=tmp_path,
            env=environment(tmp_path, MARKS=str(marks), ME=f"p{i}", PROCESSES="4"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], errors
    assert errors == ["", "", "", ""]  # no "database is locked", no warning of any kind
    assert rows(database, "SELECT count(*), count(DISTINCT pid), min(outcome), max(outcome) FROM runs") == [
        (4, 4, "success", "success")
    ]
    assert rows(database, "SELECT count(*), count(DISTINCT run_id) FROM task_runs WHERE state = 'success'") == [
        (4 * 401, 4)
    ]


# -- security ---------------------------------------------------------------------------------------------------------
SECRET_PIPELINE = """
import logging, os
from task_engine_core import HandlerDecision, SkipTask, Task, register, retries

logging.basicConfig(filename=os.environ["APP_LOG"], level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
log = logging.getLogger("app")


@register
@retries(2, backoff=0)
def calls_api(context):
    token = context["api"]["token"].reveal()
    print("context:", context)
    log.warning("calling with token %s", token)
    raise PermissionError(f"401 for token {token}")


@register
def nothing_new(context):
    raise SkipTask(f"no rows for password {context['db']['password'].reveal()}")


@register
class Explains(Task):
    @retries(3, backoff=0)
    def perform_task(self):
        try:
            raise ValueError(f"rejected {self.context['db']['password'].reveal()}")
        except ValueError:
            log.exception("request failed")
            raise

    def retry_handler(self, error, state):
        return HandlerDecision.give_up(f"gave up on {self.context['api']['token'].reveal()}")
"""

TOKEN, PASSWORD = "tok-SECRET-1111", "pw-SECRET-2222"


def test_context_secrets_reach_no_output_channel_of_a_cli_run(tmp_path: Path) -> None:
    write(tmp_path / "secret_pipe.py", SECRET_PIPELINE)
    write(tmp_path / "ctx.yml", f"api:\n  url: https://api.example\n  token: !secret {TOKEN}\n")
    done = cli(
        tmp_path,
        "secret_pipe.py",
        "--context",
        "ctx.yml",
        "--keep-going",
        "--workers",
        "4",
        "--report",
        "run.html",
        "--json",
        "run.json",
        "--trace",
        "trace.jsonl",
        "--stats",
        "stats.sqlite3",
        APP_LOG="app.log",
        TASK_ENGINE__DB__PASSWORD=PASSWORD,
    )
    assert done.returncode == 1, done.stderr
    progress = cli(  # the other console reporter
        tmp_path,
        "secret_pipe.py",
        "--context",
        "ctx.yml",
        "--keep-going",
        "--progress",
        "--no-stats",
        APP_LOG="app2.log",
        TASK_ENGINE__DB__PASSWORD=PASSWORD,
    )
    with sqlite3.connect(tmp_path / "stats.sqlite3") as connection:
        database = "\n".join(connection.iterdump())
    channels = {
        "stdout": done.stdout,
        "stderr": done.stderr,
        "progress stdout": progress.stdout,
        "progress stderr": progress.stderr,
        "log file": (tmp_path / "app.log").read_text(),
        "html": (tmp_path / "run.html").read_text(),
        "json": (tmp_path / "run.json").read_text(),
        "trace": (tmp_path / "trace.jsonl").read_text(),
        "stats": database,
    }
    for channel, text in channels.items():
        assert TOKEN not in text and PASSWORD not in text, channel
    # The texts that held the secrets are there, masked: each check above could have failed.
    assert "'token': '***'" in done.stdout and "Skipping task due to error: no rows for password ***" in done.stdout
    assert done.stderr.splitlines()[0] in (  # the first of the two failures, by the clock
        "task 'calls_api' failed after 2 attempt(s): PermissionError: 401 for token *** (1 more failed)",
        "task 'Explains' failed after 1 attempt(s): ValueError: rejected *** (1 more failed)",
    )
    assert (
        channels["log file"].count("calling with token ***") == 2 and "ValueError: rejected ***" in channels["log file"]
    )
    assert "PermissionError: 401 for token ***" in channels["html"] and "401 for token ***" in channels["json"]
    trace = [json.loads(line) for line in channels["trace"].splitlines()]
    assert {row["body"] for row in trace if row["type"] == "log"} >= {"calling with token ***", "request failed"}
    assert "no rows for password ***" in database and "gave up on ***" in database
    assert "nothing_new skipped in " in progress.stderr and ": SkipTask: no rows for password ***" in progress.stderr


ESCAPED_SECRET_PIPELINE = """
import json, logging, os
from task_engine_core import SkipTask, register

logging.basicConfig(filename=os.environ["APP_LOG"], level=logging.INFO, format="%(levelname)s %(message)s")
log = logging.getLogger("app")


@register
def with_repr(context):
    params = {"token": context["api"]["token"].reveal(), "n": 1}
    log.warning("params %r", params)
    raise ValueError(f"bad params {params!r}")


@register
def with_json(context):
    raise SkipTask("payload " + json.dumps({"token": context["api"]["token"].reveal()}))


@register
def with_ascii(context):
    token = context["api"]["token"].reveal()
    log.warning("ascii: %s list: %s", ascii(token), [token])
    raise RuntimeError(f"rejected {ascii(token)} / {[token]}")
"""

# A backslash, a double quote, a tab and non-ASCII: each is escaped by repr, json.dumps or ascii.
ESCAPED_TOKEN = 'in\\SECRET"\t\u00e9\u20acX'


def test_escaped_renderings_of_a_secret_reach_no_output_channel(tmp_path: Path) -> None:
    import html

    write(tmp_path / "escaped_pipe.py", ESCAPED_SECRET_PIPELINE)
    (tmp_path / "ctx.yml").write_text(f"api:\n  token: !secret {json.dumps(ESCAPED_TOKEN)}\n", encoding="utf-8")
    done = cli(
        tmp_path,
        "escaped_pipe.py",
        "--context",
        "ctx.yml",
        "--keep-going",
        "--report",
        "run.html",
        "--json",
        "run.json",
        "--trace",
        "trace.jsonl",
        "--no-stats",
        APP_LOG="app.log",
        PYTHONIOENCODING="utf-8",
    )
    assert done.returncode == 1, done.stderr
    channels = {  # a task's own print is its own output, not masked (as in Airflow's and Prefect's logs)
        "stderr": done.stderr,
        "log file": (tmp_path / "app.log").read_text(encoding="utf-8"),
        "html": html.unescape((tmp_path / "run.html").read_text(encoding="utf-8")),
        "json": (tmp_path / "run.json").read_text(encoding="utf-8"),
        "trace": (tmp_path / "trace.jsonl").read_text(encoding="utf-8"),
    }
    for channel, text in channels.items():
        assert "SECRET" not in text, (channel, [line for line in text.splitlines() if "SECRET" in line])
    # The texts that held the secret are there, masked.
    assert "ascii: '***' list: ['***']" in channels["log file"]
    assert "bad params {'token': '***', 'n': 1}" in done.stderr
    assert 'payload {\\"token\\": \\"***\\"}' in channels["json"] and "rejected '***' / ['***']" in channels["html"]
    assert "params {'token': '***', 'n': 1}" in channels["log file"]


SURROGATE_PIPELINE = """
import logging
from task_engine_core import SkipTask, register

@register
def lists():
    name = b"caf\\xff.txt".decode("utf-8", "surrogateescape")  # what os.listdir() gives for it
    logging.getLogger("app").warning("found %s", name)
    raise SkipTask("odd file " + name)

@register(depends_on=lists)
def after():
    print("after ran")
"""


def test_a_lone_surrogate_in_a_skip_reason_costs_no_output(tmp_path: Path) -> None:
    write(tmp_path / "sur_pipe.py", SURROGATE_PIPELINE)
    done = cli(
        tmp_path,
        "sur_pipe.py",
        "--json",
        "run.json",
        "--report",
        "run.html",
        "--trace",
        "trace.jsonl",
        "--stats",
        "stats.sqlite3",
        PYTHONIOENCODING="utf-8",  # a strict standard output, as a pipe often is
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "Skipping task due to error: odd file caf\\udcff.txt" in done.stdout and "after ran" in done.stdout
    summary = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    # JSON's own \udcff escape: a reader gets the very text the task gave
    assert {task["name"]: task["reason"] for task in summary["tasks"]}["lists"] == "odd file caf\udcff.txt"
    assert "odd file caf\\udcff.txt" in (tmp_path / "run.html").read_text(encoding="utf-8")
    spans = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {row["name"] for row in spans if row["type"] == "span"} >= {"task lists", "task after"}
    assert rows(tmp_path / "stats.sqlite3", "SELECT task, reason FROM task_runs ORDER BY task") == [
        ("after", None),
        ("lists", "odd file caf\\udcff.txt"),
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_report_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    import resource

    def small_file_limit() -> None:  # the HTML report is larger than this; the JSON summary is not
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2500, 2500))

    write(tmp_path / "only.py", TASK)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "task_engine_core",
            "run",
            "only.py",
            "--json",
            "run.json",
            "--report",
            "run.html",
            "--no-stats",
        ],
        cwd=tmp_path,
        env=environment(tmp_path, PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_file_limit,
    )
    assert done.returncode == 0, done.stderr
    assert "File too large" in done.stderr  # the write did fail
    assert sorted(p.name for p in tmp_path.iterdir()) == ["only.py", "run.json"]


LOCKER = """
import os, sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA locking_mode=EXCLUSIVE")
connection.execute("BEGIN EXCLUSIVE")
connection.execute("DELETE FROM runs WHERE 0")
print("locked", flush=True)
for _ in range(600):  # 30 s at most
    if os.path.exists(sys.argv[2]):
        print("released by the task", flush=True)
        break
    time.sleep(0.05)
else:
    print("released after 30 s", flush=True)
connection.execute("COMMIT")
connection.close()
"""


def test_a_locked_statistics_file_delays_the_first_task_only_briefly(tmp_path: Path) -> None:
    write(
        tmp_path / "pipe.py",
        """
        from pathlib import Path
        from task_engine_core import register

        @register
        def first():
            Path("release").touch()  # only a task that started while the lock is held can end it early
            print("first ran")

        @register
        def second():
            print("second ran")
    """,
    )
    assert cli(tmp_path, "pipe.py", "--stats", "stats.sqlite3").returncode == 0  # a database with history
    (tmp_path / "release").unlink()
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(tmp_path / "stats.sqlite3"), str(tmp_path / "release")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline() == "locked\n"
        done = cli(tmp_path, "pipe.py", "--stats", "stats.sqlite3")
        released = locker.stdout.readline()
    finally:
        locker.kill() if locker.poll() is None else None
        locker.wait()
    assert released == "released by the task\n", (done.stdout, done.stderr)
    assert done.returncode == 0 and done.stdout.splitlines() == [
        "Executing first",
        "first ran",
        "Executing second",
        "second ran",
    ], done.stderr
    assert done.stderr.splitlines()[0] == (
        "warning: statistics file 'stats.sqlite3': database is locked (SQLITE_BUSY); expected durations are "
        "unavailable; ready tasks start in registration order"
    )
    assert done.stderr.count("warning:") == 1
    assert rows(tmp_path / "stats.sqlite3", "SELECT count(*) FROM runs") == [(2,)]  # written once the lock went


def test_a_reader_that_closes_standard_output_is_not_a_task_failure(tmp_path: Path) -> None:
    write(
        tmp_path / "noisy.py",
        """
        from task_engine_core import register

        @register
        def noisy():
            for i in range(50_000):
                print("line", i)

        @register(depends_on=noisy)
        def after():
            print("after ran")
    """,
    )
    process = subprocess.Popen(  # what `... run noisy.py | head -2` does
        [sys.executable, "-m", "task_engine_core", "run", "noisy.py", "--json", "run.json", "--no-stats"],
        cwd=tmp_path,
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert [process.stdout.readline(), process.stdout.readline()] == ["Executing noisy\n", "line 0\n"]
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0, err
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit
    summary = json.loads((tmp_path / "run.json").read_text())
    assert {t["name"]: (t["state"], t["error"]) for t in summary["tasks"]} == {
        "noisy": ("success", None),
        "after": ("success", None),
    }


def test_a_failed_run_ends_with_one_line_of_task_states(tmp_path: Path) -> None:
    write(
        tmp_path / "fails.py",
        """
        from task_engine_core import register

        @register
        def breaks():
            raise ValueError("bad")

        @register
        def independent():
            pass

        @register(depends_on=breaks)
        def downstream():
            pass
    """,
    )
    done = cli(tmp_path, "fails.py", "--no-stats")
    assert done.returncode == 1
    assert re.fullmatch(
        r"run finished in \d+\.\d\d s: 1 failed, 1 not_run, 1 upstream_failed", done.stderr.splitlines()[-1]
    ), done.stderr
    progress = cli(tmp_path, "fails.py", "--no-stats", "--progress")  # --progress prints that line itself, once
    assert sum(line.startswith("run finished in ") for line in progress.stderr.splitlines()) == 1


def test_a_module_that_runs_its_own_pipeline_at_import_runs_once_with_a_warning(tmp_path: Path) -> None:
    write(
        tmp_path / "selfrun.py",
        """
        from task_engine_core import PipelineExecutor, register

        @register
        def hello():
            print("hello ran")

        PipelineExecutor().run()  # the README's first sample ends like this
    """,
    )
    done = cli(tmp_path, "selfrun.py", "--no-stats")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Executing hello", "hello ran"]  # once, not twice
    assert done.stderr.splitlines() == [
        f"{tmp_path / 'selfrun.py'}:8: RuntimeWarning: PipelineExecutor().run() was called while 'selfrun.py' is "
        "being imported to be run; this call is skipped, as the pipeline runs once the import is done. Put it under "
        '`if __name__ == "__main__":` to silence this warning (`python selfrun.py` still runs it)',
        "  PipelineExecutor().run()  # the README's first sample ends like this",
    ]
    alone = subprocess.run(
        [sys.executable, "selfrun.py"],
        cwd=tmp_path,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (alone.returncode, alone.stdout, alone.stderr) == (0, "Executing hello\nhello ran\n", "")
