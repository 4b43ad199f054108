"""Prefect entrypoints for the example pipelines.

A flow built inside a library call has no import path of its own, so Prefect deploys it by the
module-level name it is bound to here: `flows/example_flows.py:tasks_flow`. `flows/prefect.yaml`
lists these entrypoints for `prefect deploy`; add a line below for each pipeline of your own.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `examples/` is a folder of the repository, not an installed package: make it importable when
# Prefect loads this file from a worker, whatever the worker's working directory.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from task_engine.prefect import to_prefect_flow  # noqa: E402
from task_engine_core.backend import load_pipeline  # noqa: E402

#: The seed's `tasks` example: BaseTask -> Task1 -> AlwaysFailsTask -> Task2.
tasks_flow = to_prefect_flow(load_pipeline("examples.tasks"), name="tasks")

#: The seed's `jobs` example: Job2Task1 -> Job2Task2 -> Job1Task1 -> Job1Task2.
jobs_flow = to_prefect_flow(load_pipeline("examples.jobs"), name="jobs")
