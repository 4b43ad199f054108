"""EventBus: ordered delivery, unsubscribe, and listeners that raise."""

from __future__ import annotations

import logging

from task_engine_core.events import EventBus, RunStarted
from task_engine_core.reporters import Reporter


def test_delivery_order_and_unsubscribe():
    seen = []
    bus = EventBus([lambda e: seen.append("first")])
    undo = bus.subscribe(lambda e: seen.append("second"))
    bus.emit(RunStarted("r", "p", ()))
    undo()
    bus.emit(RunStarted("r", "p", ()))
    assert seen == ["first", "second", "first"]


def test_raising_listener_is_logged_and_others_still_get_the_event(caplog):
    seen = []

    def broken(event):
        raise ValueError("bug in listener")

    bus = EventBus([broken, seen.append])
    with caplog.at_level(logging.ERROR, logger="task_engine"):
        bus.emit(RunStarted("r", "p", ()))
    assert len(seen) == 1
    assert "failed on RunStarted; the run goes on" in caplog.text and "bug in listener" in caplog.text


def test_reporter_dispatches_by_event_kind():
    class Counts(Reporter):
        def __init__(self):
            self.started = 0

        def on_run_started(self, event):
            self.started += 1

    reporter = Counts()
    reporter(RunStarted("r", "p", ()))
    assert reporter.started == 1
