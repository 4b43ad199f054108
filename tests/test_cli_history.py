"""The CLI's partial runs and history, run as a user would: --only/--from/--to/--tags/--with-upstream,
--resume, --dry-run and the runs command (real subprocesses, a real statistics file)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

EIGHT = textwrap.dedent('''
    """Eight steps in a chain; step5 fails until the file 'fixed' exists."""
    import os
    from task_engine_core import register

    def make(number, depends_on, tags=()):
        def step():
            if number == 5 and not os.path.exists("fixed"):
                raise RuntimeError("the warehouse is down")
            print(f"step{number} done")
        step.__name__ = f"step{number}"
        return register(depends_on=depends_on, tags=tags)(step)

    previous = None
    for number in range(1, 9):
        previous = make(number, [previous] if previous else [], ("nightly",) if number in (3, 7) else ())
''')


def cli(*args: str, cwd: Path, stats: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TASK_ENGINE_STATS", None)
    if stats is not None:
        env["TASK_ENGINE_STATS"] = str(stats)
    return subprocess.run(
        [sys.executable, "-m", "task_engine_core", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "eight.py").write_text(EIGHT)
    return tmp_path


def executed(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("Executing ") for line in done.stdout.splitlines() if line.startswith("Executing ")]


def summary(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--only", "step2,step4"], ["step2", "step4"]),
        (["--only", "step2", "--only", "step3"], ["step2", "step3"]),
        (["--from", "step6"], ["step6", "step7", "step8"]),
        (["--to", "step2"], ["step1", "step2"]),
        (["--tags", "nightly"], ["step3", "step7"]),
        (["--tags", "nightly", "--from", "step5"], ["step7"]),
        (["--only", "step[78]"], ["step7", "step8"]),
        (["--only", "step3", "--with-upstream"], ["step1", "step2", "step3"]),
    ],
)
def test_selection_flags(project: Path, flags: list[str], expected: list[str]) -> None:
    (project / "fixed").touch()
    done = cli("run", "eight.py", *flags, "--json", "run.json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert executed(done) == expected
    tasks = {task["name"]: task for task in summary(project / "run.json")["tasks"]}
    assert {name for name, task in tasks.items() if task["excluded"]} == set(tasks) - set(expected)
    assert {task["state"] for name, task in tasks.items() if task["excluded"]} <= {"not_run"}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--only", "step9"],
            "error: --only 'step9': pipeline 'eight' has no task matching it; did you mean 'step8' or 'step7' or 'step6'?",
        ),
        (
            ["--from", "x*"],
            "error: --from 'x*': pipeline 'eight' has no task matching it; its tasks: step1, step2, step3, step4, step5, step6, step7, step8",
        ),
        (
            ["--tags", "nigthly"],
            "error: --tags 'nigthly': pipeline 'eight' has no tag matching it; did you mean 'nightly'?",
        ),
        (
            ["--only", "step1", "--to", "step0*"],
            "error: --to 'step0*': pipeline 'eight' has no task matching it; did you mean 'step8' or 'step7' or 'step6'?",
        ),
        (
            ["--only", "step8", "--to", "step2"],
            "error: --only step8 --to step2 selects no task of pipeline 'eight': the criteria must all hold (they intersect); drop one, or list the tasks with: python -m task_engine_core list TARGET",
        ),
    ],
)
def test_selection_errors_exit_2_with_one_message_before_anything_runs(
    project: Path, flags: list[str], message: str
) -> None:
    done = cli("run", "eight.py", *flags, cwd=project)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [message]
    assert done.stdout == ""
    assert not (project / ".task_engine").exists()


def test_an_empty_name_list_is_a_usage_error(project: Path) -> None:
    done = cli("run", "eight.py", "--only", ",", cwd=project)
    assert done.returncode == 2
    assert (
        done.stderr.splitlines()[-1]
        == "error: argument --only: ',' names no task; give names separated by commas, e.g. --only Extract,Load"
    )


def test_resume_after_a_failure_at_step_5_runs_steps_5_to_8(project: Path) -> None:
    failed = cli("run", "eight.py", "--json", "first.json", cwd=project)
    assert failed.returncode == 1
    assert executed(failed) == ["step1", "step2", "step3", "step4", "step5"]
    first = summary(project / "first.json")["run_id"]

    (project / "fixed").touch()
    resumed = cli("run", "eight.py", "--resume", "--json", "second.json", cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert executed(resumed) == ["step5", "step6", "step7", "step8"]
    second = summary(project / "second.json")
    assert second["resumed_from"] == first
    assert [t["resumed_from"] for t in second["tasks"]] == [first] * 4 + [None] * 4
    assert resumed.stderr.splitlines() == [f"run {second['run_id']} resumed run {first}: kept 4 task(s), ran 4"]

    # Resuming the run that finished everything runs nothing.
    again = cli("run", "eight.py", "--resume", second["run_id"][:10], cwd=project)
    assert again.returncode == 0 and executed(again) == []


def test_resume_refusals_exit_2(project: Path) -> None:
    nothing = cli("run", "eight.py", "--resume", cwd=project)
    assert nothing.returncode == 2
    assert nothing.stderr.startswith("error: cannot resume pipeline 'eight': no run of it is recorded in ")
    off = cli("run", "eight.py", "--resume", "--no-stats", cwd=project)
    assert off.returncode == 2
    assert off.stderr.splitlines() == [
        "error: cannot resume pipeline 'eight': statistics are off (--no-stats, stats=False or TASK_ENGINE_STATS=off), "
        "and resuming reads the runs recorded there; run with statistics on"
    ]
    cli("run", "eight.py", cwd=project)
    unknown = cli("run", "eight.py", "--resume", "feedface", cwd=project)
    assert unknown.returncode == 2
    assert len(unknown.stderr.splitlines()) == 1 and "no such run is recorded" in unknown.stderr
    assert "Traceback" not in unknown.stderr + off.stderr + nothing.stderr


def test_dry_run_writes_nothing_and_prints_the_plan(project: Path) -> None:
    outputs = ["--json", "run.json", "--report", "run.html"]
    done = cli("run", "eight.py", "--dry-run", "--only", "step2,step5", *outputs, cwd=project)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        "dry run of pipeline 'eight': 2 of 8 task(s) would run on 1 worker(s); nothing ran and nothing was written",
        "selection: --only step2,step5",
        "  step1     not selected",
        "  step2  1. run  (after step1)",
    ]
    assert lines[6] == "  step5  2. run  (after step4)"
    assert (
        lines[-1]
        == f"statistics: {str(project / '.task_engine' / 'stats.sqlite3')!r} (it and its folder would be created)"
    )
    assert sorted(p.name for p in project.iterdir()) == ["eight.py"]  # no stats folder, no json, no report


def test_dry_run_with_resume_reads_the_record_and_changes_nothing(project: Path) -> None:
    cli("run", "eight.py", cwd=project)
    database = project / ".task_engine" / "stats.sqlite3"
    before = {p.name: p.read_bytes() for p in database.parent.iterdir()}
    done = cli("run", "eight.py", "--dry-run", "--resume", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "4 of 8 task(s) would run" in done.stdout
    assert re.search(r"^  step4     kept: success in run [0-9a-f]{32}$", done.stdout, re.M)
    assert re.search(r"^  step5  1\. run  \(after step4\)$", done.stdout, re.M)
    assert {p.name: p.read_bytes() for p in database.parent.iterdir()} == before
    assert executed(done) == []


def test_dry_run_still_checks_the_definition_and_output_paths(project: Path) -> None:
    bad = cli("run", "eight.py", "--dry-run", "--json", str(project / "missing" / "run.json"), cwd=project)
    assert bad.returncode == 2 and "cannot write the JSON run summary" in bad.stderr
    wrong = cli("run", "eight.py", "--dry-run", "--only", "nope", cwd=project)
    assert wrong.returncode == 2 and "has no task matching it" in wrong.stderr


def test_runs_lists_recorded_runs_and_shows_one(project: Path) -> None:
    cli("run", "eight.py", "--json", "first.json", cwd=project)
    (project / "fixed").touch()
    cli("run", "eight.py", "--resume", "--json", "second.json", cwd=project)
    cli("run", "eight.py", "--only", "step1", cwd=project)
    first = summary(project / "first.json")["run_id"]
    second = summary(project / "second.json")["run_id"]

    listing = cli("runs", "eight.py", cwd=project)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("pipeline 'eight': 3 recorded run(s) in ") and lines[0].endswith(", newest first")
    assert lines[1].split() == [
        "run",
        "id",
        "started",
        "(UTC)",
        "duration",
        "outcome",
        "tasks",
        "resumed",
        "from",
        "selection",
    ]
    cells = [re.split(r"\s{2,}", line) for line in lines[2:]]
    assert [row[0] for row in cells] == [cells[0][0], second, first]
    assert cells[0][3:] == ["success", "7 not selected, 1 success", "-", "--only step1"]
    assert cells[1][3:] == ["success", "4 success, 4 success (resumed)", first, "-"]
    assert cells[2][3:] == ["failed", "1 failed, 4 success, 3 upstream_failed", "-", "-"]

    one = cli("runs", "eight.py", second[:6], cwd=project)
    assert one.returncode == 0, one.stderr
    rows = one.stdout.splitlines()
    assert rows[0].startswith(f"run {second} of pipeline 'eight': success, started ")
    assert rows[0].endswith(f"resumed run {first}")
    assert rows[2].split() == ["step1", "success", "0", "-", "kept", "from", "run", first]
    assert rows[6].split()[:3] == ["step5", "success", "1"]

    failed = cli("runs", "eight.py", first, cwd=project).stdout.splitlines()
    assert failed[6].split()[:3] == ["step5", "failed", "1"] and failed[6].endswith(
        "RuntimeError: no retries configured"
    )


def test_runs_unknown_id_exits_2_with_a_suggestion(project: Path) -> None:
    cli("run", "eight.py", "--json", "first.json", cwd=project)
    first = summary(project / "first.json")["run_id"]
    typo = first[:-1] + ("0" if first[-1] != "0" else "1")
    done = cli("runs", "eight.py", typo, cwd=project)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: cannot show run {typo!r} of pipeline 'eight': no such run is recorded in "
        f"{str(project / '.task_engine' / 'stats.sqlite3')!r}; did you mean {first!r}?"
    ]


def test_runs_without_a_file_says_so_and_creates_nothing(project: Path) -> None:
    done = cli("runs", "eight.py", cwd=project)
    assert done.returncode == 0
    assert done.stdout.startswith("no runs recorded in ")
    assert not (project / ".task_engine").exists()


def test_the_readme_example_fails_at_task_5_and_resumes_5_to_8(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TASK_ENGINE_STATS", None)
    env.pop("WAREHOUSE_UP", None)

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "task_engine_core", "run", "examples.partial_runs", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**env, **extra},
        )

    failed = run()
    assert failed.returncode == 1
    assert executed(failed) == ["download", "unpack", "validate", "transform", "load_warehouse"]
    resumed = run("--resume", WAREHOUSE_UP="1")
    assert resumed.returncode == 0, resumed.stderr
    assert executed(resumed) == ["load_warehouse", "refresh_views", "build_report", "notify"]
    assert resumed.stderr.rstrip().endswith("kept 4 task(s), ran 4")
