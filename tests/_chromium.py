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


def screenshot_url(
    url: str, target: Path, *, local_storage: dict[str, str] | None = None, settle_s: float = 8.0
) -> Path:
    """A PNG of a live page (a real server's UI on 127.0.0.1), optionally after setting its origin's localStorage.

    Driven over the DevTools protocol (needs the `websockets` package, which Airflow and Prefect
    install), because a UI's view choice (Airflow's grid or graph) lives in localStorage, which
    `--screenshot` cannot set.
    """
    import base64
    import json
    import tempfile
    import time
    import urllib.request

    from websockets.sync.client import connect

    target.parent.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    port_file = profile / "DevToolsActivePort"
    browser = subprocess.Popen(
        [*_base_args(profile), "--remote-debugging-port=0", "--window-size=1600,1000", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(profile)},
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(p for p in json.load(response) if p["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            counter = iter(range(1, 1_000_000))

            def call(method: str, **params: object) -> dict[str, object]:
                ident = next(counter)
                socket.send(json.dumps({"id": ident, "method": method, "params": params}))
                while True:
                    message = json.loads(socket.recv(timeout=60))
                    if message.get("id") == ident:
                        return dict(message.get("result", {}))

            call("Page.enable")
            call("Page.navigate", url=url)
            time.sleep(settle_s / 2)
            if local_storage:
                for key, value in local_storage.items():
                    call("Runtime.evaluate", expression=f"localStorage.setItem({json.dumps(key)}, {json.dumps(value)})")
                call("Page.reload")
            time.sleep(settle_s)
            shot = call("Page.captureScreenshot", format="png")
            target.write_bytes(base64.b64decode(str(shot["data"])))
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
    return target
