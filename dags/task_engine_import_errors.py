"""Airflow DAG-folder companion of `task_engine_dags.py`: Task Engine pipelines that do not compile.

This file holds no DAG. While a pipeline configured for this folder fails to load or compile,
importing it fails with one error naming every such pipeline, its target and the reason, so that
`airflow dags list-import-errors` and the UI's import-errors banner show it. The error cannot be
one of `task_engine_dags.py` itself: Airflow 3 marks every DAG of a file with an import error
stale and schedules none of them, while here the good pipelines run on. Copy it next to
`task_engine_dags.py` when you copy that file.
"""

from __future__ import annotations

from pathlib import Path

from task_engine.airflow_dags import raise_broken_pipelines

raise_broken_pipelines(Path(__file__).resolve().parent)
