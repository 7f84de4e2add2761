"""Slack's 429s under load: every replica honours Retry-After, and no edit is ever dropped.

Two bot replicas (each with its worker) share one real Redis and one emulated Slack. The
emulator opens 429 windows on a method (or a channel) and records every call that arrives before
a Retry-After deadline it announced: the count must be 0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs import JobContext, JobRegistry, WorkerRunner
from bot.runtime import build_registry
from bot.sandbox.emulators.slack import SlackEmulator
from tests.alert_payloads import TOKEN, alert, alert_config, notification
from tests.harness import BotUnderTest, running_bot, running_emulator
from tests.servers import free_port, own_redis
from tests.test_alerts_webhook import parents, post_hook, shown
from tests.waiting import eventually

# Under parallel load (pytest-xdist, 6 workers on two cores) calls reached the emulator 0.01 s
# before an announced deadline, and an in-flight call 0.86 s after another replica's 429: the
# margins here are tenths of a second. `make test` runs this module after the parallel pass.
pytestmark = pytest.mark.serial

INCIDENT = "C0INCIDENT"
# Slack said 25 s in the field; a few seconds show the same thing in a short test.
UPDATE_WINDOW = 5.0
POST_WINDOW = 3.0


def early(emu: SlackEmulator) -> list[str]:
    """The early calls, readable in an assertion message."""
    return [
        f"{c.method} {c.channel or ''} {c.early_by:.2f}s early, {c.since_429:.2f}s after"
        for c in emu.limits.early_calls
    ]


def texts(emu: SlackEmulator, channel: str) -> list[str]:
    return sorted(m.text for m in emu.messages(channel))


@asynccontextmanager
async def two_replicas(
    redis_url: str, emu: SlackEmulator, **overrides: Any
) -> AsyncIterator[tuple[BotUnderTest, BotUnderTest]]:
    """Two bot processes, each with its worker, on one Redis and one Slack."""
    overrides.setdefault("OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN", TOKEN)
    async with (
        running_bot(redis_url, emulator=emu, config=alert_config(), **overrides) as a,
        running_bot(redis_url, emulator=emu, config=alert_config(), **overrides) as b,
    ):
        yield a, b


def group(name: str, firing: int) -> dict[str, Any]:
    """A notification of alert group `name` with `firing` alerts firing."""
    return notification([alert(f"web-{i}", name=name) for i in range(firing)], name=name)


@pytest.mark.parametrize("window", [UPDATE_WINDOW])
async def test_edits_wait_out_a_429_window_on_every_replica(redis_url: str, window: float) -> None:
    names = [f"Alert{i}" for i in range(6)]
    async with (
        running_emulator(channel_rate_per_second=20.0, channel_burst=10) as emu,
        two_replicas(redis_url, emu, OPSLOOP_CHANNEL_RATE=10.0, OPSLOOP_CHANNEL_BURST=5) as (a, b),
    ):
        for name in names:
            assert (await post_hook(a, group(name, 1)))[0] == 202
        await eventually(lambda: len(parents(a, INCIDENT)) == 6, what="six alert messages")

        emu.limits.open_window("chat.update", window)
        started = time.monotonic()
        # Every group grows twice, through either replica: each message has two edits to make.
        for firing in (2, 3):
            for i, name in enumerate(names):
                assert (await post_hook((a, b)[i % 2], group(name, firing)))[0] == 202

        def all_show_three() -> bool:
            return all("3 firing" in shown(m) for m in parents(a, INCIDENT))

        await eventually(all_show_three, within=window + 10, what="every message's newest state")
        assert time.monotonic() - started >= window - 0.5
        assert len(parents(a, INCIDENT)) == 6, "edited in place, never reposted"
        refused = [c for c in emu.calls if c.method == "chat.update" and c.status == 429]
        assert refused, "the window should have refused the first edits"
        # Both edits of each message waited in one flush and went out once, as the newest.
        accepted = [c.args["ts"] for c in emu.calls if c.method == "chat.update" and c.ok]
        assert sorted(accepted) == sorted(m.ts for m in parents(a, INCIDENT))
        assert early(emu) == []


async def test_posts_wait_out_a_429_window_on_a_channel(redis_url: str) -> None:
    # Replica a posts from jobs (a long pause defers the job), replica b from the request path
    # (it waits); both into the channel Slack refuses for POST_WINDOW seconds.
    async def post(job: JobContext, payload: dict[str, Any]) -> None:
        await job.deps.slack.post_message("C0GENERAL", str(payload["text"]))

    async with (
        running_emulator(channel_rate_per_second=20.0, channel_burst=10) as emu,
        running_bot(redis_url, emulator=emu, worker=False, OPSLOOP_CHANNEL_RATE=5.0) as a,
        running_bot(redis_url, emulator=emu, worker=False, OPSLOOP_CHANNEL_RATE=5.0) as b,
    ):
        registry: JobRegistry = build_registry()
        registry.add("test.post", post)
        runners = [WorkerRunner(bot.deps, registry) for bot in (a, b)]
        emu.limits.open_window("chat.postMessage", POST_WINDOW, channel="C0GENERAL")
        for i in range(5):
            await a.deps.queue.enqueue("test.post", {"text": f"job-{i}"})
        for runner in runners:
            await runner.start()
        try:
            await asyncio.gather(
                *(b.deps.slack.post_message("C0GENERAL", f"direct-{i}") for i in range(5)),
                b.deps.slack.post_message("C0WEB", "another channel"),
            )
            await eventually(
                lambda: len(emu.messages("C0GENERAL")) >= 10, within=15, what="every post"
            )
            await asyncio.sleep(0.5)  # a duplicate would show up now
        finally:
            for runner in runners:
                await runner.stop()
        want = sorted([f"job-{i}" for i in range(5)] + [f"direct-{i}" for i in range(5)])
        assert texts(emu, "C0GENERAL") == want
        assert texts(emu, "C0WEB") == ["another channel"]
        assert [c for c in emu.calls if c.status == 429], "the window should have refused posts"
        assert early(emu) == []


async def test_a_slot_reserved_before_a_429_is_checked_again(redis_url: str) -> None:
    # Replica a reserves three slots a second apart (1 message/s, no burst). Then replica b's
    # post gets a 429 for the whole method: a's later slots must wait for its Retry-After.
    async with (
        running_emulator(channel_rate_per_second=None) as emu,
        running_bot(redis_url, emulator=emu, worker=False, OPSLOOP_CHANNEL_RATE=1.0,
                    OPSLOOP_CHANNEL_BURST=1) as a,
        running_bot(redis_url, emulator=emu, worker=False) as b,
    ):  # fmt: skip
        queued = [
            asyncio.create_task(a.deps.slack.post_message("C0GENERAL", f"slot-{i}"))
            for i in range(3)
        ]
        await eventually(lambda: texts(emu, "C0GENERAL") == ["slot-0"], what="the first slot")
        emu.limits.open_window("chat.postMessage", POST_WINDOW)
        await b.deps.slack.post_message("C0WEB", "refused first")
        await asyncio.gather(*queued)
        refusal = next(c for c in emu.calls if c.status == 429)
        later = [c for c in emu.calls if c.method == "chat.postMessage" and c.at > refusal.at]
        assert all(c.at >= refusal.at + POST_WINDOW - 0.1 for c in later), [
            (c.args.get("text"), round(c.at - refusal.at, 2)) for c in later
        ]
        assert texts(emu, "C0GENERAL") == ["slot-0", "slot-1", "slot-2"]
        assert texts(emu, "C0WEB") == ["refused first"]
        assert early(emu) == []


async def test_a_pending_edit_outlives_a_long_run_of_429s(redis_url: str) -> None:
    # Slack says "wait 1 s" again and again for 9 s: more refusals than a call retries. The
    # newest state stays pending and lands once Slack takes it.
    async with (
        running_emulator() as emu,
        running_bot(
            redis_url, emulator=emu, config=alert_config(),
            OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN,
        ) as bot,
    ):  # fmt: skip
        assert (await post_hook(bot, group("Long", 1)))[0] == 202
        [parent] = await eventually(lambda: parents(bot, INCIDENT), what="the alert message")
        emu.limits.open_window("chat.update", 9.0, retry_after=1)
        assert (await post_hook(bot, group("Long", 2)))[0] == 202
        await asyncio.sleep(8.0)
        assert "1 firing" in shown(parent), "Slack refused every edit so far"
        await eventually(lambda: "2 firing" in shown(parent), within=8, what="the edit")
        refused = [c for c in emu.calls if c.method == "chat.update" and c.status == 429]
        assert len(refused) >= 7, len(refused)
        assert early(emu) == []


async def test_an_edit_slack_refuses_for_good_is_dropped_with_one_line(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(redis_url) as bot:
        slack, emu = bot.deps.slack, bot.emulator
        gone = await slack.post_message("C0GENERAL", "deleted by someone")
        kept = await slack.post_message("C0GENERAL", "still here")
        emu.delete(emu.message("C0GENERAL", gone.ts))
        await slack.request_update("C0GENERAL", gone.ts, "never shown")
        await slack.request_update("C0GENERAL", kept.ts, "edited")
        await eventually(lambda: emu.message("C0GENERAL", kept.ts).text == "edited", what="edit")
        await eventually(lambda: "dropped: chat.update failed: message_not_found" in caplog.text)
        await asyncio.sleep(0.5)
        assert caplog.text.count("dropped") == 1
        metrics = bot.deps.metrics.exposition().decode()
        assert "opsloop_slack_edits_dropped_total 1.0" in metrics
        # The message's flush is over: a later request is flushed again (and dropped again).
        await slack.request_update("C0GENERAL", gone.ts, "again")
        await eventually(lambda: caplog.text.count("dropped") == 2, what="the second drop")


async def test_an_edit_waits_while_slack_is_unreachable(redis_url: str) -> None:
    from bot.job_queue import JobQueue
    from bot.job_scope import ChannelBusy
    from bot.slack_out import SlackOut

    async with running_bot(redis_url, worker=False) as bot:
        posted = await bot.deps.slack.post_message("C0GENERAL", "before")
        # The same store, but a Slack that nobody answers at.
        away = AsyncWebClient(token="xoxb-x", base_url=f"http://127.0.0.1:{free_port()}/api/")
        cut_off = SlackOut(away, bot.deps.store, bot.deps.metrics, JobQueue(bot.deps.store))
        await cut_off.request_update("C0GENERAL", posted.ts, "after")
        with pytest.raises(ChannelBusy) as busy:
            await cut_off.flush_update("C0GENERAL", posted.ts, owner="flush-1", attempt=2)
        assert busy.value.wait == 4.0  # the second try backs off 4 s
        # The state is still pending and still the deferred flush's: Slack, back, gets it.
        assert await bot.deps.slack.flush_update("C0GENERAL", posted.ts, owner="other") == 0
        assert await bot.deps.slack.flush_update("C0GENERAL", posted.ts, owner="flush-1") == 1
        assert bot.emulator.message("C0GENERAL", posted.ts).text == "after"


async def test_without_redis_calls_that_have_no_budget_still_reach_slack(tmp_path: Path) -> None:
    # The pause cannot be shared while Redis is away; a call without a budget goes on as before
    # (a modal still opens), while a post, which needs its channel's budget, says Redis is away.
    async with own_redis(tmp_path) as server, running_bot(server.url, worker=False) as bot:
        server.stop()
        started = time.monotonic()
        auth = await bot.deps.slack.call("auth.test")
        assert auth["ok"] is True and time.monotonic() - started < 2
        with pytest.raises(RedisConnectionError):
            await bot.deps.slack.post_message("C0GENERAL", "needs the budget")
        assert bot.emulator.messages("C0GENERAL") == []


# -- the emulator's side ----------------------------------------------------------------------


async def test_the_emulator_refuses_in_a_window_and_records_early_calls() -> None:
    async with running_emulator(channel_rate_per_second=None) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        posted = await client.chat_postMessage(channel="C0GENERAL", text="v1")
        async with aiohttp.ClientSession() as http:
            body = {"method": "chat.update", "seconds": 1.5}
            async with http.post(f"{emu.base_url}/_emulator/rate_limits", json=body) as resp:
                assert resp.status == 200
            bad = {"method": "chat.update", "seconds": "soon"}
            async with http.post(f"{emu.base_url}/_emulator/rate_limits", json=bad) as resp:
                assert resp.status == 400 and "seconds" in (await resp.json())["error"]
            refusals = []
            for _ in range(2):
                try:
                    await client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="v2")
                except SlackApiError as e:
                    refusals.append(e.response)
                await asyncio.sleep(0.3)
            # Slack rounds the seconds left up: 1.5 s left is "Retry-After: 2".
            assert [r.status_code for r in refusals] == [429, 429]
            assert refusals[0].headers["Retry-After"] == "2"
            assert emu.messages("C0GENERAL")[0].text == "v1"
            # Other methods, and chat.update once the deadline has passed, are not refused.
            await client.chat_postMessage(channel="C0GENERAL", text="posts are not limited")
            await asyncio.sleep(1.8)
            await client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="v3")
            async with http.get(f"{emu.base_url}/_emulator/early_calls") as resp:
                listed = await resp.json()
        assert emu.messages("C0GENERAL")[0].text == "v3"
        # The second update came 0.3 s after a 429 that said 2 s: one early call, about 1.7 s.
        assert [c.method for c in emu.limits.early_calls] == ["chat.update"]
        assert 1.5 < emu.limits.early_calls[0].early_by < 2.0
        assert [c["method"] for c in listed["early"]] == ["chat.update"]


async def test_early_posts_into_a_rate_limited_channel_are_recorded() -> None:
    async with running_emulator(channel_rate_per_second=1.0, channel_burst=1) as emu:
        client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        await client.chat_postMessage(channel="C0GENERAL", text="one")
        for text in ("refused", "too soon"):
            try:
                await client.chat_postMessage(channel="C0GENERAL", text=text)
            except SlackApiError as e:
                assert e.response.status_code == 429
            await asyncio.sleep(0.3)
        await client.chat_postMessage(channel="C0WEB", text="another channel is not early")
        assert [(c.method, c.channel) for c in emu.limits.early_calls] == [
            ("chat.postMessage", "C0GENERAL")
        ]
