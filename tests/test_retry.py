"""retries(n) and Backoff: argument checks, delay schedules, stacking with skippable."""

from __future__ import annotations

import random

import pytest

from task_engine_core import Backoff, Pipeline, Task, retries, skippable
from task_engine_core._policies import resolve_policies
from task_engine_core._policies._retry import MAX_BACKOFF_DELAY
from task_engine_core.errors import InvalidArgumentError


def test_default_backoff_is_the_seeds_one_second():
    assert [Backoff().delay(k) for k in (1, 2, 3)] == [1.0, 1.0, 1.0]


def test_exponential_backoff_with_cap():
    backoff = Backoff.exponential(initial=1, multiplier=2, maximum=5)
    assert [backoff.delay(k) for k in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]
    assert backoff.is_exponential and not Backoff.constant(3).is_exponential


def test_jitter_adds_at_most_its_amount():
    backoff = Backoff.constant(2).__class__(initial=2, jitter=0.5)
    rng = random.Random(1)
    delays = [backoff.delay(1, rng) for _ in range(200)]
    assert all(2.0 <= d <= 2.5 for d in delays) and len(set(delays)) > 100


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"initial": -1}, "Backoff(initial=-1): initial must be a finite number >= 0"),
        ({"multiplier": 0.5}, "Backoff(multiplier=0.5): multiplier must be a finite number >= 1"),
        ({"jitter": "x"}, "Backoff(jitter='x'): jitter must be a finite number >= 0"),
        ({"maximum": -2}, "Backoff(maximum=-2): maximum must be a finite number >= 0"),
        ({"initial": float("nan")}, "Backoff(initial=nan): initial must be a finite number >= 0"),
        ({"initial": float("inf")}, "Backoff(initial=inf): initial must be a finite number >= 0"),
        ({"multiplier": float("inf")}, "Backoff(multiplier=inf): multiplier must be a finite number >= 1"),
        ({"maximum": float("nan")}, "Backoff(maximum=nan): maximum must be a finite number >= 0"),
        ({"jitter": float("-inf")}, "Backoff(jitter=-inf): jitter must be a finite number >= 0"),
    ],
)
def test_backoff_rejects_bad_values(kwargs, message):
    with pytest.raises(InvalidArgumentError) as info:
        Backoff(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "3", None])
def test_retries_rejects_bad_counts(n):
    with pytest.raises(InvalidArgumentError) as info:
        retries(n)
    assert str(info.value) == (
        f"retries({n!r}): n is the total number of attempts and must be an integer of at least 1"
    )


def test_retries_used_bare_is_explained():
    with pytest.raises(InvalidArgumentError) as info:

        @retries
        def perform_task(self):
            pass

    assert "@retries needs the number of attempts, e.g. @retries(3); it was used bare on" in str(info.value)


def test_retries_rejects_a_bad_backoff():
    with pytest.raises(
        InvalidArgumentError, match=r"^retries\(3, backoff='soon'\): backoff must be a number of seconds or a Backoff$"
    ):
        retries(3, backoff="soon")


def test_decorating_something_that_is_not_callable():
    with pytest.raises(
        InvalidArgumentError, match=r"^@retries decorates a task class, its perform_task or a function task, not 5$"
    ):
        retries(2)(5)
    with pytest.raises(InvalidArgumentError, match=r"^@skippable decorates"):
        skippable(5)


def test_number_backoff_is_constant():
    @retries(4, backoff=0.25)
    def job():
        pass

    policies = resolve_policies(job)
    assert policies.max_attempts == 4 and policies.backoff == Backoff.constant(0.25)


def test_stacking_order_gives_the_same_policies():
    class Outer(Task):
        @skippable
        @retries(3)
        def perform_task(self):
            pass

    class Inner(Task):
        @retries(3)
        @skippable
        def perform_task(self):
            pass

    class Called(Task):
        @skippable()
        @retries(3)
        def perform_task(self):
            pass

    resolved = [resolve_policies(c, c.perform_task) for c in (Outer, Inner, Called)]
    assert resolved[0] == resolved[1] == resolved[2]
    assert resolved[0].skippable and resolved[0].max_attempts == 3


def test_policies_on_the_class_and_inheritance():
    @retries(2)
    class Base(Task):
        def perform_task(self):
            pass

    @skippable
    class Child(Base):
        pass

    p = Pipeline("inherit")
    p.add(Child)
    policies = p.validate().policies["Child"]
    assert policies.max_attempts == 2 and policies.skippable


def test_decorators_leave_the_function_callable_unchanged():
    calls = []

    @skippable
    @retries(3)
    def job():
        calls.append(1)
        return "ok"

    assert job() == "ok" and calls == [1]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1])
def test_retries_rejects_a_backoff_that_is_not_a_finite_number(value):
    with pytest.raises(InvalidArgumentError) as info:
        retries(3, backoff=value)
    assert str(info.value) == f"retries(3, backoff={value!r}): backoff must be a finite number >= 0"


@pytest.mark.parametrize("steps", [1_024, 1_100, 10**6, 10**18])
def test_a_capped_exponential_backoff_stays_capped_for_any_number_of_steps(steps):
    assert Backoff.exponential(maximum=60).delay(steps) == 60.0
    assert Backoff.exponential(initial=0, maximum=60).delay(steps) == 0.0
    # Without a maximum the growth stops at one day (Airflow's own ceiling on a retry delay): a
    # delay of infinity would be an OverflowError in time.sleep and in Airflow's retry_delay.
    assert Backoff.exponential().delay(steps) == MAX_BACKOFF_DELAY == 86_400.0
    assert Backoff.exponential(jitter=2).delay(steps) <= MAX_BACKOFF_DELAY + 2


def test_an_uncapped_exponential_backoff_waits_at_most_a_day_however_many_retries():
    from task_engine_core import Pipeline, PipelineExecutor, TaskState

    p = Pipeline("uncapped")
    slept: list[float] = []

    @p.register
    @retries(1_100, backoff=Backoff.exponential(initial=0.5))
    def flaky():
        raise ConnectionError("still down")

    executor = PipelineExecutor(p, reporters=[], sleep=slept.append, stats=False)
    with pytest.raises(ConnectionError, match="still down"):
        executor.run()
    assert executor.result.tasks["flaky"].state is TaskState.FAILED and executor.result.tasks["flaky"].attempts == 1_100
    assert slept[:3] == [0.5, 1.0, 2.0] and max(slept) == slept[-1] == MAX_BACKOFF_DELAY


def test_a_task_with_thousands_of_capped_retries_keeps_its_own_error_and_attempts():
    from task_engine_core import Pipeline, PipelineExecutor, TaskState

    p = Pipeline("many")
    slept: list[float] = []

    @p.register
    @retries(1_100, backoff=Backoff.exponential(maximum=60))
    def flaky():
        raise ConnectionError("still down")

    executor = PipelineExecutor(p, reporters=[], sleep=slept.append, stats=False)
    with pytest.raises(ConnectionError, match="still down"):
        executor.run()
    assert executor.result.tasks["flaky"].state is TaskState.FAILED
    assert executor.result.tasks["flaky"].attempts == 1_100 and slept[-1] == 60.0 and len(slept) == 1_099
