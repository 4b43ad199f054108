"""Task Engine's orchestrator integrations, imported as `task_engine`: `task_engine.airflow`, `task_engine.prefect`.

The repository keeps them in its `adapters/` folder; the wheel installs that folder as the package
`task_engine` (the distribution's own name, which is also the module Airflow imports for the
provider `task-engine`), and in a checkout the link `task_engine -> adapters` gives the same name.
Each adapter imports its orchestrator lazily, so importing this package needs only the core.
"""

from __future__ import annotations

if __name__ != "task_engine":
    # Imported as `adapters` (the folder's name): a second copy of each adapter module, and a name
    # that other distributions install too. There is one import name.
    raise ImportError(
        f"the Task Engine adapters are imported as 'task_engine', not {__name__!r}: "
        f"write 'from task_engine.airflow import to_airflow_dag' (or task_engine.prefect)"
    )
