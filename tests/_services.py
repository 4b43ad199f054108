"""Real servers for tests and benchmarks: redis-server and PostgreSQL, on 127.0.0.1, started and stopped here.

Both come from Debian's packages (tests/run_all.sh installs them); a test that needs one skips,
with this module's message, only where the binary is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import closing
from pathlib import Path

POSTGRES_BIN = Path(os.environ.get("TASK_ENGINE_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening on 127.0.0.1:{port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:g} s")


class RedisServer:
    """A throw-away redis-server on 127.0.0.1 (no persistence); `stop()` and `start()` keep the port."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.directory = Path(directory or tempfile.mkdtemp(prefix="task-engine-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:PORT/0`."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it accepts connections."""
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, "redis-server")
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class PostgresServer:
    """A throw-away PostgreSQL cluster (initdb in a temporary folder) on 127.0.0.1, trust auth."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="task-engine-postgres-"))
        self.process: subprocess.Popen | None = None
        # PostgreSQL refuses to run as root: run it as the `postgres` user the package created.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @staticmethod
    def available() -> bool:
        """Whether initdb and postgres are installed."""
        return (POSTGRES_BIN / "initdb").exists() and (POSTGRES_BIN / "postgres").exists()

    def url(self, database: str = "postgres") -> str:
        """`postgresql://postgres@127.0.0.1:PORT/DATABASE`."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """initdb (once), start postgres and wait until it accepts connections."""
        data = self.directory / "data"
        if self._as:
            shutil.chown(self.directory, "postgres", "postgres")
        if not data.exists():
            subprocess.run(
                [
                    *self._as,
                    str(POSTGRES_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
                check=True,
                capture_output=True,
            )
        self.process = subprocess.Popen(
            [
                *self._as,
                str(POSTGRES_BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.directory}",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, "postgres")
        # The port answers before the server accepts logins; wait for a real login.
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
            )
            if ready.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return self

    def create_database(self, name: str) -> str:
        """Create database `name` and return its URL."""
        subprocess.run(
            [str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (pg_ctl: runuser does not pass signals on), then SIGKILL; the data folder is removed."""
        if self.process is not None and self.process.poll() is None:
            subprocess.run(
                [
                    *self._as,
                    str(POSTGRES_BIN / "pg_ctl"),
                    "-D",
                    str(self.directory / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                timeout=60,
            )
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)
