"""Registration: every form of @register, pipelines, and the definition errors of DESIGN.md."""

from __future__ import annotations

import pytest

from task_engine_core import Pipeline, PipelineExecutor, Task, TaskEngineError, register
from task_engine_core._pipeline import collecting_pipeline
from task_engine_core.errors import (
    CycleError,
    DefinitionError,
    DuplicateTaskError,
    EmptyPipelineError,
    InvalidArgumentError,
    NotATaskError,
    UnknownDependencyError,
)


class Noop(Task):
    def perform_task(self):
        pass


def make(name):
    return type(name, (Noop,), {})


def test_register_bare_called_and_depends_on_forms():
    p = Pipeline("forms")

    @p.register
    class A(Noop):
        pass

    @p.register()
    class B(Noop):
        pass

    @p.register(depends_on=A)
    class C(Noop):
        pass

    @p.register(depends_on="C")
    def d():
        pass

    @p.register(depends_on=d)
    def e():
        pass

    @p.register(depends_on=[A, "B", e])
    class F(Noop):
        pass

    @p.register(depends_on=(B,))
    class G(Noop):
        pass

    v = p.validate()
    assert v.upstream == {
        "A": (),
        "B": (),
        "C": ("A",),
        "d": ("C",),
        "e": ("d",),
        "F": ("A", "B", "e"),
        "G": ("B",),
    }
    # register returns the decorated object unchanged, so it stays usable as a dependency and callable
    assert isinstance(A, type) and callable(d)


def test_module_level_register_uses_the_default_pipeline():
    default = collecting_pipeline()
    before = set(default.task_names)

    @register
    class ModuleLevelTask(Noop):
        pass

    try:
        assert "ModuleLevelTask" in default
    finally:
        default.clear()
        assert not set(default.task_names) - before


def test_collecting_redirects_bare_register_and_pipelines_do_not_leak():
    mine, other = Pipeline("mine"), Pipeline("other")
    with mine.collecting():

        @register
        class Collected(Noop):
            pass

    assert mine.task_names == ["Collected"]
    assert other.task_names == [] and "Collected" not in collecting_pipeline()


def test_same_task_name_in_two_pipelines_is_fine():
    p1, p2 = Pipeline("one"), Pipeline("two")
    p1.add(make("Shared"))
    p2.add(make("Shared"))
    assert p1.task_names == p2.task_names == ["Shared"]


def test_string_dependency_may_name_a_task_registered_later():
    p = Pipeline("later")
    p.register(depends_on="Later")(make("Early"))
    p.add(make("Later"))
    assert p.validate().order == ("Later", "Early")


def test_duplicate_name():
    p = Pipeline("dups")
    p.add(make("Same"))
    with pytest.raises(DuplicateTaskError) as info:
        p.add(make("Same"))
    assert str(info.value) == (
        "task 'Same' is already registered in pipeline 'dups'; give one of them another name with @register(name=...)"
    )


def test_register_name_option_avoids_the_duplicate():
    p = Pipeline("renamed")
    p.add(make("Same"))
    p.register(name="Same2")(make("Same"))
    assert p.task_names == ["Same", "Same2"]


def test_unknown_dependency_suggests_close_names():
    p = Pipeline("typo")
    p.add(make("Extract"))
    p.register(depends_on="Extrct")(make("Load"))
    with pytest.raises(UnknownDependencyError) as info:
        p.validate()
    assert str(info.value) == "task 'Load' depends on unknown task 'Extrct'; did you mean 'Extract'?"
    assert info.value.suggestions == ("Extract",)


def test_unknown_dependency_without_suggestion():
    p = Pipeline("nothing-close")
    p.register(depends_on="zzz")(make("Load"))
    with pytest.raises(
        UnknownDependencyError,
        match=r"^task 'Load' depends on unknown task 'zzz'; register it in the same pipeline or fix the name$",
    ):
        p.validate()


def test_dependency_on_a_task_of_another_pipeline_is_unknown():
    p1, p2 = Pipeline("p1"), Pipeline("p2")
    Elsewhere = p1.register(make("Elsewhere"))
    p2.register(depends_on=Elsewhere)(make("Here"))
    with pytest.raises(UnknownDependencyError, match="task 'Here' depends on unknown task 'Elsewhere'"):
        p2.validate()


def test_cycle_message_prints_the_cycle():
    p = Pipeline("cyclic")
    p.register(depends_on="C")(make("A"))
    p.register(depends_on="A")(make("B"))
    p.register(depends_on="B")(make("C"))
    p.add(make("Outside"))
    with pytest.raises(CycleError) as info:
        p.validate()
    assert str(info.value) == "dependency cycle: A -> B -> C -> A; remove one of these dependencies"
    assert info.value.cycle == ("A", "B", "C", "A")


def test_self_dependency_is_a_cycle():
    p = Pipeline("self")
    p.register(depends_on="Me")(make("Me"))
    with pytest.raises(CycleError, match=r"^dependency cycle: Me -> Me;"):
        p.validate()


def test_cycle_is_found_below_a_valid_prefix():
    p = Pipeline("deep")
    p.add(make("Root"))
    p.register(depends_on=["Root", "Y"])(make("X"))
    p.register(depends_on="X")(make("Y"))
    with pytest.raises(CycleError, match=r"^dependency cycle: X -> Y -> X;"):
        p.validate()


def test_non_task_is_rejected_at_registration():
    p = Pipeline("bad")
    with pytest.raises(NotATaskError) as info:
        p.register(int)
    assert str(info.value) == (
        "@register got <class 'int'>, which is not a task: register a subclass of task_engine_core.Task or a plain function"
    )
    with pytest.raises(NotATaskError):
        p.add(42)  # type: ignore[arg-type]


def test_task_without_perform_task_is_rejected():
    class Empty(Task):
        pass

    with pytest.raises(NotATaskError, match=r"which does not override perform_task\(\); define perform_task\(self\)$"):
        Pipeline("empty-task").register(Empty)


def test_bad_depends_on_values():
    with pytest.raises(NotATaskError, match=r"^@register\(depends_on=...\) got 42, which is not a task"):
        Pipeline("x").register(depends_on=42)
    with pytest.raises(NotATaskError, match=r"^@register\(depends_on=...\) got <class 'str'>"):
        Pipeline("x").register(depends_on=[str])
    with pytest.raises(InvalidArgumentError, match=r"^@register\(depends_on=...\) got an empty task name$"):
        Pipeline("x").register(depends_on="")


def test_register_with_a_string_positional_points_to_depends_on():
    with pytest.raises(InvalidArgumentError) as info:
        register("Task1")
    assert str(info.value) == "@register got 'Task1' as its first argument; write @register(depends_on='Task1')"


def test_bad_name_and_priority():
    with pytest.raises(InvalidArgumentError, match=r"^@register\(name=...\) must be a non-empty string, not 3$"):
        Pipeline("x").register(name=3)
    with pytest.raises(InvalidArgumentError, match=r"^@register\(priority=...\) must be a number, not 'high'$"):
        Pipeline("x").register(priority="high")


@pytest.mark.parametrize("priority", [float("nan"), float("inf"), True])
def test_priority_must_be_a_finite_number(priority):
    # NaN compares false with everything, so it would make the ready order arbitrary; True is no number.
    with pytest.raises(InvalidArgumentError) as info:
        Pipeline("x").register(priority=priority)
    assert str(info.value) == f"@register(priority=...) must be a number, not {priority!r}"


def test_every_definition_error_is_a_task_engine_error():
    for cls in (
        CycleError,
        DuplicateTaskError,
        EmptyPipelineError,
        InvalidArgumentError,
        NotATaskError,
        UnknownDependencyError,
    ):
        assert issubclass(cls, DefinitionError) and issubclass(cls, TaskEngineError)


def test_definition_errors_are_raised_before_any_task_runs():
    ran = []
    p = Pipeline("no-start")

    @p.register
    def first():
        ran.append("first")

    p.register(depends_on="missing")(make("Second"))
    with pytest.raises(UnknownDependencyError):
        PipelineExecutor(p, reporters=[]).run()
    assert ran == []


def test_empty_pipeline():
    with pytest.raises(EmptyPipelineError) as info:
        Pipeline("nothing").validate()
    assert str(info.value) == "pipeline 'nothing' has no tasks; decorate a Task subclass or function with @register"


def test_pipeline_name_must_be_a_string():
    with pytest.raises(InvalidArgumentError, match=r"^Pipeline name must be a non-empty string, not ''$"):
        Pipeline("")


def test_a_class_dependency_never_binds_to_a_same_named_local_task():
    other, here = Pipeline("other"), Pipeline("here")
    Extract = other.register(make("Extract"))
    here.register(make("Extract"))  # same name, unrelated class
    here.register(depends_on=Extract)(make("Load"))
    with pytest.raises(UnknownDependencyError) as info:
        here.validate()
    assert str(info.value) == (
        f"task 'Load' depends on unknown task 'Extract' ({Extract.__module__}.{Extract.__qualname__}): that class "
        "or function is not registered in pipeline 'here', and a class or function dependency means that very "
        "object, never a local task of the same name; register it in this pipeline, or depend on a local task "
        "by its name (depends_on='Extract')"
    )


def test_a_function_dependency_of_another_pipeline_is_refused_too():
    other, here = Pipeline("other"), Pipeline("here")

    @other.register
    def extract():
        pass

    here.add(lambda: None, name="extract")
    here.register(depends_on=extract)(make("Load"))
    with pytest.raises(UnknownDependencyError, match=r"^task 'Load' depends on unknown task 'extract' \("):
        here.validate()


def _generator_function():
    yield 1


async def _async_generator_function():
    yield 1


class _GeneratorTask(Task):
    def perform_task(self):
        yield "never runs"


class _NeedsArguments(Task):
    def __init__(self, url, *, token, retries_=3):
        self.url = url

    def perform_task(self):
        pass


@pytest.mark.parametrize(
    "target, reason",
    [
        (_generator_function, "which is a generator function: a generator cannot be run as a task"),
        (_async_generator_function, "which is a generator function: a generator cannot be run as a task"),
        (_GeneratorTask, "whose perform_task is a generator function: a generator cannot be run as a task"),
        (
            _NeedsArguments,
            "whose __init__ needs 'url', 'token', but the engine creates each task with no arguments; "
            "give them defaults, or read settings from self.context in perform_task",
        ),
    ],
    ids=["generator", "async-generator", "generator-perform_task", "init-needs-arguments"],
)
def test_what_cannot_be_run_is_a_definition_error_at_registration(target, reason):
    p = Pipeline("unrunnable")
    with pytest.raises(NotATaskError) as info:
        p.register(target)
    assert str(info.value).startswith(f"@register got {target!r}, {reason}")
    assert len(p) == 0


def test_async_tasks_run_their_bodies_on_an_event_loop_of_their_worker():
    import asyncio
    import threading

    from task_engine_core import PipelineExecutor, TaskState, retries

    p = Pipeline("coroutines")
    ran: list[tuple[str, str, int]] = []

    @p.register
    class Fetch(Task):
        async def perform_task(self):
            await asyncio.sleep(0)
            ran.append(("Fetch", threading.current_thread().name, id(asyncio.get_running_loop())))

    @p.register(depends_on=Fetch)
    @retries(2, backoff=0)
    async def store(context):
        await asyncio.sleep(0)
        ran.append(("store", threading.current_thread().name, id(asyncio.get_running_loop())))
        if len(ran) == 2:
            raise ConnectionError("first try fails")

    result = PipelineExecutor(p, reporters=[], stats=False, workers=2).run()
    assert {n: (r.state, r.attempts) for n, r in result.tasks.items()} == {
        "Fetch": (TaskState.SUCCESS, 1),
        "store": (TaskState.SUCCESS, 2),
    }
    assert [name for name, _, _ in ran] == ["Fetch", "store", "store"]
    by_thread = {}
    for _, thread, loop in ran:  # one loop per worker thread, kept for its later tasks
        by_thread.setdefault(thread, set()).add(loop)
    assert all(len(loops) == 1 for loops in by_thread.values())
