"""run_attempt: the single decision procedure every backend uses for one attempt."""

from __future__ import annotations

import pytest

from task_engine_core import AttemptState, Backoff, HandlerDecision, SkipTask, Task
from task_engine_core._policies import TaskPolicies
from task_engine_core._policies._retry import RetryPolicy
from task_engine_core._runtime import OutcomeKind, TaskRun, run_attempt
from task_engine_core.events import AttemptFailed, AttemptStarted, EventBus


class Failing(Task):
    def __init__(self, answer=False, error=None):
        self.answer = answer
        self.error = error or RuntimeError("boom")
        self.handled = []

    def perform_task(self):
        raise self.error

    def retry_handler(self, error):
        self.handled.append(error)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def make_run(task, attempts=3, skippable=False, backoff=Backoff.exponential(1, 2), events=None):
    policies = TaskPolicies(retry=RetryPolicy(attempts, backoff), skippable=skippable)
    return TaskRun("T", policies, task, "run-1", events or EventBus())


def test_success():
    class Ok(Task):
        def perform_task(self):
            assert self.attempt_state.attempt == 2

    outcome = run_attempt(make_run(Ok()), 2)
    assert outcome.kind is OutcomeKind.SUCCESS and outcome.is_final and outcome.error is None


def test_handler_true_retries_after_the_backoff_of_that_attempt():
    outcome = run_attempt(make_run(Failing(True)), 2)
    assert (outcome.kind, outcome.delay, outcome.attempt, outcome.max_attempts) == (OutcomeKind.RETRY, 2.0, 2, 3)
    assert not outcome.is_final


def test_handler_number_is_the_delay():
    outcome = run_attempt(make_run(Failing(7.5)), 1)
    assert (outcome.kind, outcome.delay) == (OutcomeKind.RETRY, 7.5)


def test_handler_false_or_none_gives_up():
    for answer in (False, None):
        outcome = run_attempt(make_run(Failing(answer)), 1)
        assert (outcome.kind, outcome.reason) == (OutcomeKind.FAILED, "retry_handler declined to retry")


def test_last_attempt_does_not_ask_the_handler():
    task = Failing(True)
    outcome = run_attempt(make_run(task), 3)
    assert (outcome.kind, outcome.reason) == (OutcomeKind.FAILED, "no attempts left") and task.handled == []


def test_without_retries_the_handler_is_not_asked():
    task = Failing(True)
    outcome = run_attempt(make_run(task, attempts=1), 1)
    assert (outcome.kind, outcome.reason) == (OutcomeKind.FAILED, "no retries configured") and task.handled == []


def test_skippable_final_failure_is_skipped():
    outcome = run_attempt(make_run(Failing(True), skippable=True), 3)
    assert outcome.kind is OutcomeKind.SKIPPED and str(outcome.error) == "boom"


def test_handler_that_raises_ends_the_task_with_its_error():
    outcome = run_attempt(make_run(Failing(ValueError("handler broke"))), 1)
    assert outcome.kind is OutcomeKind.FAILED
    assert str(outcome.error) == "handler broke" and str(outcome.error.__context__) == "boom"
    assert outcome.reason == "retry_handler raised ValueError"


def test_handler_with_a_nonsense_answer_gives_up():
    outcome = run_attempt(make_run(Failing("later")), 1)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.reason == "retry_handler returned 'later'; expected True, False or seconds >= 0"


@pytest.mark.parametrize("answer", [float("inf"), float("nan"), float("-inf")])
def test_a_handler_answering_infinity_or_nan_fails_the_task_with_its_own_error(answer):
    outcome = run_attempt(make_run(Failing(answer)), 1)
    assert outcome.kind is OutcomeKind.FAILED and str(outcome.error) == "boom"
    assert outcome.reason == f"retry_handler returned {answer!r}; expected True, False or seconds >= 0"


def test_skip_task_skips_at_once_without_retry():
    outcome = run_attempt(make_run(Failing(True, error=SkipTask("not today"))), 1)
    assert (outcome.kind, outcome.reason) == (OutcomeKind.SKIPPED, "not today")


def test_events_of_an_attempt(recorder):
    run_attempt(make_run(Failing(True), events=EventBus([recorder])), 1)
    started, failed = recorder.events
    assert isinstance(started, AttemptStarted) and (started.task, started.attempt, started.max_attempts) == ("T", 1, 3)
    assert isinstance(failed, AttemptFailed) and str(failed.error) == "boom"


def test_task_run_is_the_attempt_state():
    assert TaskRun is AttemptState


def test_a_handler_taking_the_state_decides_with_a_reason():
    class Explaining(Failing):
        def retry_handler(self, error, state):
            reason = f"{error} on attempt {state.attempt} of {state.max_attempts} is worth {self.answer!r}"
            if self.answer is False:
                return HandlerDecision.give_up(reason)
            return HandlerDecision.retry_after(self.answer, reason)

    retry = run_attempt(make_run(Explaining(2.0)), 1)
    assert (retry.kind, retry.delay, retry.reason) == (OutcomeKind.RETRY, 2.0, "boom on attempt 1 of 3 is worth 2.0")
    refused = run_attempt(make_run(Explaining(False)), 2)
    assert (refused.kind, refused.reason) == (OutcomeKind.FAILED, "boom on attempt 2 of 3 is worth False")


def test_a_decision_without_delay_uses_the_backoff_of_the_state():
    class Backoffish(Failing):
        def retry_handler(self, error, state):
            return HandlerDecision.retry_after(reason="try again")

    outcome = run_attempt(make_run(Backoffish()), 2)
    assert (outcome.kind, outcome.delay, outcome.reason) == (OutcomeKind.RETRY, 2.0, "try again")


def test_the_state_carries_the_last_error_and_the_task_sees_it():
    task = Failing(True)
    run = make_run(task)
    run_attempt(run, 1)
    assert str(run.last_error) == "boom" and task.attempt_state is run and run.attempt == 1
    assert run.elapsed >= 0.0 and run.max_attempts == 3


def test_every_final_outcome_kind_is_named_and_valued_as_its_task_state() -> None:
    from task_engine_core import TaskState

    final = [kind for kind in OutcomeKind if kind is not OutcomeKind.RETRY]
    assert [(kind.name, kind.value) for kind in final] == [
        (TaskState[kind.name].name, TaskState[kind.name].value) for kind in final
    ]
    assert [kind.name for kind in final] == ["SUCCESS", "FAILED", "SKIPPED"]
