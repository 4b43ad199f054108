"""Resuming a recorded run: PipelineExecutor(resume=...), what it keeps, when it refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from task_engine_core import Pipeline, PipelineExecutor, SkipTask, TaskState
from task_engine_core._stats import _SCHEMA, StatsStore
from task_engine_core.errors import InvalidArgumentError, ResumeError, UnknownRunError


def eight(broken: set[str], ran: list[str]) -> Pipeline:
    """step1 -> ... -> step8; a step in `broken` raises."""
    pipeline = Pipeline("eight")
    previous = None
    for number in range(1, 9):
        name = f"step{number}"

        def step(name: str = name) -> None:
            ran.append(name)
            if name in broken:
                raise RuntimeError(f"{name} broke")

        pipeline.add(step, name=name, depends_on=[previous] if previous else [])
        previous = name
    return pipeline


def run(pipeline: Pipeline, stats: Path, **options) -> PipelineExecutor:
    executor = PipelineExecutor(pipeline, reporters=[], stats=stats, **options)
    try:
        executor.run()
    except RuntimeError:
        pass
    return executor


def test_resume_runs_the_failed_task_and_what_follows_it(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    ran: list[str] = []
    failed = run(eight({"step5"}, ran), stats)
    assert ran == ["step1", "step2", "step3", "step4", "step5"]
    first = failed.result.run_id

    ran.clear()
    resumed = run(eight(set(), ran), stats, resume=True).result
    assert ran == ["step5", "step6", "step7", "step8"]
    assert resumed.succeeded and resumed.resumed_from == first
    for number in range(1, 5):
        task = resumed.tasks[f"step{number}"]
        assert (task.state, task.attempts, task.resumed_from) == (TaskState.SUCCESS, 0, first)
    assert all(resumed.tasks[f"step{n}"].resumed_from is None for n in range(5, 9))

    store = StatsStore(stats)
    latest = store.recorded_runs("eight")[0]
    assert (latest.run_id, latest.resumed_from, latest.outcome) == (resumed.run_id, first, "success")
    assert latest.counts == {"success": 4, "success (resumed)": 4}


def test_resume_of_a_resumed_run_names_the_run_that_did_the_work(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    ran: list[str] = []
    first = run(eight({"step3"}, ran), stats).result.run_id
    second = run(eight({"step6"}, ran), stats, resume=True).result.run_id
    ran.clear()
    third = run(eight(set(), ran), stats, resume=second[:8]).result
    assert ran == ["step6", "step7", "step8"]
    assert third.resumed_from == second
    assert [third.tasks[f"step{n}"].resumed_from for n in range(1, 6)] == [first, first, second, second, second]


def test_skipped_tasks_are_kept_and_not_run_tasks_run_again(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    ran: list[str] = []
    pipeline = Pipeline("mixed")

    @pipeline.register
    def skipper():
        ran.append("skipper")
        raise SkipTask("nothing to do today")

    @pipeline.register
    def breaks():
        ran.append("breaks")
        raise RuntimeError("broken")

    @pipeline.register
    def later():
        ran.append("later")

    run(pipeline, stats)  # fail-fast: later ends NOT_RUN
    assert ran == ["skipper", "breaks"]
    ran.clear()
    result = run(pipeline, stats, resume=True, priority=False).result
    assert ran == ["breaks"]  # breaks fails again, so fail-fast keeps later from starting again
    assert result.tasks["skipper"].state is TaskState.SKIPPED and result.tasks["skipper"].resumed_from


def test_resume_and_selection_combine(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    ran: list[str] = []
    run(eight({"step5"}, ran), stats)
    ran.clear()
    result = run(eight(set(), ran), stats, resume=True, select={"to": "step6"}).result
    assert ran == ["step5", "step6"]
    assert [n for n, t in result.tasks.items() if t.excluded] == ["step7", "step8"]
    assert [n for n, t in result.tasks.items() if t.resumed_from] == ["step1", "step2", "step3", "step4"]


def test_everything_resumed_runs_nothing_on_threads_too(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    ran: list[str] = []
    run(eight(set(), ran), stats)
    ran.clear()
    result = run(eight(set(), ran), stats, resume=True, workers=4).result
    assert ran == [] and result.succeeded


def test_changed_upstream_of_a_kept_task_refuses_the_resume(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    ran: list[str] = []
    first = run(eight({"step5"}, ran), stats).result.run_id
    changed = eight(set(), ran)
    changed.add(lambda: None, name="new_source")
    # step3 now also needs new_source: its old success came from other inputs.
    changed._definitions["step3"].depends_on = ("step2", "new_source")
    ran.clear()
    with pytest.raises(ResumeError) as raised:
        run(changed, stats, resume=True)
    assert str(raised.value) == (
        f"cannot resume run {first!r} of pipeline 'eight': task 'step3' ended success there depending on "
        f"[step2], but now depends on [step2, new_source], so its old result may not hold\n"
        f"run without --resume, or pick the tasks to run with --only / --from"
    )
    assert ran == []


def test_new_and_removed_tasks_do_not_refuse_the_resume(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    ran: list[str] = []
    run(eight({"step5"}, ran), stats)
    grown = eight(set(), ran)
    grown.add(lambda: ran.append("extra"), name="extra", depends_on=["step8"])
    ran.clear()
    run(grown, stats, resume=True)
    assert ran == ["step5", "step6", "step7", "step8", "extra"]


def test_unknown_ambiguous_and_foreign_run_ids(tmp_path: Path) -> None:
    stats = tmp_path / "stats.sqlite3"
    ran: list[str] = []
    first = run(eight({"step2"}, ran), stats).result.run_id
    other = Pipeline("other")
    other.add(lambda: None, name="only")
    foreign = run(other, stats).result.run_id

    typo = first[:-1] + ("0" if first[-1] != "0" else "1")
    with pytest.raises(UnknownRunError) as raised:
        run(eight(set(), ran), stats, resume=typo)
    assert str(raised.value) == (
        f"cannot resume run {typo!r} of pipeline 'eight': no such run is recorded in {str(stats)!r}; "
        f"did you mean {first!r}?"
    )
    with pytest.raises(UnknownRunError, match="it is a run of pipeline 'other'"):
        run(eight(set(), ran), stats, resume=foreign)
    with pytest.raises(
        UnknownRunError,
        match="no such run is recorded .*list the recorded runs with: python -m task_engine_core runs TARGET",
    ):
        run(eight(set(), ran), stats, resume="zz")

    # Force two runs of "eight" to share a prefix.
    second = run(eight(set(), ran), stats).result.run_id
    with sqlite3.connect(stats) as connection:
        for table in ("runs", "task_runs"):
            connection.execute(f"UPDATE {table} SET run_id = 'abc' || run_id WHERE run_id IN (?, ?)", (first, second))
    with pytest.raises(UnknownRunError, match="the prefix matches 2 recorded runs"):
        run(eight(set(), ran), stats, resume="abc")


def test_resume_without_statistics_or_runs_is_refused(tmp_path: Path) -> None:
    ran: list[str] = []
    with pytest.raises(ResumeError, match=r"^cannot resume pipeline 'eight': statistics are off"):
        PipelineExecutor(eight(set(), ran), stats=False, resume=True).run()
    with pytest.raises(UnknownRunError, match=r"^cannot resume pipeline 'eight': no run of it is recorded in"):
        PipelineExecutor(eight(set(), ran), stats=tmp_path / "empty.sqlite3", resume=True).run()
    assert ran == []


@pytest.mark.parametrize("resume", ["", "  ", 3, 1.5])
def test_bad_resume_argument(resume: object) -> None:
    with pytest.raises(InvalidArgumentError, match="resume=.*: pass True"):
        PipelineExecutor(Pipeline("x"), resume=resume)  # type: ignore[arg-type]


def test_runs_recorded_by_schema_1_are_migrated_and_not_resumed(tmp_path: Path) -> None:
    stats = tmp_path / "old.sqlite3"
    with sqlite3.connect(stats) as connection:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute("PRAGMA user_version = 1")
        connection.execute(
            "INSERT INTO runs VALUES ('old1', 'eight', '2026-01-01T00:00:00+00:00', NULL, 1.0, 1, 8, 'failed', NULL, NULL, 1)"
        )
        connection.execute(
            "INSERT INTO task_runs VALUES ('old1', 'eight', 'step1', 'success', 1, NULL, NULL, 0.1, 0, NULL, NULL, NULL)"
        )
    store = StatsStore(stats)
    assert [r.run_id for r in store.recorded_runs("eight")] == ["old1"]
    store.close()
    with sqlite3.connect(stats) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (2,)
        columns = [row[1] for row in connection.execute("PRAGMA table_info(runs)")]
    assert columns[-2:] == ["resumed_from", "selection"]
    ran: list[str] = []
    with pytest.raises(
        ResumeError, match="recorded by an older Task Engine that did not store each task's dependencies"
    ):
        run(eight(set(), ran), stats, resume="old1")
    run(eight(set(), ran), stats)  # a migrated file takes new runs
    assert len(StatsStore(stats).recorded_runs("eight")) == 2


def test_plan_reads_a_missing_statistics_file_without_creating_it(tmp_path: Path) -> None:
    stats = tmp_path / "never" / "stats.sqlite3"
    ran: list[str] = []
    executor = PipelineExecutor(eight(set(), ran), reporters=[], stats=StatsStore(stats, create_directory=True))
    plan = executor.plan()
    assert plan.to_run == tuple(f"step{n}" for n in range(1, 9))
    assert ran == [] and not stats.parent.exists()
