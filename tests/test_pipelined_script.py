"""The ack path's pipelined script calls against a real Redis: order, errors, reconnects."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.redis_conn import close, connect
from bot.store.batching import ANSWER_WITHIN, PipelinedScript, Unconfirmed, pack
from tests.servers import own_redis
from tests.waiting import eventually

ECHO = "return ARGV[1]"
SET_AND_ECHO = "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]"
FAIL_ON_BOOM = "if ARGV[1] == 'boom' then return redis.error_reply('BOOM') end return ARGV[1]"


@asynccontextmanager
async def pipelined(url: str, source: str) -> AsyncIterator[tuple[PipelinedScript, Redis]]:
    client = connect(url)
    script = PipelinedScript(client, source)
    try:
        yield script, client
    finally:
        await script.close()
        await close(client)


def test_pack_is_resp() -> None:
    assert pack(b"SET", "k", 12) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"


async def test_many_concurrent_calls_get_their_own_replies(redis_url: str) -> None:
    async with pipelined(redis_url, ECHO) as (script, _):
        replies = await asyncio.gather(*(script([], [f"v{i}"]) for i in range(500)))
        assert replies == [f"v{i}".encode() for i in range(500)]


async def test_an_error_reply_fails_only_its_caller(redis_url: str) -> None:
    async with pipelined(redis_url, FAIL_ON_BOOM) as (script, _):
        results = await asyncio.gather(
            script([], ["a"]), script([], ["boom"]), script([], ["c"]), return_exceptions=True
        )
        assert results[0] == b"a" and results[2] == b"c"
        assert isinstance(results[1], ResponseError) and "BOOM" in str(results[1])


async def test_send_goes_out_before_anyone_waits_for_the_reply(redis_url: str) -> None:
    async with pipelined(redis_url, SET_AND_ECHO) as (script, client):
        assert script.send(["k0"], ["v0"]) is None  # no connection yet: the awaited call opens it
        assert await script(["k0"], ["v0"]) == b"v0"
        sent = script.send(["k1"], ["v1"])
        assert sent is not None
        # Stored by Redis while this caller has not yet waited for the answer. Polled: the read
        # goes over another connection, and Redis need not serve two connections in the order
        # their commands were written.
        assert await eventually(lambda: client.get("k1"), within=2.0, what="k1 stored") == b"v1"
        assert await sent.reply() == b"v1"
        await client.script_flush()  # a sent call whose script Redis forgot still gets through
        sent = script.send(["k2"], ["v2"])
        assert sent is not None and await sent.reply() == b"v2"
        assert await client.get("k2") == b"v2"


async def test_the_script_is_loaded_again_after_a_flush(redis_url: str) -> None:
    async with pipelined(redis_url, ECHO) as (script, client):
        assert await script([], ["x"]) == b"x"
        await client.script_flush()
        assert await script([], ["y"]) == b"y"


async def test_a_cancelled_caller_does_not_shift_the_replies_of_the_others(redis_url: str) -> None:
    async with pipelined(redis_url, ECHO) as (script, _):
        first = asyncio.ensure_future(script([], ["first"]))
        second = asyncio.ensure_future(script([], ["second"]))
        await asyncio.sleep(0)  # both commands are on their way
        first.cancel()
        assert await second == b"second"
        assert await script([], ["third"]) == b"third"


async def test_calls_spread_over_many_loop_turns_keep_their_order(redis_url: str) -> None:
    async with pipelined(redis_url, ECHO) as (script, _):

        async def caller(n: int) -> list[bytes]:
            got = []
            for i in range(50):
                got.append(await script([], [f"{n}-{i}"]))
                if i % 7 == n % 7:
                    await asyncio.sleep(0)
            return got

        results = await asyncio.gather(*(caller(n) for n in range(20)))
        for n, got in enumerate(results):
            assert got == [f"{n}-{i}".encode() for i in range(50)]


async def test_a_restarted_redis_fails_the_call_then_works_again(tmp_path: Path) -> None:
    async with own_redis(tmp_path) as server, pipelined(server.url, ECHO) as (script, _):
        assert await script([], ["before"]) == b"before"
        server.stop()
        with pytest.raises(Exception):  # noqa: B017 - connection errors vary by moment
            await script([], ["during"])
        server.start()  # the same port
        assert await script([], ["after"]) == b"after"


async def test_a_paused_redis_fails_the_callers_in_time_then_works_again(tmp_path: Path) -> None:
    async with own_redis(tmp_path) as server, pipelined(server.url, ECHO) as (script, _):
        assert server.process is not None
        assert await script([], ["before"]) == b"before"
        server.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        results = await asyncio.gather(
            *(script([], [f"v{i}"]) for i in range(5)), return_exceptions=True
        )
        took = time.monotonic() - started
        server.process.send_signal(signal.SIGCONT)
        assert all(isinstance(r, Unconfirmed) for r in results), results
        assert ANSWER_WITHIN <= took < 3.0, took  # not too early, and within Slack's 3 s
        # A fresh connection once Redis answers again.
        assert await script([], ["after"]) == b"after"


async def test_a_script_reload_that_redis_stops_answering_fails_in_time(tmp_path: Path) -> None:
    async with own_redis(tmp_path) as server, pipelined(server.url, ECHO) as (script, client):
        assert server.process is not None
        assert await script([], ["before"]) == b"before"
        await client.script_flush()
        sent = script.send([], ["x"])
        assert sent is not None
        # Redis answers NOSCRIPT, then stops before the script can be loaded again.
        while (await client.info("errorstats")).get("errorstat_NOSCRIPT", {}).get("count", 0) < 1:
            await asyncio.sleep(0.005)
        server.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        try:
            with pytest.raises(Unconfirmed):
                await sent.reply()
            took = time.monotonic() - started
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert took < 3.0, took  # within Slack's 3 s, not until TCP gives up
        assert await script([], ["after"]) == b"after"
