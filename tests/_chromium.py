"""Headless Chromium for tests: dump a page's DOM, collect its console messages, take screenshots."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
MERMAID_JS = ROOT / "tests" / "js" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
_CONSOLE = re.compile(r":CONSOLE[:(]")


def chromium() -> str:
    """The chromium executable; a test fails (not skips) without it: tests/run_all.sh installs it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed; run tests/run_all.sh (apt-get install -y chromium)")
    return found


@dataclass
class PageLoad:
    """What Chromium made of a page: the serialized DOM and every console message."""

    dom: str
    console: list[str]


def _base_args(profile: Path) -> list[str]:
    return [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
    ]


def load(page: Path, profile: Path, budget_ms: int | None = None) -> PageLoad:
    """Open `page` and return its DOM after scripts ran (for `budget_ms` of virtual time) and its console."""
    args = _base_args(profile)
    if budget_ms:
        args.append(f"--virtual-time-budget={budget_ms}")
    done = subprocess.run(
        [*args, "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(profile)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return PageLoad(done.stdout, [line for line in done.stderr.splitlines() if _CONSOLE.search(line)])


def screenshot(page: Path, profile: Path, name: str, size: str = "1280,1000") -> Path:
    """Write a PNG of `page` to test-artifacts/`name` and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    target.unlink(missing_ok=True)
    done = subprocess.run(
        [*_base_args(profile), f"--window-size={size}", f"--screenshot={target}", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(profile)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return target
