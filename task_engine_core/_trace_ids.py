"""A run's trace id: settled before RunStarted when a listener traces, or derived from an orchestrator's run key."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from .events import Listener

__all__ = ["new_trace_id", "settle_trace_id", "trace_id_for"]


def new_trace_id() -> str:
    """A fresh W3C trace id (32 lowercase hex digits, never all zero)."""
    while True:
        trace_id = secrets.token_hex(16)
        if trace_id.strip("0"):
            return trace_id


def trace_id_for(run_key: str) -> str:
    """The trace id of an orchestrator's run (e.g. dag id + run id): the same in every process of that run."""
    digest = hashlib.sha256(f"task-engine trace {run_key}".encode()).hexdigest()[:32]
    return digest if digest.strip("0") else "1" + digest[1:]


def settle_trace_id(listeners: Iterable[Listener], given: str | None = None) -> str | None:
    """The run's trace id, settled before RunStarted: None unless a listener traces; then `given` or a new one."""
    if any(getattr(listener, "needs_trace_id", False) for listener in listeners):
        return given or new_trace_id()
    return None
