"""The DAG-folder entry's machinery: per-pipeline settings from `task_engine_dags.yml`, one DAG per pipeline.

`dags/task_engine_dags.py` calls `expose_dags(globals(), folder)`. Each pipeline is loaded and
compiled on its own: one that fails (import error, definition error, a bad setting) does not
hide the others, and shows in Airflow as an import error of `dags/task_engine_import_errors.py`
(`raise_broken_pipelines`) naming the pipeline and its target; that file holds no DAG, so its
error marks nothing stale. The configuration file is validated before anything is imported; its messages
name the file, the pipeline and the key.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from task_engine_core import TaskEngineError
from task_engine_core.backend import MissingExtraError, error_text, load_pipeline

from .airflow import AirflowAdapterError, to_airflow_dag

if TYPE_CHECKING:
    from airflow.sdk import DAG

__all__ = [
    "BrokenPipelinesError",
    "CONFIG_FILE_NAME",
    "DagsConfigError",
    "ERRORS_FILE_NAME",
    "PipelineSettings",
    "compile_pipelines",
    "configured_pipelines",
    "expose_dags",
    "raise_broken_pipelines",
    "read_dags_config",
]

CONFIG_FILE_NAME = "task_engine_dags.yml"
"""The per-pipeline configuration file the entry reads from its own folder."""
_TARGETS_FILE_NAME = "task_engine_pipelines.txt"
ERRORS_FILE_NAME = "task_engine_import_errors.py"
"""The DAG folder's second file: it holds no DAG and fails to import while a pipeline is broken."""
# Settings of one pipeline and the type(s) each accepts (checked before the DAG is built).
_KEYS: dict[str, tuple[type, ...]] = {
    "target": (str,),
    "schedule": (str, type(None)),
    "tags": (list,),
    "pools": (dict,),
    "context_file": (str,),
    "context_variable": (str, type(None)),
    "keep_going": (bool,),
    "groups": (dict,),
    "params": (dict,),
    "connections": (dict,),
    "secrets": (dict,),
    "task_groups": (bool,),
    "min_reschedule_seconds": (int, float),
    "description": (str,),
    "max_active_runs": (int,),
    "default_args": (dict,),
}
_log = logging.getLogger(__name__)
_PARAM_KEYS = ("type", "default", "description", "enum", "minimum", "maximum")
_PARAM_TYPES = ("string", "integer", "number", "boolean", "array", "object")


class DagsConfigError(TaskEngineError):
    """`task_engine_dags.yml` is malformed: the message names the file, the pipeline and the key."""


@dataclass
class PipelineSettings:
    """One pipeline of the DAG folder: its target and the keyword arguments of `to_airflow_dag`."""

    dag_id: str | None
    target: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How messages name this pipeline: its DAG id if configured, else its target."""
        return self.dag_id or self.target


def read_dags_config(path: str | os.PathLike[str]) -> list[PipelineSettings]:
    """Read and validate a `task_engine_dags.yml`: `pipelines:` maps each DAG id to its settings."""
    path = Path(path)
    try:
        import yaml
    except ImportError:  # pragma: no cover - Airflow itself depends on PyYAML
        raise MissingExtraError("PyYAML", "yaml", f"reading {path}") from None
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DagsConfigError(f"{path}: cannot read it as YAML: {error}") from error
    if document is None:
        return []
    if not isinstance(document, Mapping) or set(document) - {"pipelines"}:
        raise DagsConfigError(
            f"{path}: the file holds one key, 'pipelines:', mapping each DAG id to its settings "
            f"(found {sorted(document) if isinstance(document, Mapping) else type(document).__name__})"
        )
    pipelines = document.get("pipelines") or {}
    if not isinstance(pipelines, Mapping):
        raise DagsConfigError(f"{path}: 'pipelines' must map DAG ids to settings, not {type(pipelines).__name__}")
    return [_pipeline_settings(path, str(dag_id), settings) for dag_id, settings in pipelines.items()]


def _pipeline_settings(path: Path, dag_id: str, settings: Any) -> PipelineSettings:
    where = f"{path}: pipeline {dag_id!r}"
    if isinstance(settings, str):
        settings = {"target": settings}  # `name: target` is the short form
    if not isinstance(settings, Mapping):
        raise DagsConfigError(f"{where}: give a target or a mapping of settings, not {type(settings).__name__}")
    for key, value in settings.items():
        if key not in _KEYS:
            close = get_close_matches(str(key), _KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DagsConfigError(f"{where}: unknown key {key!r}; {hint}the keys are {', '.join(_KEYS)}")
        # bool is an int: refuse `max_active_runs: true` and `keep_going: 1` alike.
        if not isinstance(value, _KEYS[key]) or (isinstance(value, bool) and bool not in _KEYS[key]):
            wanted = " or ".join("null" if kind is type(None) else kind.__name__ for kind in _KEYS[key])
            raise DagsConfigError(f"{where}, key {key!r}: expected {wanted}, got {value!r}")
    if "target" not in settings:
        raise DagsConfigError(f"{where}: key 'target' is missing; give a module, a .py file or a package folder")
    options = {key: value for key, value in settings.items() if key != "target"}
    for key in ("tags",):
        if key in options and not all(isinstance(item, str) for item in options[key]):
            raise DagsConfigError(f"{where}, key {key!r}: expected a list of strings, got {options[key]!r}")
    for key in ("pools", "connections", "secrets"):
        for name, value in (options.get(key) or {}).items():
            if not isinstance(value, str):
                raise DagsConfigError(f"{where}, key '{key}.{name}': expected a string, got {value!r}")
    for name, members in (options.get("groups") or {}).items():
        if not isinstance(members, list) or not all(isinstance(item, str) for item in members):
            raise DagsConfigError(f"{where}, key 'groups.{name}': expected a list of task names, got {members!r}")
    if "params" in options:
        options["params"] = {name: _param(where, str(name), spec) for name, spec in options["params"].items()}
    if "context_file" in options:
        options["context_file"] = _relative(path, options["context_file"])
    return PipelineSettings(dag_id, _relative(path, settings["target"]), options)


def _param(where: str, name: str, spec: Any) -> Any:
    """A declared context key as an Airflow Param: a field of the trigger form, typed and with a default."""
    from airflow.sdk import Param

    if not isinstance(spec, Mapping):
        spec = {"default": spec}  # `region: eu` declares a string param with that default
    unknown = sorted(set(spec) - set(_PARAM_KEYS))
    if unknown:
        raise DagsConfigError(
            f"{where}, key 'params.{name}': unknown field(s) {', '.join(map(repr, unknown))}; "
            f"the fields are {', '.join(_PARAM_KEYS)}"
        )
    arguments = dict(spec)
    default = arguments.pop("default", None)
    kind = arguments.get("type") or _json_type(default)
    if kind not in _PARAM_TYPES:
        raise DagsConfigError(
            f"{where}, key 'params.{name}.type': {kind!r} is not a JSON-schema type; use one of {', '.join(_PARAM_TYPES)}"
        )
    # A param without a default may be left empty in the form: the task then sees None.
    arguments["type"] = kind if "default" in spec and default is not None else [kind, "null"]
    try:
        param = Param(default, **arguments)
        param.resolve()  # Airflow checks a default against its type only when a run starts
        return param
    except Exception as error:  # Airflow's ParamValidationError: the default does not fit the type
        raise DagsConfigError(f"{where}, key 'params.{name}': {error}") from error


def _json_type(value: Any) -> str:
    kinds = {bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}
    return kinds.get(type(value), "string")


def _relative(config: Path, value: str) -> str:
    """A path in the file is relative to the file; a module name stays a module name."""
    candidate = config.parent / value
    return str(candidate.resolve()) if candidate.exists() else value


def configured_pipelines(folder: str | os.PathLike[str]) -> list[PipelineSettings]:
    """The pipelines of a DAG folder: $TASK_ENGINE_PIPELINES, else task_engine_dags.yml, else task_engine_pipelines.txt."""
    folder = Path(folder)
    from_environment = os.environ.get("TASK_ENGINE_PIPELINES", "").strip()
    if from_environment:
        return [PipelineSettings(None, item.strip()) for item in from_environment.split(",") if item.strip()]
    config = folder / CONFIG_FILE_NAME
    if config.exists():
        return read_dags_config(config)
    targets = folder / _TARGETS_FILE_NAME
    if targets.exists():
        listed = (line.split("#", 1)[0].strip() for line in targets.read_text().splitlines())
        return [PipelineSettings(None, _relative(targets, target)) for target in listed if target]
    examples = folder.parent / "examples"
    return [PipelineSettings(None, str(examples / name)) for name in ("tasks", "jobs") if (examples / name).is_dir()]


def compile_pipelines(folder: str | os.PathLike[str]) -> tuple[dict[str, DAG], list[str]]:
    """Compile every configured pipeline of a DAG folder on its own: (DAGs by id, one message per broken pipeline)."""
    try:
        settings = configured_pipelines(folder)
    except TaskEngineError as error:
        return {}, [error_text(error)]
    dags: dict[str, DAG] = {}
    problems: list[str] = []
    for entry in settings:
        try:
            pipeline = load_pipeline(entry.target)
            # Not auto-registered: only the DAGs the entry puts in its globals reach Airflow.
            dag = to_airflow_dag(pipeline, entry.dag_id, auto_register=False, **entry.options)
        except (TaskEngineError, TypeError) as error:
            problems.append(f"pipeline {entry.label!r} (target {entry.target!r}): {error_text(error)}")
            continue
        except Exception as error:  # noqa: BLE001 - anything a pipeline module raises while it is imported
            where = "".join(traceback.format_exception_only(type(error), error)).strip()
            problems.append(f"pipeline {entry.label!r} (target {entry.target!r}) failed to import: {where}")
            continue
        try:
            # What Airflow checks when it bags the DAG (schedule, params, ...), while the pipeline is known.
            dag.validate()  # type: ignore[no-untyped-call]
        except Exception as error:  # noqa: BLE001 - any refusal of Airflow's is this pipeline's import error
            problems.append(
                f"pipeline {entry.label!r} (target {entry.target!r}): Airflow refuses DAG {dag.dag_id!r}: "
                f"{type(error).__name__}: {error}; fix its settings in {CONFIG_FILE_NAME}"
            )
            continue
        if dag.dag_id in dags:
            problems.append(
                f"pipeline {entry.label!r} (target {entry.target!r}): DAG id {dag.dag_id!r} is already taken "
                f"by another pipeline; give one of them its own DAG id in {CONFIG_FILE_NAME}"
            )
            continue
        dags[dag.dag_id] = dag
    return dags, problems


def expose_dags(namespace: MutableMapping[str, Any], folder: str | os.PathLike[str]) -> dict[str, DAG]:
    """Put the DAG of every pipeline that compiles into `namespace` (a DAG file's globals); log the broken ones.

    The broken ones are not an import error of this file: Airflow 3 marks every DAG of a file
    with an import error stale and schedules none of them. `raise_broken_pipelines`, called by
    the folder's second file, reports them.
    """
    dags, problems = compile_pipelines(folder)
    for dag_id, dag in dags.items():
        namespace[f"dag_{dag_id}"] = dag  # Airflow finds DAGs among the module's globals
    for problem in problems:
        _log.warning("Task Engine: %s (shown as an import error of %s)", problem, ERRORS_FILE_NAME)
    return dags


def raise_broken_pipelines(folder: str | os.PathLike[str]) -> None:
    """Raise BrokenPipelinesError naming every pipeline of `folder` that does not compile: Airflow shows it as an import error."""
    _, problems = compile_pipelines(folder)
    if problems:
        raise BrokenPipelinesError(
            f"{len(problems)} Task Engine pipeline(s) could not be compiled; the others are scheduled as usual:\n"
            + "\n".join(f"- {problem}" for problem in problems)
        )


class BrokenPipelinesError(AirflowAdapterError):
    """Pipelines of a DAG folder that do not compile; raised while Airflow parses the folder's errors file."""
