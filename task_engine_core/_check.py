"""`check --backend`: where a pipeline will not behave on a backend as it does standalone on one process.

Each rule is a small object that finds one kind of difference, task by task, and says why and
what to do. Rules read only the validated pipeline and a `CheckTarget` (the backend and how it
will be run); nothing is imported from Airflow or Prefect. Every rule also declares the
capability-matrix row and columns it is a documented difference for, so the README's matrix
and this command share one list of differences.
"""

from __future__ import annotations

import abc
import ast
import collections.abc
import datetime
import decimal
import enum
import inspect
import os
import textwrap
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, is_dataclass
from typing import Any

from ._graph import downstream_map
from ._pipeline import TaskDefinition, ValidatedPipeline
from ._policies._bucket_stores import RATE_LIMIT_STORE_ENVIRONMENT_VARIABLE as RATE_LIMIT_STORE_VARIABLE
from ._policies._limiter import default_rate_limiter
from ._policies._resource import ResourceGuard
from .backend import AIRFLOW_MIN_RESCHEDULE_SECONDS, BACKENDS
from .errors import InvalidArgumentError

__all__ = [
    "BACKENDS",
    "CheckTarget",
    "Finding",
    "RULES",
    "check_pipeline",
    "configured_rate_limit_store",
    "format_findings",
    "findings_document",
]

#: Columns of the README's capability matrix (standalone sequential, standalone threads, the adapters).
MATRIX_COLUMNS = ("sequential", "threads", "airflow", "prefect")

RATE_LIMIT_STORE_CONTEXT_KEY = "rate_limit_store"
# Airflow refuses to expand a mapped task over more items than this ([core] max_map_length).
_AIRFLOW_MAX_MAP_LENGTH = 1024


def configured_rate_limit_store(context: Mapping[str, Any] | None = None) -> str:
    """The name of the rate-limit store a run will use (password masked): the rate limiter's own resolution."""
    return str(default_rate_limiter().configured_store(context).name)


def _store_is_per_process(store: str) -> bool:
    return store == "memory"


@dataclass(frozen=True)
class CheckTarget:
    """The backend a pipeline is checked for, and the settings of that deployment that matter."""

    backend: str
    #: Standalone worker threads; Prefect's max_workers (None: the backend's default).
    workers: int | None = None
    keep_going: bool = False
    #: Rate-limit key -> Airflow pool, as given to `to_airflow_dag(pools=...)`.
    pools: Mapping[str, str] = field(default_factory=dict)
    rate_limit_store: str = "memory"
    #: "process": flow runs each in a process of their own (work-pool workers, `serve`);
    #: "in-process": one flow run at a time in the calling process (`flow()`).
    prefect_workers: str = "process"
    #: The DAG is verified with `dag.test()` before it is deployed.
    dag_test: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidArgumentError(f"check backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.prefect_workers not in ("process", "in-process"):
            raise InvalidArgumentError(
                f"check prefect_workers={self.prefect_workers!r}: choose 'process' or 'in-process'"
            )

    @property
    def concurrent_tasks(self) -> bool:
        """True when several tasks of one run may be running at the same moment."""
        if self.backend == "airflow":
            return True  # the scheduler starts every ready task at once
        default = 4 if self.backend == "prefect" else 1
        return (self.workers or default) > 1

    @property
    def tasks_share_a_process(self) -> bool:
        """True when every task of a run, and only that run, uses one process's rate-limit buckets."""
        if self.backend == "airflow":
            return False  # every try is a task process of its own
        if self.backend == "prefect":
            return self.prefect_workers == "in-process"
        return True


@dataclass(frozen=True)
class Finding:
    """One place a task will behave differently on the backend: what, why, and what to do."""

    kind: str
    task: str
    reason: str
    action: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form (`--json`)."""
        return {"kind": self.kind, "task": self.task, "reason": self.reason, "action": self.action}


class Rule(abc.ABC):
    """Finds one kind of difference; subclasses set the class attributes and `findings`."""

    kind: str = ""
    #: The capability-matrix row (feature) and columns this difference belongs to.
    feature: str = ""
    columns: tuple[str, ...] = ()
    #: One line for the capability matrix.
    summary: str = ""

    @abc.abstractmethod
    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        """The differences of this kind in `validated` on `target`."""

    def finding(self, task: str, reason: str, action: str) -> Finding:
        """A Finding of this rule's kind."""
        return Finding(self.kind, task, reason, action)


class ResourcePollIsReschedule(Rule):
    """`@wait_for_resource` with a short interval: on Airflow every pause is a reschedule, which has a floor."""

    kind = "resource-poll-reschedule"
    feature = "resource waits (`wait_for_resource`)"
    columns = ("airflow",)
    summary = (
        "each pause between polls is a reschedule (the worker slot is free, one deadline across tries) "
        f"of at least {AIRFLOW_MIN_RESCHEDULE_SECONDS:g} s: shorter intervals stretch, and a timeout is noticed "
        "at the first poll after it"
    )

    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        if target.backend != "airflow":
            return
        for name in validated.order:
            for guard in validated.policies[name].guards:
                if (
                    isinstance(guard, ResourceGuard)
                    and guard.timeout > 0
                    and guard.interval < AIRFLOW_MIN_RESCHEDULE_SECONDS
                ):
                    yield self.finding(
                        name,
                        f"@wait_for_resource({guard.name!r}, interval={guard.interval:g}) polls every {guard.interval:g} s "
                        f"standalone, but on Airflow each pause is a reschedule of at least "
                        f"{AIRFLOW_MIN_RESCHEDULE_SECONDS:g} s (shorter ones race Airflow's scheduler, "
                        f"apache/airflow#71172), so polls come less often",
                        f"give interval >= {AIRFLOW_MIN_RESCHEDULE_SECONDS:g} s for Airflow, or lower "
                        f"to_airflow_dag(min_reschedule_seconds=) where your Airflow has the fix "
                        f"(the timeout still counts from the first poll, across tries)",
                    )


class ProcessLocalRateLimit(Rule):
    """A `@rate_limit` key in the in-process store on a backend that runs tasks in several processes."""

    kind = "rate-limit-per-process"
    feature = "rate limits (`@rate_limit`)"
    columns = ("airflow", "prefect")
    summary = "the `memory` store is per process: Airflow tries and separate flow runs do not share a bucket"

    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        if target.tasks_share_a_process or not _store_is_per_process(target.rate_limit_store):
            return
        where = (
            "every Airflow try runs in a task process of its own"
            if target.backend == "airflow"
            else "each Prefect flow run runs in a process of its own (work-pool workers, serve)"
        )
        for name in validated.order:
            keys = list(validated.policies[name].rate_limit_keys)
            keys += [key for key in _rate_limited_keys(validated.definitions[name]) if key not in keys]
            if keys:
                listed = ", ".join(repr(key) for key in keys)
                yield self.finding(
                    name,
                    f"rate-limit key(s) {listed} live in the in-process store ({RATE_LIMIT_STORE_VARIABLE}="
                    f"{target.rate_limit_store}); {where}, so each gets a full bucket and the limit no longer holds "
                    f"across them",
                    f"use a shared store: {RATE_LIMIT_STORE_VARIABLE}=redis://HOST:6379/0 (every machine) or "
                    f"sqlite:///PATH (one host), or `{RATE_LIMIT_STORE_CONTEXT_KEY}:` in the context file",
                )


class PoolIsConcurrency(Rule):
    """A rate-limit key mapped to an Airflow pool: a pool caps concurrency, not a rate."""

    kind = "pool-is-concurrency"
    feature = "rate limits (`@rate_limit`)"
    columns = ("airflow",)
    summary = "a key mapped to a pool (`pools=`) caps how many tasks run at once, not calls per second"

    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        if target.backend != "airflow" or not target.pools:
            return
        for name in validated.order:
            for key in validated.policies[name].rate_limit_keys:
                pool = target.pools.get(key)
                if pool is not None:
                    yield self.finding(
                        name,
                        f"rate-limit key {key!r} is mapped to Airflow pool {pool!r}: the pool caps how many tasks run "
                        f"at once (concurrency), not how many calls they make per second (the key's rate)",
                        f"size pool {pool!r} and each task's share of the rate together "
                        f"(airflow pools set {pool} N ...), and keep a shared rate-limit store for the rate itself",
                    )


class XComOutput(Rule):
    """A task's declared output type that Airflow's XCom cannot carry back unchanged."""

    kind = "xcom-output"
    feature = "task outputs (return values)"
    columns = ("airflow",)
    summary = "outputs travel by XCom: bytes and arbitrary objects cannot, dict keys come back as strings"

    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        if target.backend != "airflow":
            return
        for name in validated.order:
            annotation = _return_annotation(validated.definitions[name])
            problem = _xcom_problem(annotation)
            if problem is not None:
                yield self.finding(
                    name,
                    f"its output is declared as {_type_name(annotation)}, and {problem}; standalone and on Prefect the "
                    f"object is handed over in memory",
                    "return JSON-like data (str, numbers, lists, dicts with string keys, datetimes), or write the "
                    "payload somewhere shared and return its location",
                )


class MappedTask(Rule):
    """A task mapped over an upstream's output (`map_over=`) where the backend's mapping differs."""

    kind = "mapped-task"
    feature = "mapped tasks (`map_over=`)"
    columns = ("airflow",)
    summary = f"Airflow maps at most `[core] max_map_length` items ({_AIRFLOW_MAX_MAP_LENGTH} by default)"

    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        if target.backend != "airflow":
            return
        limit = os.environ.get("AIRFLOW__CORE__MAX_MAP_LENGTH", str(_AIRFLOW_MAX_MAP_LENGTH))
        for name in validated.order:
            source = validated.mapped.get(name)
            if source is not None:
                yield self.finding(
                    name,
                    f"it is mapped over the output of {source!r}; Airflow's dynamic task mapping fails the task when "
                    f"that output has more than [core] max_map_length = {limit} items, where a standalone run maps "
                    f"any number",
                    f"keep {source!r}'s output under {limit} items (batch them), or raise max_map_length "
                    f"(AIRFLOW__CORE__MAX_MAP_LENGTH) on the scheduler",
                )


class DagTestOnly(Rule):
    """Something `dag.test()` does not show: it ignores pools."""

    kind = "dag-test-only"
    feature = "rate limits (`@rate_limit`)"  # pools are where rate-limit keys meet Airflow
    columns = ("airflow",)
    summary = "`dag.test()` ignores pools (and priority weights); a real scheduler honours both"

    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        if target.backend != "airflow" or not target.dag_test or not target.pools:
            return
        for name in validated.order:
            pools = sorted(
                {target.pools[key] for key in validated.policies[name].rate_limit_keys if key in target.pools}
            )
            if pools:
                yield self.finding(
                    name,
                    f"it runs in Airflow pool {pools[0]!r}, which dag.test() ignores: a dag.test() run neither caps it "
                    f"nor notices a missing pool, while a real scheduler never schedules a task whose pool is missing",
                    f"create the pool before deploying (airflow pools set {pools[0]} N ...) and try the DAG once on a "
                    f"scheduler",
                )


class StartOrder(Rule):
    """An explicit priority that orders starts on one worker but not when several tasks run at once."""

    kind = "start-order"
    feature = "priority (`priority=`, statistics)"
    columns = ("threads", "airflow", "prefect")
    summary = "priority orders starts; with several tasks running at once it does not keep tasks apart"

    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        if not target.concurrent_tasks:
            return
        related = _related(validated)
        for name in validated.order:
            priority = validated.policies[name].priority
            if priority is None:
                continue
            peers = [other for other in validated.order if other != name and other not in related[name]]
            if peers:
                shown = ", ".join(repr(peer) for peer in peers[:3]) + (" ..." if len(peers) > 3 else "")
                yield self.finding(
                    name,
                    f"priority={priority:g} makes it start before the independent task(s) {shown} on one worker; "
                    f"{_overlap_label(target)} they may run at the same time, and a failure of one no longer keeps "
                    f"the other from starting",
                    f"if {name!r} must finish before them, say so with depends_on=; priority only orders starts",
                )


class TaskStatePerTry(Rule):
    """A retried Task class that keeps state on `self`: every Airflow try builds a new instance."""

    kind = "task-state-per-try"
    feature = "retries (`@retries`, `retry_handler`)"
    columns = ("airflow",)
    summary = "each try is a new process: state kept on `self` between attempts is lost"

    def findings(self, validated: ValidatedPipeline, target: CheckTarget) -> Iterator[Finding]:
        if target.backend != "airflow":
            return
        for name in validated.order:
            definition = validated.definitions[name]
            task_class = definition.target
            if not isinstance(task_class, type) or validated.policies[name].max_attempts < 2:
                continue
            assigned = _attributes_set_on_self(task_class)
            if assigned:
                listed = ", ".join(f"self.{attribute}" for attribute in assigned)
                yield self.finding(
                    name,
                    f"its methods set {listed}; standalone (and on Prefect) all attempts share one instance, but every "
                    f"Airflow try runs in a new process with a new instance, so the next attempt starts without it",
                    "keep what an attempt must know in the context, an external store, or derive it from "
                    "self.attempt_state.attempt",
                )


RULES: tuple[Rule, ...] = (
    ResourcePollIsReschedule(),
    ProcessLocalRateLimit(),
    PoolIsConcurrency(),
    XComOutput(),
    MappedTask(),
    DagTestOnly(),
    StartOrder(),
    TaskStatePerTry(),
)


def check_pipeline(validated: ValidatedPipeline, target: CheckTarget, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Every difference `rules` find in `validated` on `target`, in run order of the tasks."""
    found = [finding for rule in rules for finding in rule.findings(validated, target)]
    rank = {name: i for i, name in enumerate(validated.order)}
    return sorted(found, key=lambda f: rank.get(f.task, len(rank)))  # stable: rule order within a task


def _backend_label(target: CheckTarget) -> str:
    if target.backend == "standalone":
        workers = target.workers or 1
        return "standalone, 1 worker" if workers == 1 else f"standalone, {workers} worker threads"
    if target.backend == "prefect":
        return f"Prefect with max_workers={target.workers or 4}"
    return "Airflow, which starts every ready task at once"


def _overlap_label(target: CheckTarget) -> str:
    if target.backend == "standalone":
        return f"with {target.workers} worker threads"
    if target.backend == "prefect":
        return f"on Prefect with max_workers={target.workers or 4}"
    return "on Airflow, which starts every ready task at once,"


def format_findings(pipeline: str, target: CheckTarget, findings: Sequence[Finding]) -> str:
    """The text report: one block per finding, naming the task, the kind, why and what to do."""
    where = _backend_label(target) if target.backend != "airflow" else "airflow"
    if not findings:
        return f"pipeline {pipeline!r} on {where}: nothing behaves differently from a standalone run"
    lines = [f"pipeline {pipeline!r} on {where}: {len(findings)} difference(s) from a standalone run"]
    for finding in findings:
        lines.append(f"{finding.task} [{finding.kind}]")
        lines.extend(textwrap.wrap(finding.reason, 100, initial_indent="  why: ", subsequent_indent="       "))
        lines.extend(textwrap.wrap(finding.action, 100, initial_indent="  do:  ", subsequent_indent="       "))
    return "\n".join(lines)


def findings_document(pipeline: str, target: CheckTarget, findings: Sequence[Finding]) -> dict[str, Any]:
    """The `--json` document."""
    return {
        "format": "task-engine-check/1",
        "pipeline": pipeline,
        "backend": target.backend,
        "findings": [finding.as_dict() for finding in findings],
    }


# -- what the rules read ------------------------------------------------------------------------


def _related(validated: ValidatedPipeline) -> dict[str, set[str]]:
    """For each task, every task above or below it (those it can never run at the same time as)."""
    downstream = downstream_map(validated.upstream)
    above: dict[str, set[str]] = {}
    for name in validated.order:
        above[name] = set(validated.upstream[name]).union(*(above[p] for p in validated.upstream[name]))
    below: dict[str, set[str]] = {}
    for name in reversed(validated.order):
        below[name] = set(downstream[name]).union(*(below[c] for c in downstream[name]))
    return {name: above[name] | below[name] for name in validated.order}


def _return_annotation(definition: TaskDefinition) -> Any:
    function = definition.body
    try:
        return typing.get_type_hints(function).get("return", inspect.Signature.empty)
    except Exception:  # noqa: BLE001 - an unresolvable forward reference: fall back to the raw text
        return getattr(function, "__annotations__", {}).get("return", inspect.Signature.empty)


_CARRIED_SCALARS = (
    str,
    int,
    float,
    bool,
    type(None),
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
)
_SEQUENCES = (
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
    collections.abc.Iterable,
    collections.abc.Collection,
)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def _xcom_problem(annotation: Any) -> str | None:
    """Why Airflow's XCom (its serde, Airflow 3) cannot hand back a value of this type; None when it can."""
    if annotation is inspect.Signature.empty or annotation is Any or annotation is None or isinstance(annotation, str):
        return None  # undeclared or unresolvable: nothing to say
    if annotation in _CARRIED_SCALARS or annotation in (list, tuple, set, frozenset, dict):
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType or origin is typing.Literal:
        if origin is typing.Literal:
            return None
        return next((p for p in map(_xcom_problem, args) if p is not None), None)
    if origin in _SEQUENCES or annotation in _SEQUENCES:
        items = (_xcom_problem(arg) for arg in args if arg is not Ellipsis)  # tuple[int, ...]
        return next((problem for problem in items if problem is not None), None)
    if origin in _MAPPINGS or annotation in _MAPPINGS:
        if args and args[0] not in (str, Any):
            return f"XCom stores mappings as JSON objects, so its {_type_name(args[0])} keys come back as strings"
        return _xcom_problem(args[1]) if len(args) == 2 else None
    if annotation in (bytes, bytearray, memoryview):
        return f"Airflow's XCom cannot serialise {annotation.__name__} (it stores JSON)"
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return f"Airflow's XCom cannot serialise the enum {annotation.__name__} (it stores JSON)"
        if _is_typed_dict(annotation):
            return None
        if is_dataclass(annotation):
            return (
                f"Airflow's XCom serialises the dataclass {annotation.__name__} but refuses to load it back unless "
                f"[core] allowed_deserialization_classes names it"
            )
        if callable(getattr(annotation, "serialize", None)) and callable(getattr(annotation, "deserialize", None)):
            return None  # Airflow's serde protocol: the class carries itself
        return f"Airflow's XCom cannot serialise {annotation.__name__} objects (it stores JSON)"
    return None


def _is_typed_dict(annotation: type) -> bool:
    return issubclass(annotation, dict) and hasattr(annotation, "__total__")


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _source_trees(target: Any) -> Iterator[ast.AST]:
    """The parsed source of a task function, or of a Task class and its user-defined bases."""
    owners = [target] if not isinstance(target, type) else list(target.__mro__)
    for owner in owners:
        if owner is object or getattr(owner, "__module__", "").split(".")[0] == __name__.split(".")[0]:
            continue  # the engine's own base classes keep no attempt state and take no tokens by themselves
        try:
            source = textwrap.dedent(inspect.getsource(owner))
            yield ast.parse(source)
        except (OSError, TypeError, SyntaxError):
            continue  # defined where the source cannot be read (a REPL): nothing to say


def _attributes_set_on_self(target: type) -> list[str]:
    """Attributes a Task class's own methods (other than __init__) assign on self, in source order."""
    found: list[str] = []
    for tree in _source_trees(target):
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "__init__":
                for inner in ast.walk(node):
                    targets: list[ast.expr] = []
                    if isinstance(inner, ast.Assign):
                        targets = inner.targets
                    elif isinstance(inner, (ast.AugAssign, ast.AnnAssign)):
                        targets = [inner.target]
                    for expr in targets:
                        if (
                            isinstance(expr, ast.Attribute)
                            and isinstance(expr.value, ast.Name)
                            and expr.value.id == "self"
                            and expr.attr not in found
                        ):
                            found.append(expr.attr)
    return found


def _rate_limited_keys(definition: TaskDefinition) -> list[str]:
    """Keys a task's code takes tokens of with `rate_limited("key")` (string literals only)."""
    found: list[str] = []
    for tree in _source_trees(definition.target):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            function = node.func
            called = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
            if called != "rate_limited":
                continue
            keys = [node.args[0]] if node.args else [k.value for k in node.keywords if k.arg == "key"]
            for key in keys:
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value not in found:
                    found.append(key.value)
    return found
