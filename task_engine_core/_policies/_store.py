"""Where policy decorators leave their settings, and the resolved per-task policy set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ._retry import Backoff, RetryPolicy

_ATTRIBUTE = "__task_engine_policies__"


class AttemptGuard(Protocol):
    """A policy that runs before each attempt (wait for a resource, take a rate-limit token)."""

    def before_attempt(self, run: Any) -> None:
        """Block or raise before `perform_task`; `run` is the task's AttemptState (task_engine_core._attempt)."""


@dataclass(frozen=True)
class TaskPolicies:
    """Everything that shapes how one task runs, resolved from its decorators."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    skippable: bool = False
    priority: float | None = None
    timeout: float | None = None
    guards: tuple[AttemptGuard, ...] = ()
    rate_limit_keys: tuple[str, ...] = ()

    @property
    def max_attempts(self) -> int:
        """Total attempts allowed (1 = no retry)."""
        return self.retry.attempts

    @property
    def backoff(self) -> Backoff:
        """The delay schedule between attempts."""
        return self.retry.backoff


def stored_settings(target: object) -> dict[str, Any]:
    """Return the settings decorators attached to `target`; a class inherits its bases' settings."""
    if not isinstance(target, type):
        return dict(getattr(target, _ATTRIBUTE, None) or {})
    merged: dict[str, Any] = {}
    for klass in reversed(target.__mro__):
        merged.update(klass.__dict__.get(_ATTRIBUTE) or {})
    return merged


def attach(target: Callable[..., Any] | type, **settings: Any) -> None:
    """Record settings on a function or class; decorators call this, in any stacking order."""
    current = target.__dict__.get(_ATTRIBUTE) if isinstance(target, type) else getattr(target, _ATTRIBUTE, None)
    merged = dict(current or {})
    for key, value in settings.items():
        if key == "guards":
            # Guards stack: outer decorators are written above inner ones, and run first.
            merged[key] = tuple(value) + tuple(merged.get(key, ()))
        else:
            merged[key] = value
    setattr(target, _ATTRIBUTE, merged)


def resolve_policies(*targets: object) -> TaskPolicies:
    """Merge the settings of several targets (class, then perform_task) into TaskPolicies."""
    merged: dict[str, Any] = {}
    guards: tuple[AttemptGuard, ...] = ()
    keys: tuple[str, ...] = ()
    for target in targets:
        settings = stored_settings(target)
        guards += tuple(settings.pop("guards", ()))
        # Rate-limit keys add up like guards: a key on the class and one on perform_task both apply.
        keys += tuple(k for k in settings.pop("rate_limit_keys", ()) if k not in keys)
        merged.update(settings)
    if not merged and not guards and not keys:
        return _NO_POLICIES  # most tasks have no decorators: share one policy set
    policies = TaskPolicies(**merged)
    return replace(policies, guards=guards, rate_limit_keys=keys) if guards or keys else policies


_NO_POLICIES = TaskPolicies()
