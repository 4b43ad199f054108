"""`_registry.Registry`, the one registry behind hydrators, reporters and telemetry exporters."""

from __future__ import annotations

from task_engine_core import register_hydrator
from task_engine_core._hydrators import (
    ENVIRONMENT_HYDRATOR,
    YAML_FILE_HYDRATOR,
    registered_hydrators,
    reset_hydrators,
    unregister_hydrator,
)
from task_engine_core._registry import Registry
from task_engine_core.reporters import register_reporter
from task_engine_core.reporters._registry import registered_reporters
from task_engine_core.telemetry import register_span_exporter
from task_engine_core.telemetry._registry import registered_span_exporters


def test_undo_removes_exactly_that_registration() -> None:
    registry: Registry[str] = Registry()
    undo_a = registry.register("a")
    undo_twice = registry.register("a")
    registry.register("b")
    undo_a()
    assert registry.items() == ("a", "b")  # the second registration of "a" stays
    undo_twice()
    undo_twice()  # a second undo is harmless
    assert registry.items() == ("b",)


def test_a_keyed_item_replaces_its_namesake_and_an_old_undo_leaves_the_new_one() -> None:
    registry: Registry[str] = Registry()
    undo_old = registry.register("old", key="k")
    registry.register("x")
    registry.register("new", key="k")
    assert registry.items() == ("x", "new")  # re-registering moves to the end
    undo_old()
    assert registry.items() == ("x", "new")
    registry.unregister("k")
    registry.unregister("missing")
    assert registry.items() == ("x",)


def test_reporters_and_exporters_use_it_and_give_back_an_undo() -> None:
    def reporter(event: object) -> None:
        pass

    undo = register_reporter(reporter)
    assert registered_reporters()[-1] is reporter
    undo()
    assert reporter not in registered_reporters()
    exporter = object()
    undo = register_span_exporter(exporter)
    assert exporter in registered_span_exporters()
    undo()
    assert exporter not in registered_span_exporters()


def test_hydrators_keep_their_order_and_ties_their_registration_order() -> None:
    try:
        register_hydrator(lambda request: None, name="late", order=500)
        register_hydrator(lambda request: None, name="first_100")
        register_hydrator(lambda request: None, name="second_100")
        assert registered_hydrators() == [
            (YAML_FILE_HYDRATOR, 0),
            ("first_100", 100),
            ("second_100", 100),
            ("late", 500),
            (ENVIRONMENT_HYDRATOR, 1000),
        ]
        register_hydrator(lambda request: None, name="first_100")  # replaces, and now registered last
        assert [name for name, _ in registered_hydrators()][1:3] == ["second_100", "first_100"]
        unregister_hydrator("late")
        assert "late" not in dict(registered_hydrators())
    finally:
        reset_hydrators()
