"""Airflow DAG-folder entry of Task Engine: one Airflow DAG per configured pipeline.

Point Airflow's `dags_folder` at this folder, or copy this file into yours. The pipelines are
loaded, in this order of preference, from:

1. the environment variable TASK_ENGINE_PIPELINES: targets separated by commas;
2. the file `task_engine_pipelines.txt` beside this file: one target a line, `#` starts a comment;
3. otherwise the project's example pipelines (`examples/tasks`, `examples/jobs`).

A target is what `python -m task_engine_core run` accepts: a module name, a `.py` file or a
package folder (relative paths in the file are relative to the file). Each target becomes its
own pipeline, so two pipelines may use the same task name. The DAG id is the pipeline's name.
Parsing imports the pipeline modules only: no task code runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from task_engine.airflow import to_airflow_dag  # compiles each pipeline into an airflow.sdk DAG
from task_engine_core.loader import load_pipeline

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE / "task_engine_pipelines.txt"
EXAMPLES = HERE.parent / "examples"


def configured_targets() -> list[str]:
    """The pipeline targets to expose, from the environment, the config file, or the examples."""
    from_environment = os.environ.get("TASK_ENGINE_PIPELINES", "").strip()
    if from_environment:
        return [target.strip() for target in from_environment.split(",") if target.strip()]
    if CONFIG_FILE.exists():
        targets = []
        for line in CONFIG_FILE.read_text().splitlines():
            target = line.split("#", 1)[0].strip()
            if target:
                relative = HERE / target
                targets.append(str(relative) if relative.exists() else target)
        return targets
    return [str(EXAMPLES / name) for name in ("tasks", "jobs") if (EXAMPLES / name).is_dir()]


for _target in configured_targets():
    _pipeline = load_pipeline(_target)
    # Airflow finds DAGs among the module's globals.
    globals()[f"dag_{_pipeline.name}"] = to_airflow_dag(_pipeline)
