"""task_engine.airflow in the main environment: without Airflow, importing it names the extra to install.

The adapter's behaviour is tested in tests/airflow/ inside the Airflow virtualenv.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from task_engine_core.errors import MissingExtraError


def test_importing_the_adapter_without_airflow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import airflow` fail whether or not Airflow is installed here.
    monkeypatch.setitem(sys.modules, "airflow", None)
    monkeypatch.delitem(sys.modules, "task_engine.airflow", raising=False)

    with pytest.raises(MissingExtraError) as caught:
        importlib.import_module("task_engine.airflow")

    assert str(caught.value) == (
        "task_engine.airflow needs the 'apache-airflow' package, which is not installed; "
        "install it with: pip install 'task-engine[airflow]'"
    )
    assert caught.value.extra == "airflow"


def test_the_adapters_package_and_provider_metadata_import_without_airflow() -> None:
    code = (
        "import sys, task_engine, task_engine._provider\n"
        "info = task_engine._provider.get_provider_info()\n"
        "print(info['package-name'], 'airflow' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.split() == ["task-engine", "False"]
