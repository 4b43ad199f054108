"""Print the module map: one line per module of the core and the adapters, its one job (its docstring's first line).

The README's "Where things are" section is this output; tests/test_module_map.py keeps the two equal.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("task_engine_core", "adapters", "dags", "flows")


def module_map() -> list[str]:
    """`- `path` — first docstring line` for every Python module of the packages, in path order."""
    lines = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            doc = (ast.get_docstring(tree) or "").strip().splitlines()
            lines.append(f"- `{path.relative_to(ROOT).as_posix()}`: {doc[0] if doc else '(no docstring)'}")
    return lines


if __name__ == "__main__":
    sys.stdout.write("\n".join(module_map()) + "\n")
