"""The README's capability matrix is the one scripts/capability_matrix.py generates from the conformance suite."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def matrix_script():
    spec = importlib.util.spec_from_file_location("capability_matrix", ROOT / "scripts" / "capability_matrix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_copy_is_the_generated_matrix():
    script = matrix_script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # Stale when a scenario, its FEATURES / DIFFERENCES, or a check rule changed since the last
    # `python scripts/capability_matrix.py`.
    assert script.with_matrix(readme) == readme, (
        "README.md's capability matrix is stale: run python scripts/capability_matrix.py"
    )


def test_cells_name_the_proving_scenario_or_the_difference():
    script = matrix_script()
    assert script.cell(["diamond", "seed_jobs"], []) == "✓ `diamond`"
    assert script.cell(["resource_wait"], ["the timeout restarts"]) == "~ the timeout restarts (`resource_wait`)"
    assert script.cell([], ["a difference", "another"]) == "~ a difference; another"
    assert script.cell([], []) == "✗"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in script.render().splitlines() if line.startswith("| ")}
    # fail_fast_independent_branch does not run on threads: its difference is declared there instead.
    assert "~ an independent task already running when a task fails runs to its end" in rows["fail-fast"]
    assert (
        rows["resource waits (`wait_for_resource`)"]
        .split(" | ")[3]
        .startswith("~ each pause between polls is a reschedule")
    )


def test_check_mode_fails_on_a_stale_copy_and_writes_nothing(tmp_path):
    script = matrix_script()
    stale = (ROOT / "README.md").read_text(encoding="utf-8").replace("✓ `diamond`", "✗", 1)
    assert script.with_matrix(stale) != stale
    copy = tmp_path / "README.md"
    copy.write_text(stale, encoding="utf-8")
    script.README = copy
    assert script.main(["--check"]) == 1
    assert copy.read_text(encoding="utf-8") == stale
    assert script.main([]) == 0
    assert script.main(["--check"]) == 0


def test_the_script_runs_from_any_directory(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "capability_matrix.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr) == (0, "")
