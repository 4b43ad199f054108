"""dags/task_engine_dags.py: one DAG per configured pipeline, parsed without running task code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from airflow_harness import REPO_ROOT, load_dag_bag, run_dag_test

ENTRY_FILE = REPO_ROOT / "dags" / "task_engine_dags.py"
ERRORS_FILE = REPO_ROOT / "dags" / "task_engine_import_errors.py"

# Two pipelines that both have a task called "Report"; Report.__init__ proves no task is
# created while Airflow parses the folder, and perform_task records that it ran.
FIRST_PIPELINE = """
from pathlib import Path
from task_engine_core import Task, register


@register
class Extract(Task):
    def perform_task(self):
        Path(__file__).with_name("ran-first").write_text("yes")


@register(depends_on=Extract)
class Report(Task):
    def __init__(self):
        Path(__file__).with_name("created-first-report").write_text("yes")

    def perform_task(self):
        pass
"""
SECOND_PIPELINE = """
from task_engine_core import register


@register
def Report():
    pass
"""


@pytest.fixture()
def copied_entry(tmp_path: Path) -> Path:
    """The entry file copied into a fresh folder, as a user would copy it into their dags folder."""
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(ENTRY_FILE, folder)
    shutil.copy(ERRORS_FILE, folder)
    (tmp_path / "first_pipeline.py").write_text(FIRST_PIPELINE)
    (tmp_path / "second_pipeline.py").write_text(SECOND_PIPELINE)
    return folder


def dag_shapes(bag) -> dict[str, dict[str, set[str]]]:
    return {
        dag_id: {task.task_id: set(task.upstream_task_ids) for task in dag.tasks} for dag_id, dag in bag.dags.items()
    }


def test_project_dags_folder_shows_the_examples_without_import_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASK_ENGINE_PIPELINES", raising=False)
    bag = load_dag_bag(REPO_ROOT / "dags")
    assert bag.import_errors == {}
    assert dag_shapes(bag) == {
        "tasks": {"BaseTask": set(), "Task1": {"BaseTask"}, "AlwaysFailsTask": {"Task1"}, "Task2": {"AlwaysFailsTask"}},
        "jobs": {
            "Job2Task1": set(),
            "Job2Task2": {"Job2Task1"},
            "Job1Task1": {"Job2Task2"},
            "Job1Task2": {"Job1Task1"},
        },
    }


def test_pipelines_from_the_environment_each_get_their_own_registry(
    copied_entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copied_entry.parent
    monkeypatch.setenv("TASK_ENGINE_PIPELINES", f"{root / 'first_pipeline.py'}, {root / 'second_pipeline.py'}")
    bag = load_dag_bag(copied_entry)
    assert bag.import_errors == {}
    assert dag_shapes(bag) == {
        "first_pipeline": {"Extract": set(), "Report": {"Extract"}},
        "second_pipeline": {"Report": set()},
    }
    assert sorted(path.name for path in root.iterdir()) == ["dags", "first_pipeline.py", "second_pipeline.py"]


def test_pipelines_from_the_config_file_resolve_relative_to_it(
    copied_entry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASK_ENGINE_PIPELINES", raising=False)
    (copied_entry / "task_engine_pipelines.txt").write_text("# pipelines\n../second_pipeline.py  # only this one\n\n")
    bag = load_dag_bag(copied_entry)
    assert bag.import_errors == {}
    assert dag_shapes(bag) == {"second_pipeline": {"Report": set()}}


def test_a_broken_target_is_an_import_error_naming_it(copied_entry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASK_ENGINE_PIPELINES", str(copied_entry.parent / "missing.py"))
    bag = load_dag_bag(copied_entry)
    [error] = bag.import_errors.values()
    assert "no such file or folder" in error and "missing.py" in error


def test_a_dag_from_the_folder_runs_its_tasks(dags_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = dags_folder.parent
    (root / "first_pipeline.py").write_text(FIRST_PIPELINE)
    shutil.copy(ENTRY_FILE, dags_folder)
    monkeypatch.setenv("TASK_ENGINE_PIPELINES", str(root / "first_pipeline.py"))
    bag = load_dag_bag(dags_folder)

    assert run_dag_test(bag.dags["first_pipeline"]) == {"Extract": ("success", 1), "Report": ("success", 1)}
    assert (root / "ran-first").read_text() == "yes"
    assert (root / "created-first-report").read_text() == "yes"


def test_the_jobs_example_runs_on_airflow_as_standalone(dags_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(ENTRY_FILE, dags_folder)
    monkeypatch.setenv("TASK_ENGINE_PIPELINES", str(REPO_ROOT / "examples" / "jobs"))
    bag = load_dag_bag(dags_folder)

    assert run_dag_test(bag.dags["jobs"]) == {
        name: ("success", 1) for name in ("Job2Task1", "Job2Task2", "Job1Task1", "Job1Task2")
    }
