"""Loading pipelines from module names, .py files and package folders."""

from __future__ import annotations

import textwrap

import pytest

from task_engine_core._loader import load_pipeline
from task_engine_core.errors import TargetError


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_module_target_gets_a_fresh_pipeline_each_time():
    first, second = load_pipeline("examples.jobs"), load_pipeline("examples.jobs")
    assert first.task_names == second.task_names == ["Job2Task1", "Job2Task2", "Job1Task1", "Job1Task2"]
    assert first is not second and first.name == "examples.jobs"


def test_file_target(tmp_path):
    file = write(
        tmp_path / "my_pipe.py",
        """
        from task_engine_core import register

        @register
        def hello():
            print("hi")
    """,
    )
    pipeline = load_pipeline(str(file))
    assert pipeline.name == "my_pipe" and pipeline.task_names == ["hello"]


def test_package_folder_imports_its_submodules(tmp_path):
    package = tmp_path / "pkg_tasks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(
        package / "a.py",
        """
        from task_engine_core import register

        @register
        def a():
            pass
    """,
    )
    write(
        package / "b.py",
        """
        from task_engine_core import register

        @register(depends_on="a")
        def b():
            pass
    """,
    )
    pipeline = load_pipeline(str(package))
    assert sorted(pipeline.task_names) == ["a", "b"]


def test_module_with_its_own_pipeline_object(tmp_path):
    file = write(
        tmp_path / "own_pipe.py",
        """
        from task_engine_core import Pipeline

        pipeline = Pipeline("mine")

        @pipeline.register
        def only():
            pass
    """,
    )
    assert load_pipeline(str(file)).name == "mine"


def test_missing_module():
    with pytest.raises(TargetError) as info:
        load_pipeline("no_such_module_here")
    assert str(info.value) == (
        "no module named 'no_such_module_here' (target 'no_such_module_here'); check the spelling, "
        "run from the project folder, or pass the path of a .py file"
    )


def test_missing_file(tmp_path):
    with pytest.raises(
        TargetError,
        match=r"^no such file or folder: '.*nothing\.py'; pass a module name, a \.py file or a package folder$",
    ):
        load_pipeline(str(tmp_path / "nothing.py"))


def test_syntax_error_points_at_file_and_line(tmp_path):
    file = write(tmp_path / "broken_syntax.py", "x = 1\ndef oops(:\n")
    with pytest.raises(TargetError) as info:
        load_pipeline(str(file))
    assert str(info.value) == f"cannot load {str(file)!r}: syntax error in {file}, line 2: invalid syntax"


def test_import_error_inside_the_module_points_at_its_line(tmp_path):
    file = write(tmp_path / "bad_import.py", "import os\nimport not_a_real_dependency_xyz\n")
    with pytest.raises(TargetError) as info:
        load_pipeline(str(file))
    assert str(info.value) == (
        f"cannot load {str(file)!r}: ModuleNotFoundError: No module named 'not_a_real_dependency_xyz' at {file}, line 2"
    )


def test_folder_without_init(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(TargetError, match=r"is not a package \(it has no __init__\.py\)$"):
        load_pipeline(str(tmp_path / "plain"))


def test_module_attribute_target():
    pipeline = load_pipeline("tests.conformance.scenarios.diamond:pipeline")
    assert pipeline.name == "diamond" and pipeline.task_names == ["top", "left", "right", "bottom"]


def test_missing_attribute_names_the_pipelines_there():
    with pytest.raises(TargetError) as info:
        load_pipeline("tests.conformance.scenarios.diamond:pipe")
    assert str(info.value) == (
        "'tests.conformance.scenarios.diamond' has no attribute 'pipe' "
        "(target 'tests.conformance.scenarios.diamond:pipe'); pipelines there: pipeline"
    )


def test_attribute_that_is_not_a_pipeline():
    with pytest.raises(TargetError) as info:
        load_pipeline("tests.conformance.scenarios.diamond:EXPECTED")
    assert str(info.value) == (
        "'tests.conformance.scenarios.diamond:EXPECTED' is a dict, not a Pipeline; point at a Pipeline object or at the module"
    )
