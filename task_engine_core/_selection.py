"""Selecting part of a pipeline: `--only`, `--from`, `--to`, `--tags`, `--with-upstream`.

`Pipeline.select(...)` and `PipelineExecutor(select=...)` resolve a selection here, against the
validated graph, before any task runs. Names and tags may be glob patterns (`fnmatch`, case
sensitive); every criterion given must hold (they intersect); `with_upstream` then adds
everything the chosen tasks need. Tasks left out stay in the pipeline: they do not run, end
NOT_RUN with `TaskResult.excluded` set, and do not block their dependents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TypedDict

from ._graph import downstream_map
from .errors import EmptySelectionError, InvalidArgumentError, UnknownSelectionError, closest_names

__all__ = [
    "BACKEND_OPTIONS",
    "SelectOptions",
    "SELECT_OPTIONS",
    "check_select_options",
    "describe_selection",
    "normalise_tags",
    "parse_backend_options",
    "resolve_selection",
]

_GLOB_CHARACTERS = frozenset("*?[")


class SelectOptions(TypedDict, total=False):
    """What `PipelineExecutor(select=...)` accepts: the keyword arguments of `Pipeline.select`."""

    only: str | Sequence[str]
    from_: str | Sequence[str]
    to: str | Sequence[str]
    tags: str | Sequence[str]
    with_upstream: bool


#: The option names, in the order a description lists them; `from_tasks` is an alias of `from_`.
SELECT_OPTIONS = ("only", "from_", "to", "tags", "with_upstream")


def check_select_options(options: object) -> dict[str, object]:
    """`options` as a plain dict of Pipeline.select keywords; InvalidArgumentError for anything else."""
    if not isinstance(options, Mapping):
        raise InvalidArgumentError(
            f"select={options!r}: pass a mapping of Pipeline.select options, e.g. select={{'only': ['Extract']}}"
        )
    checked = dict(options)
    if "from_tasks" in checked:
        checked["from_"] = checked.pop("from_tasks")
    unknown = sorted(set(checked) - set(SELECT_OPTIONS))
    if unknown:
        raise InvalidArgumentError(
            f"select= got unknown option(s) {', '.join(map(repr, unknown))}; the options are "
            f"{', '.join(map(repr, SELECT_OPTIONS))}"
        )
    return checked


def normalise_tags(tags: object, where: str = "@register(tags=...)") -> tuple[str, ...]:
    """A tag or a list of tags as a tuple of non-empty strings; InvalidArgumentError otherwise."""
    return _patterns(tags, where)


def _patterns(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise InvalidArgumentError(f"{where} must be a string or a list of strings, not {value!r}")
    patterns = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidArgumentError(f"{where} got {item!r}; give non-empty names")
        patterns.append(item.strip())
    return tuple(patterns)


def _matching(patterns: Iterable[str], pool: Sequence[str], option: str, kind: str, pipeline: str) -> set[str]:
    """Every member of `pool` matching one of `patterns`; a pattern matching nothing is an error."""
    found: set[str] = set()
    for pattern in patterns:
        if any(ch in _GLOB_CHARACTERS for ch in pattern):
            matched = {item for item in pool if fnmatchcase(item, pattern)}
        else:
            matched = {pattern} if pattern in pool else set()
        if not matched:
            raise UnknownSelectionError(option, pattern, kind, pipeline, pool)
        found |= matched
    return found


def _closure(start: set[str], edges: Mapping[str, Sequence[str]]) -> set[str]:
    """`start` and everything reachable from it along `edges` (O(V+E))."""
    seen = set(start)
    stack = list(start)
    while stack:
        for neighbour in edges[stack.pop()]:
            if neighbour not in seen:
                seen.add(neighbour)
                stack.append(neighbour)
    return seen


def resolve_selection(
    pipeline: str,
    order: Sequence[str],
    upstream: Mapping[str, Sequence[str]],
    tags: Mapping[str, Sequence[str]],
    options: Mapping[str, object],
) -> tuple[str, ...]:
    """The selected task names in `order`; raises UnknownSelectionError / EmptySelectionError."""
    names = list(order)
    chosen: set[str] = set(names)
    only = _patterns(options.get("only"), "select(only=...)")
    starts = _patterns(options.get("from_"), "select(from_=...)")
    ends = _patterns(options.get("to"), "select(to=...)")
    wanted_tags = _patterns(options.get("tags"), "select(tags=...)")
    if only:
        chosen &= _matching(only, names, "only", "task", pipeline)
    if starts:
        chosen &= _closure(_matching(starts, names, "from", "task", pipeline), downstream_map(upstream))
    if ends:
        chosen &= _closure(_matching(ends, names, "to", "task", pipeline), upstream)
    if wanted_tags:
        known = sorted({tag for task_tags in tags.values() for tag in task_tags})
        matched_tags = _matching(wanted_tags, known, "tags", "tag", pipeline)
        chosen &= {name for name in names if matched_tags.intersection(tags.get(name, ()))}
    if not chosen:
        raise EmptySelectionError(pipeline, describe_selection(options))
    if options.get("with_upstream"):
        chosen = _closure(chosen, upstream)
    return tuple(name for name in names if name in chosen)


def describe_selection(options: Mapping[str, object]) -> str:
    """The selection as CLI flags (`--only A,B --with-upstream`); '' when nothing is selected."""
    parts = []
    for option in SELECT_OPTIONS:
        value = options.get(option)
        if option == "with_upstream":
            if value:
                parts.append("--with-upstream")
        elif value:
            flag = "--from" if option == "from_" else f"--{option}"
            parts.append(f"{flag} {','.join(_patterns(value, option))}")
    return " ".join(parts)


#: The keys of the `task_engine` object an orchestrator passes (Airflow dag_run.conf, Prefect flow
#: parameter): the CLI's flag names, `with_upstream` spelled with an underscore.
BACKEND_OPTIONS = ("only", "from", "to", "tags", "with_upstream", "resume")


def parse_backend_options(options: object, where: str) -> tuple[SelectOptions | None, str | bool]:
    """`{"only": [...], "from": ..., "resume": "<run id>"}` as (`select=`, `resume=`) executor options.

    Lists may also be comma-separated strings, as on the command line. `where` names the source
    in error messages (e.g. "dag_run.conf['task_engine']").
    """
    if options is None:
        return None, False
    if not isinstance(options, Mapping):
        raise InvalidArgumentError(f'{where} must be an object such as {{"only": ["Extract"]}}, not {options!r}')
    unknown = sorted(str(key) for key in options if key not in BACKEND_OPTIONS)
    if unknown:
        hints = [
            f"{key!r} (did you mean {close[0]!r}?)" if (close := closest_names(key, BACKEND_OPTIONS)) else repr(key)
            for key in unknown
        ]
        raise InvalidArgumentError(
            f"{where} has unknown key(s) {', '.join(hints)}; the keys are {', '.join(BACKEND_OPTIONS)}"
        )
    select: dict[str, object] = {}
    for key in ("only", "from", "to", "tags"):
        value = options.get(key)
        if value:
            names = value.split(",") if isinstance(value, str) else value
            select["from_" if key == "from" else key] = _patterns(
                [n for n in names if not isinstance(n, str) or n.strip()], f"{where}[{key!r}]"
            )
    with_upstream = options.get("with_upstream", False)
    if not isinstance(with_upstream, bool):
        raise InvalidArgumentError(f"{where}['with_upstream'] must be true or false, not {with_upstream!r}")
    if with_upstream:
        select["with_upstream"] = True
    resume = options.get("resume", False)
    if resume is None:
        resume = False
    if not (isinstance(resume, bool) or (isinstance(resume, str) and resume.strip())):
        raise InvalidArgumentError(f"{where}['resume'] must be true (the latest run) or a run id, not {resume!r}")
    return (select or None), (resume.strip() if isinstance(resume, str) else resume)  # type: ignore[return-value]
