"""Reporters: listeners on run events that show a run to people."""

from .base import Reporter
from .console import ConsoleReporter, format_plan

__all__ = ["ConsoleReporter", "Reporter", "format_plan"]
