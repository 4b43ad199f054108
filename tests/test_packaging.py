"""The wheel built from this checkout installs only this project's own top-level import names."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The project's import names: the core, and the adapters/ folder installed as `task_engine` (the
#: distribution's own name, which Airflow also imports for the provider `task-engine`).
OWN_NAMES = {"task_engine", "task_engine_core"}

#: What a build must never read: local state, environments and earlier build output.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venvs",
    ".venv",
    ".task_engine",
    "node_modules",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "test-artifacts",
    ".pytest_cache",
    ".hypothesis",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel` builds offline from a copy of this checkout (the copy keeps build/ out of the tree)."""
    source = tmp_path_factory.mktemp("checkout") / "task-engine"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES, symlinks=True)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = out.glob("task_engine-*.whl")
    return path


def top_level_names(wheel: Path) -> set[str]:
    """The names `import` can find at the top of an installed wheel: packages and modules."""
    names = set()
    for member in zipfile.ZipFile(wheel).namelist():
        first = member.split("/")[0]
        if first.endswith((".dist-info", ".data")):
            continue
        names.add(first.removesuffix(".py") if "/" not in member else first)
    return names


def wheel_text(wheel: Path, suffix: str) -> str:
    archive = zipfile.ZipFile(wheel)
    [member] = [name for name in archive.namelist() if name.endswith(suffix)]
    return archive.read(member).decode()


def test_the_wheel_installs_only_this_projects_import_names(wheel: Path) -> None:
    assert top_level_names(wheel) == OWN_NAMES
    # `adapters` is AdapterHub's distribution's import name: installing both would overwrite files.
    assert "adapters" not in top_level_names(wheel)
    members = zipfile.ZipFile(wheel).namelist()
    assert {
        "task_engine/airflow.py",
        "task_engine/prefect.py",
        "task_engine/_provider.py",
        "task_engine/py.typed",
    } <= set(members)


def test_the_airflow_provider_entry_point_names_a_module_of_the_wheel(wheel: Path) -> None:
    entry_points = wheel_text(wheel, ".dist-info/entry_points.txt")
    assert "[apache_airflow_provider]\nprovider_info = task_engine._provider:get_provider_info\n" in entry_points


def test_the_installed_wheel_imports_by_the_readme_names_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]\n"
        "import task_engine, task_engine._provider, task_engine_core\n"
        "print(task_engine.__file__.startswith(sys.argv[1]), task_engine._provider.get_provider_info()['package-name'])\n"
        "try:\n    import adapters\nexcept ModuleNotFoundError:\n    print('no adapters')\n"
    )
    # -I -S (no site-packages, no environment) in a neutral directory: only the installed copy can
    # answer, not the checkout or an editable install of it; the core needs the standard library only.
    shown = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(site)], cwd=tmp_path, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("\n")[:2] == ["True task-engine", "no adapters"]


def test_in_the_checkout_the_folder_name_adapters_is_not_a_second_import_name() -> None:
    shown = subprocess.run([sys.executable, "-c", "import adapters.airflow"], cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 1
    assert shown.stderr.strip().splitlines()[-1] == (
        "ImportError: the Task Engine adapters are imported as 'task_engine', not 'adapters': "
        "write 'from task_engine.airflow import to_airflow_dag' (or task_engine.prefect)"
    )
