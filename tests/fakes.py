"""Test doubles shared by several test files."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when something sleeps on it or a test advances it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def clock(self) -> float:
        """The current fake time (for APIs that take a bound method)."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record the delay and move the clock by it, without waiting."""
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Move the clock without recording a sleep."""
        self.now += seconds
