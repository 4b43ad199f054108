"""Data between tasks: what a task reads from its upstreams, how a function task's parameters bind, and
how an output is shown.

A task's output is what `perform_task()` (or the function) returned. Downstream, a `Task` reads it
from `self.inputs["Extract"]` (a read-only `TaskInputs`), a function task receives it as the
parameter named after the upstream task. Outputs that are None are never stored: a pipeline that
passes no data pays nothing for the feature.
"""

from __future__ import annotations

import builtins
import inspect
import itertools
import reprlib
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._secrets import MASK, Secret, mask_text
from .errors import InputParameterError, InputUnavailableError, UnknownInputError

__all__ = [
    "TaskInputs",
    "NO_INPUTS",
    "ParameterPlan",
    "parameter_plan",
    "check_parameters",
    "call_with_inputs",
    "output_text",
    "UnavailableOutput",
    "unavailable_output",
    "check_inputs_available",
]

_NO_ITEM: Any = object()


class UnavailableOutput:
    """Stands in a run's outputs for an upstream that does not run in it (kept by a resume, left out).

    Reading it through `TaskInputs` raises InputUnavailableError: silently handing the task None
    would let it compute from nothing.
    """

    __slots__ = ("action", "why")

    def __init__(self, why: str, action: str) -> None:
        self.why = why  # completes "'Extract' ...": "was kept from run 1a2b by --resume, and outputs are ..."
        self.action = action  # what the user can do instead

    def error(self, task: str, upstream: str) -> InputUnavailableError:
        """The error for `task` reading this output of `upstream`."""
        return InputUnavailableError(task, upstream, self.why, self.action)

    def __repr__(self) -> str:
        return f"<output not available: {self.why}>"


def unavailable_output(task: str, resumed_from: str | None, selection: str) -> UnavailableOutput:
    """The output of `task`, which does not run here: kept from run `resumed_from`, else left out by `selection`."""
    if resumed_from is not None:
        return UnavailableOutput(
            f"was kept from run {resumed_from} by --resume, and outputs are not kept between runs",
            f"run {task!r} again too: start a run that does not resume",
        )
    return UnavailableOutput(
        f"is left out by the selection ({selection}), and outputs are not kept between runs",
        f"select {task!r} too: add --with-upstream, or name it",
    )


def check_inputs_available(
    task: str, function: Callable[..., Any] | None, over: str | None, unavailable: Mapping[str, UnavailableOutput]
) -> None:
    """Raise InputUnavailableError when `task` is sure to read an output in `unavailable` (before anything runs).

    Sure means: it maps over that upstream (`over`), or it is a function task (`function`) with a
    parameter named after it (or **kwargs). A Task subclass reads `self.inputs` at run time, so
    it gets the same error when it reads one.
    """
    if not unavailable:
        return
    if over is not None and over in unavailable:
        raise unavailable[over].error(task, over)
    if function is None:
        return
    plan = parameter_plan(function)
    names = unavailable if plan.var_keyword else plan.names
    for name in names:
        if name in unavailable:
            raise unavailable[name].error(task, name)


class TaskInputs(Mapping[str, Any]):
    """The outputs of one task's upstreams, by upstream name; read-only.

    `outputs` holds the run's non-None outputs (shared by every task of the run, read only here);
    an upstream without an entry returned None (or was skipped). In an instance of a mapped task
    the mapped-over upstream reads as the instance's item.
    """

    __slots__ = ("_item", "_mapped", "_outputs", "_task", "_upstream")

    def __init__(
        self,
        task: str,
        upstream: Sequence[str],
        outputs: Mapping[str, Any],
        mapped: str | None = None,
        item: Any = _NO_ITEM,
    ) -> None:
        self._task = task
        self._upstream = upstream
        self._outputs = outputs
        self._mapped = mapped
        self._item = item

    def __getitem__(self, name: str) -> Any:
        if name == self._mapped and self._item is not _NO_ITEM:
            return self._item
        if name in self._upstream:
            value = self._outputs.get(name)
            if type(value) is UnavailableOutput:
                raise value.error(self._task, name)
            return value
        raise UnknownInputError(self._task, name, self._upstream)

    def arguments(self, names: Sequence[str]) -> dict[str, Any]:
        """The inputs among `names` as keyword arguments (the per-call path of a function task)."""
        upstream, get = self._upstream, self._outputs.get
        arguments = {name: get(name) for name in names if name in upstream}
        if self._mapped in arguments and self._item is not _NO_ITEM:
            arguments[self._mapped] = self._item
        for name, value in arguments.items():
            if type(value) is UnavailableOutput:
                raise value.error(self._task, name)
        return arguments

    def __contains__(self, name: object) -> bool:
        return name in self._upstream

    def __iter__(self) -> Iterator[str]:
        return iter(self._upstream)

    def __len__(self) -> int:
        return len(self._upstream)

    def __repr__(self) -> str:
        # Names only: an output may hold a secret, and a repr ends up in logs.
        return f"<inputs of {self._task!r}: {', '.join(self._upstream) or 'none'}>"


#: The inputs of a task that has no upstream (and of a Task outside a run).
NO_INPUTS: Mapping[str, Any] = TaskInputs("", (), {})


@dataclass(frozen=True)
class ParameterPlan:
    """How the engine calls one function: which keyword arguments it may supply."""

    names: tuple[str, ...]  # parameters the engine may pass by name, `context` excluded
    required: tuple[str, ...]  # of those, the ones without a default
    context: bool  # takes `context=` (by name or through **kwargs)
    var_keyword: bool  # has **kwargs: receives every upstream output too
    positional_only: tuple[str, ...] = ()  # required positional-only parameters: cannot be supplied

    @property
    def trivial(self) -> bool:
        """True when the function is called without arguments (the common, fastest case)."""
        return not (self.names or self.context or self.var_keyword)


_PLANS: weakref.WeakKeyDictionary[Callable[..., Any], ParameterPlan] = weakref.WeakKeyDictionary()


def parameter_plan(function: Callable[..., Any]) -> ParameterPlan:
    """The ParameterPlan of `function` (cached: a function task is instantiated once per run)."""
    try:
        return _PLANS[function]
    except (KeyError, TypeError):
        pass
    plan = _plan_of(function)
    try:
        _PLANS[function] = plan
    except TypeError:
        pass  # not weak-referenceable (a builtin): just do not cache
    return plan


def _plan_of(function: Callable[..., Any]) -> ParameterPlan:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return ParameterPlan((), (), False, False)  # a builtin without a signature: called bare
    names: list[str] = []
    required: list[str] = []
    positional_only: list[str] = []
    context = var_keyword = False
    for parameter in parameters:
        kind = parameter.kind
        if kind is parameter.VAR_KEYWORD:
            var_keyword = context = True
        elif kind is parameter.VAR_POSITIONAL:
            continue  # *args: nothing is passed positionally
        elif kind is parameter.POSITIONAL_ONLY:
            if parameter.default is parameter.empty:
                positional_only.append(parameter.name)
        elif parameter.name == "context":
            context = True
        else:
            names.append(parameter.name)
            if parameter.default is parameter.empty:
                required.append(parameter.name)
    return ParameterPlan(tuple(names), tuple(required), context, var_keyword, tuple(positional_only))


def check_parameters(task: str, function: Callable[..., Any], upstream: Sequence[str]) -> None:
    """Raise InputParameterError when `function` needs a parameter that no upstream task supplies."""
    plan = parameter_plan(function)
    if plan.positional_only:
        raise InputParameterError(
            task, plan.positional_only[0], upstream, "is positional-only, so the engine cannot pass it by name"
        )
    for name in plan.required:
        if name not in upstream:
            raise InputParameterError(task, name, upstream)


def call_with_inputs(
    function: Callable[..., Any], plan: ParameterPlan, inputs: Mapping[str, Any], context: Mapping[str, Any]
) -> Any:
    """Call `function` with `context=` and the upstream outputs its parameters name."""
    if plan.trivial:
        return function()
    if type(inputs) is TaskInputs:
        arguments = inputs.arguments(plan.names)
    else:
        arguments = {name: inputs[name] for name in plan.names if name in inputs}
    if plan.context:
        arguments["context"] = context
    if plan.var_keyword:
        for name in inputs:
            arguments.setdefault(name, inputs[name])
    return function(**arguments)


class _OutputRepr(reprlib.Repr):
    """A short repr that masks secrets before it shortens anything (a cut secret would leak its ends)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = self.maxdict = 8
        self.maxstring = 60
        self.maxother = 60

    def repr1(self, x: Any, level: int) -> str:
        if isinstance(x, Secret):
            return MASK
        return super().repr1(x, level)

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        # reprlib sorts the keys; an output reads better in the order the task built it.
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [
            f"{self.repr1(key, level - 1)}: {self.repr1(value, level - 1)}"
            for key, value in itertools.islice(x.items(), self.maxdict)
        ]
        if len(x) > self.maxdict:
            pieces.append("...")
        return "{" + ", ".join(pieces) + "}"

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(mask_text(x), level)

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = mask_text(builtins.repr(x))
        except Exception:  # noqa: BLE001 - a broken __repr__ in a task's output must not cost a report
            return f"<{type(x).__name__} object>"
        if len(text) > self.maxother:
            keep = max(0, (self.maxother - 3) // 2)
            text = text[:keep] + "..." + text[len(text) - keep :]
        return text


_OUTPUT_REPR = _OutputRepr()


def output_text(value: Any, limit: int = 200) -> str | None:
    """A short, masked rendering of an output for reports and spans; None for no output."""
    if value is None:
        return None
    text = mask_text(_OUTPUT_REPR.repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
