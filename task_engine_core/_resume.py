"""Resuming a recorded run (`--resume [RUN_ID]`): which tasks keep the state they ended with there.

A task that ended SUCCESS or SKIPPED in the resumed run is not run again: it keeps that state,
with `TaskResult.resumed_from` naming the run. Every other task runs as usual. The rule that
refuses a resume: a task to be kept must still depend on exactly the tasks it depended on then
(its recorded upstream set). Its old outcome was produced from those upstreams; with another set,
keeping it would claim work that was never done. Tasks added since, or removed, are no reason to
refuse on their own: a new task simply runs, a removed one is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._stats import StatsStore
from ._task import TaskState
from .errors import ResumeError, UnknownRunError, closest_names

__all__ = ["ResumePoint", "find_resume_point", "find_recorded_run"]

_KEPT_STATES = (TaskState.SUCCESS.value, TaskState.SKIPPED.value)


@dataclass(frozen=True)
class ResumePoint:
    """The run being resumed and, per task kept from it, its state there and the run that did the work."""

    run_id: str
    #: task -> (state, run id): the run is the one that ran it, also when `run_id` resumed it in turn.
    kept: dict[str, tuple[TaskState, str]]


def find_recorded_run(store: StatsStore, pipeline: str, run_id: str | None, what: str = "resume") -> str:
    """The full id of recorded run `run_id` of `pipeline` (a unique prefix is enough); None: the latest.

    Raises UnknownRunError naming the store, with a did-you-mean, when there is no such run.
    """
    where = f"in {str(store.path)!r}"
    if run_id is None:
        latest = store.recorded_runs(pipeline, limit=1)
        if not latest:
            raise UnknownRunError(
                f"cannot {what} pipeline {pipeline!r}: no run of it is recorded {where}; run it first "
                f"(or point --stats at the file that holds its runs)"
            )
        return latest[0].run_id
    matches = store.run_pipelines(run_id)
    if run_id in matches:
        matches = {run_id: matches[run_id]}
    ours = sorted(found for found, owner in matches.items() if owner == pipeline)
    if len(ours) == 1:
        return ours[0]
    if len(ours) > 1:
        raise UnknownRunError(
            f"cannot {what} run {run_id!r} of pipeline {pipeline!r}: the prefix matches {len(ours)} recorded runs "
            f"({', '.join(ours[:5])}{', ...' if len(ours) > 5 else ''}); give more of the run id"
        )
    if matches:
        found, owner = sorted(matches.items())[0]
        raise UnknownRunError(
            f"cannot {what} run {found!r} of pipeline {pipeline!r}: it is a run of pipeline {owner!r}; "
            f"give a run id from: python -m task_engine_core runs TARGET"
        )
    known = [run.run_id for run in store.recorded_runs(pipeline)]
    close = closest_names(run_id, known)
    hint = (
        f"did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else ("list the recorded runs with: python -m task_engine_core runs TARGET")
    )
    raise UnknownRunError(
        f"cannot {what} run {run_id!r} of pipeline {pipeline!r}: no such run is recorded {where}; {hint}"
    )


def find_resume_point(
    store: StatsStore | None, pipeline: str, upstream: Mapping[str, Sequence[str]], run_id: str | None
) -> ResumePoint:
    """What resuming `run_id` (None: the latest recorded run) keeps; ResumeError when it is refused."""
    if store is None:
        raise ResumeError(
            f"cannot resume pipeline {pipeline!r}: statistics are off (--no-stats, stats=False or "
            f"TASK_ENGINE_STATS=off), and resuming reads the runs recorded there; run with statistics on"
        )
    found = find_recorded_run(store, pipeline, run_id)
    kept: dict[str, tuple[TaskState, str]] = {}
    for task in store.recorded_tasks(found):
        if task.state not in _KEPT_STATES or task.task not in upstream:
            continue
        if task.upstream is None:
            raise ResumeError(
                f"cannot resume run {found!r} of pipeline {pipeline!r}: it was recorded by an older Task Engine "
                f"that did not store each task's dependencies, so it cannot be checked against the pipeline "
                f"as it is now; run without --resume"
            )
        now = tuple(upstream[task.task])
        if set(task.upstream) != set(now):
            raise ResumeError(
                f"cannot resume run {found!r} of pipeline {pipeline!r}: task {task.task!r} ended {task.state} there "
                f"depending on [{', '.join(task.upstream)}], but now depends on [{', '.join(now)}], so its old "
                f"result may not hold\n"
                f"run without --resume, or pick the tasks to run with --only / --from"
            )
        kept[task.task] = (TaskState(task.state), task.resumed_from or found)
    return ResumePoint(found, kept)
