"""Airflow DAG-folder entry of Task Engine: one Airflow DAG per configured pipeline.

Point Airflow's `dags_folder` at this folder, or copy this file into yours. The pipelines are
loaded, in this order of preference, from:

1. the environment variable TASK_ENGINE_PIPELINES: targets separated by commas;
2. the file `task_engine_dags.yml` beside this file: per-pipeline settings (target, schedule,
   tags, pools, context file, keep_going, groups, params, connections, secrets), see the README;
3. the file `task_engine_pipelines.txt` beside this file: one target a line, `#` starts a comment;
4. otherwise the project's example pipelines (`examples/tasks`, `examples/jobs`).

A target is what `python -m task_engine_core run` accepts: a module name, a `.py` file or a
package folder (relative paths in the files are relative to the file). Each target becomes its
own pipeline, so two pipelines may use the same task name. The DAG id is the pipeline's name
unless the YAML file names it. A pipeline that fails to load does not hide the others: it is
left out here and shows as an import error of `task_engine_import_errors.py` beside this file,
naming the pipeline. Parsing imports the pipeline modules only: no task code runs.
"""

from __future__ import annotations

from pathlib import Path

from task_engine.airflow_dags import expose_dags

expose_dags(globals(), Path(__file__).resolve().parent)
