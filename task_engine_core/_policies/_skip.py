"""Skip policy: a task that finally fails ends SKIPPED and its dependents still run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._retry import _check_target

__all__ = ["skippable"]

F = TypeVar("F", bound=Callable[..., Any] | type)


@overload
def skippable(target: F) -> F: ...
@overload
def skippable(target: None = None) -> Callable[[F], F]: ...


def skippable(target: F | None = None) -> F | Callable[[F], F]:
    """Mark a task skippable: used bare (`@skippable`) or called (`@skippable()`)."""

    def decorate(inner: F) -> F:
        from ._store import attach

        _check_target("skippable", inner)
        attach(inner, skippable=True)
        return inner

    return decorate if target is None else decorate(target)
