"""The README's module map is the one `scripts/module_map.py` prints from the modules' docstrings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_module_map_lists_every_module_with_its_docstring() -> None:
    spec = importlib.util.spec_from_file_location("module_map", ROOT / "scripts" / "module_map.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("<!-- module-map:start -->\n", 1)[1].split("<!-- module-map:end -->", 1)[0]
    assert shown.splitlines() == module.module_map(), "run: python scripts/module_map.py, paste it into the README"
