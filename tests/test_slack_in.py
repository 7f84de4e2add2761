"""Slack toward the bot: signed requests in, acks and recorded Web API traffic out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import redis.asyncio

from tests.harness import BotUnderTest, running_bot
from tests.servers import own_redis
from tests.waiting import eventually


def ephemeral_texts(bot: BotUnderTest, user: str = "U0ALICE") -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


async def test_ops_help_is_acked_then_answered_by_a_job(redis_url: str) -> None:
    async with running_bot(redis_url) as bot:
        resp = await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        assert resp.status == 200
        assert resp.body == ""  # the answer comes from the job, not the ack
        texts = await eventually(lambda: ephemeral_texts(bot), what="help reply")
        assert "/ops status" in texts[0] and "/ops audit" in texts[0]
        calls = [c for c in bot.emulator.calls if c.method == "response_url"]
        assert len(calls) == 1 and calls[0].ok


async def test_commands_answered_without_bolt_and_by_bolt_look_alike(redis_url: str) -> None:
    # A command whose work is all in its job is stored and acked at the boundary, without Bolt;
    # bad input goes to Bolt's listener, which answers it in the ack and stores nothing.
    async with running_bot(redis_url, worker=False) as bot:
        answers = [
            await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
            for _ in range(3)
        ]
        assert [(a.status, a.body) for a in answers] == [(200, "")] * 3
        assert await bot.deps.store.queue_depth() == 3
        bad = await bot.driver.command("/ops", "audit lots", user="U0ALICE", channel="C0GENERAL")
        assert bad.status == 200 and "/ops audit" in bad.json["text"]
        assert await bot.deps.store.queue_depth() == 3


async def test_bad_signature_stale_timestamp_and_missing_headers_get_401(redis_url: str) -> None:
    async with running_bot(redis_url, worker=False) as bot:
        # One good command first, stored at the boundary: a refused request must store
        # nothing more.
        resp = await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        assert resp.status == 200 and await bot.deps.store.queue_depth() == 1
        body = urlencode({"command": "/ops", "text": "help", "user_id": "U0ALICE"}).encode()
        now = int(time.time())
        good = bot.driver.sign(body, now)
        bad = dict(good, **{"X-Slack-Signature": "v0=" + "0" * 64})
        stale_ts = now - 600
        stale = bot.driver.sign(body, stale_ts)
        not_a_time = dict(good, **{"X-Slack-Request-Timestamp": "yesterday"})
        not_ascii = dict(good, **{"X-Slack-Signature": "v0=" + "é" * 64})
        for headers in (bad, stale, not_a_time, not_ascii, {}):
            resp = await bot.driver.send_raw(body, headers=headers, sign=False)
            assert resp.status == 401, headers
        await asyncio.sleep(0.2)
        assert await bot.deps.store.queue_depth() == 1


async def test_without_a_signing_secret_every_http_request_gets_401(redis_url: str) -> None:
    # A Socket Mode deployment has no signing secret: its HTTP endpoint must not trust anything,
    # not even a request signed with an empty key.
    async with running_bot(redis_url, worker=False, SLACK_SIGNING_SECRET=None) as bot:
        body = urlencode({"command": "/ops", "text": "help", "user_id": "U0ALICE"}).encode()
        now = int(time.time())
        base = f"v0:{now}:".encode() + body
        empty_key = "v0=" + hmac.new(b"", base, hashlib.sha256).hexdigest()
        headers = {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": empty_key}
        for sent in (headers, bot.driver.sign(body, now), {}):
            resp = await bot.driver.send_raw(body, headers=sent, sign=False)
            assert resp.status == 401, sent
        assert await bot.deps.store.queue_depth() == 0


async def test_slacks_ssl_check_is_answered_and_stores_nothing(redis_url: str) -> None:
    # Slack sends this when a slash command's URL is saved; it must get an empty 200.
    async with running_bot(redis_url, worker=False) as bot:
        body = urlencode({"ssl_check": "1", "token": "verification-token"}).encode()
        resp = await bot.driver.send_raw(body, sign=True)
        assert (resp.status, resp.body) == (200, "")
        resp = await bot.driver.send_raw(body, sign=False)
        assert resp.status == 401
        assert await bot.deps.store.queue_depth() == 0


async def test_a_retried_command_acts_once(redis_url: str) -> None:
    async with running_bot(redis_url) as bot:
        first = await bot.driver.command("/ops", "audit", user="U0ALICE", channel="C0GENERAL")
        again = await bot.driver.retry(first, retry_num=1)
        third = await bot.driver.retry(first, retry_num=2)
        assert (first.status, again.status, third.status) == (200, 200, 200)
        await eventually(lambda: ephemeral_texts(bot), what="audit reply")
        await asyncio.sleep(0.5)  # give a duplicate job every chance to show up
        assert len(ephemeral_texts(bot)) == 1


async def test_a_second_delivery_of_the_same_click_acts_once(redis_url: str) -> None:
    async with running_bot(redis_url) as bot:
        await bot.driver.command("/ops", "status", user="U0ALICE", channel="C0GENERAL")
        await eventually(lambda: ephemeral_texts(bot), what="status reply")
        click = await bot.driver.click("Refresh", user="U0ALICE", channel="C0GENERAL")
        assert click.status == 200
        replay = await bot.driver.retry(click, retry_num=1)
        assert replay.status == 200
        await asyncio.sleep(0.8)
        refreshes = [
            c
            for c in bot.emulator.calls
            if c.method == "response_url" and c.args.get("replace_original") in (True, "true")
        ]
        assert len(refreshes) == 1
        # Two real clicks are two actions: both act.
        await bot.driver.click("Refresh", user="U0ALICE", channel="C0GENERAL")
        await eventually(
            lambda: len([c for c in bot.emulator.calls if c.method == "response_url"]) == 3,
            what="second refresh",
        )


async def test_usage_errors_are_answered_in_the_ack_and_store_nothing(redis_url: str) -> None:
    async with running_bot(redis_url, worker=False) as bot:
        resp = await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        assert resp.status == 200 and await bot.deps.store.queue_depth() == 1
        resp = await bot.driver.command("/ops", "audit lots", user="U0ALICE", channel="C0GENERAL")
        assert resp.status == 200
        assert resp.json is not None and resp.json["response_type"] == "ephemeral"
        assert "`lots` is not a number of entries from 1 to 100" in resp.json["text"]
        assert "/ops audit [n]" in resp.json["text"]
        resp = await bot.driver.command("/ops", "frobnicate", user="U0ALICE", channel="C0GENERAL")
        assert "`frobnicate` is not an /ops command" in resp.json["text"]
        assert await bot.deps.store.queue_depth() == 1


async def test_malformed_bodies_get_4xx_and_store_nothing(redis_url: str) -> None:
    async with running_bot(redis_url, worker=False) as bot:
        cases = [
            (b"\xff\xfe not utf-8", "application/x-www-form-urlencoded"),
            (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
            (urlencode({"payload": "[1, 2]"}).encode(), "application/x-www-form-urlencoded"),
            (b"{not json", "application/json"),
            (b"[1, 2, 3]", "application/json"),
        ]
        for body, content_type in cases:
            resp = await bot.driver.send_raw(body, content_type=content_type, sign=True)
            assert 400 <= resp.status < 500, (body, resp.status, resp.body)
            assert "Traceback" not in resp.body
        big = b"text=" + b"a" * (1024 * 1024 + 10)
        resp = await bot.driver.send_raw(big, sign=True)
        assert resp.status == 413
        async with aiohttp.ClientSession() as http, http.get(bot.base_url + "/metrics") as r:
            metrics = await r.text()
        assert 'opsloop_http_requests_total{route="/slack/events",status="400"} 5.0' in metrics
        assert 'opsloop_http_requests_total{route="/slack/events",status="413"} 1.0' in metrics
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            assert [k async for k in client.scan_iter("opsloop:*")] == []
            assert [k async for k in client.scan_iter("arq:*")] == []
        finally:
            await client.aclose()


async def test_audit_lists_recorded_decisions(redis_url: str) -> None:
    async with running_bot(redis_url) as bot:
        await bot.deps.store.audit("U0BOB", "deploy.approved", "web 1.4.2", {"step": 1})
        await bot.driver.command("/ops", "audit 5", user="U0ALICE", channel="C0GENERAL")
        texts = await eventually(lambda: ephemeral_texts(bot), what="audit reply")
        assert "deploy.approved" in texts[0] and "<@U0BOB>" in texts[0]


async def test_health_ready_and_metrics(redis_url: str) -> None:
    import aiohttp

    async with running_bot(redis_url) as bot, aiohttp.ClientSession() as http:
        await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        async with http.get(bot.base_url + "/healthz") as r:
            assert r.status == 200
        async with http.get(bot.base_url + "/readyz") as r:
            assert r.status == 200
        async with http.get(bot.base_url + "/metrics") as r:
            text = await r.text()
            assert r.status == 200
        assert 'opsloop_slack_ack_seconds_count{kind="command"} 1.0' in text
        assert 'opsloop_http_requests_total{route="/slack/events",status="200"}' in text
        assert "opsloop_jobs_queued" in text


async def test_readyz_is_503_when_redis_does_not_answer(redis_url: str) -> None:
    import aiohttp

    from tests.servers import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with running_bot(dead, worker=False) as bot, aiohttp.ClientSession() as http:
        async with http.get(bot.base_url + "/readyz") as r:
            assert r.status == 503
        resp = await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        # Acknowledged with a clear message instead of pretending the work was stored.
        assert resp.status == 200 and resp.json is not None
        assert "could not store this request" in resp.json["text"]


async def test_a_paused_redis_gets_a_clear_ack_in_time_and_the_request_is_not_lost(
    tmp_path: Path,
) -> None:
    async with own_redis(tmp_path) as server, running_bot(server.url) as bot:
        assert server.process is not None
        await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        await eventually(lambda: ephemeral_texts(bot), what="first help reply")
        # A Redis that hangs rather than refuses: the connection stays open, nothing answers.
        server.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        resp = await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
        took = time.monotonic() - started
        server.process.send_signal(signal.SIGCONT)
        assert resp.status == 200 and resp.json is not None
        assert "did not confirm storing this request" in resp.json["text"]
        assert took < 3.0, f"the ack took {took:.1f} s, past Slack's 3 s"
        # The command was in Redis's socket buffer: once Redis runs again it is stored and
        # answered, as the message promised.
        await eventually(
            lambda: [t for t in ephemeral_texts(bot) if "/ops audit" in t][1:],
            what="second help reply",
        )
