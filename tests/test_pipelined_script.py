"""The ack path's pipelined script calls against a real Redis: order, errors, reconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from bot.redis_conn import close, connect
from bot.store.batching import PipelinedScript, pack
from tests.servers import RedisServer, missing, redis_binary

ECHO = "return ARGV[1]"
FAIL_ON_BOOM = "if ARGV[1] == 'boom' then return redis.error_reply('BOOM') end return ARGV[1]"


def test_pack_is_resp() -> None:
    assert pack(b"SET", "k", 12) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"


async def test_many_concurrent_calls_get_their_own_replies(redis_url: str) -> None:
    client = connect(redis_url)
    script = PipelinedScript(client, ECHO)
    try:
        replies = await asyncio.gather(*(script([], [f"v{i}"]) for i in range(500)))
        assert replies == [f"v{i}".encode() for i in range(500)]
    finally:
        await script.close()
        await close(client)


async def test_an_error_reply_fails_only_its_caller(redis_url: str) -> None:
    client = connect(redis_url)
    script = PipelinedScript(client, FAIL_ON_BOOM)
    try:
        results = await asyncio.gather(
            script([], ["a"]), script([], ["boom"]), script([], ["c"]), return_exceptions=True
        )
        assert results[0] == b"a" and results[2] == b"c"
        assert isinstance(results[1], ResponseError) and "BOOM" in str(results[1])
    finally:
        await script.close()
        await close(client)


async def test_the_script_is_loaded_again_after_a_flush(redis_url: str) -> None:
    client = connect(redis_url)
    script = PipelinedScript(client, ECHO)
    try:
        assert await script([], ["x"]) == b"x"
        await client.script_flush()
        assert await script([], ["y"]) == b"y"
    finally:
        await script.close()
        await close(client)


async def test_a_restarted_redis_fails_the_call_then_works_again(tmp_path: Path) -> None:
    binary = redis_binary()
    if binary is None:
        missing("no redis-server binary")
    assert binary is not None
    server = RedisServer(binary, tmp_path)
    server.start()
    client = connect(server.url)
    script = PipelinedScript(client, ECHO)
    try:
        assert await script([], ["before"]) == b"before"
        server.stop()
        with pytest.raises(Exception):  # noqa: B017 - connection errors vary by moment
            await script([], ["during"])
        server.start()  # the same port
        assert await script([], ["after"]) == b"after"
    finally:
        await script.close()
        await close(client)
        server.stop()
