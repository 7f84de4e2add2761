"""Slack out: the shared per-channel budget, 429 honoured, coalesced updates."""

from __future__ import annotations

import asyncio
import time

from tests.harness import running_bot, running_emulator


def posts(emulator, status: int | None = None) -> list:  # type: ignore[no-untyped-def]
    return [
        c
        for c in emulator.calls
        if c.method == "chat.postMessage" and (status is None or c.status == status)
    ]


async def test_two_replicas_share_one_channel_budget(redis_url: str) -> None:
    # Slack (emulated) allows 5 messages a second with bursts of 3; each replica is told 4/s
    # with bursts of 2, and together they must never be refused.
    async with (
        running_emulator(channel_rate_per_second=5.0, channel_burst=3) as emu,
        running_bot(redis_url, emulator=emu, worker=False, OPSLOOP_CHANNEL_RATE=4.0,
                    OPSLOOP_CHANNEL_BURST=2) as a,
        running_bot(redis_url, emulator=emu, worker=False, OPSLOOP_CHANNEL_RATE=4.0,
                    OPSLOOP_CHANNEL_BURST=2) as b,
    ):  # fmt: skip
        started = time.monotonic()
        await asyncio.gather(
            *(bot.deps.slack.post_message("C0GENERAL", f"{name}-{i}")
              for i in range(6) for name, bot in (("a", a), ("b", b)))
        )  # fmt: skip
        elapsed = time.monotonic() - started
        assert len(posts(emu, 200)) == 12
        assert posts(emu, 429) == []
        assert elapsed >= 2.0  # (12 - 2) / 4 s: the budget spread them out
        assert len(emu.messages("C0GENERAL")) == 12


async def test_without_a_budget_slack_says_429_and_every_message_still_arrives(
    redis_url: str,
) -> None:
    # The control for the test above: replicas with a budget far above Slack's are refused,
    # honour Retry-After, and still deliver every message exactly once.
    async with (
        running_emulator(channel_rate_per_second=5.0, channel_burst=3) as emu,
        running_bot(redis_url, emulator=emu, worker=False, OPSLOOP_CHANNEL_RATE=100.0,
                    OPSLOOP_CHANNEL_BURST=100) as a,
        running_bot(redis_url, emulator=emu, worker=False, OPSLOOP_CHANNEL_RATE=100.0,
                    OPSLOOP_CHANNEL_BURST=100) as b,
    ):  # fmt: skip
        await asyncio.gather(
            *(bot.deps.slack.post_message("C0GENERAL", f"{name}-{i}")
              for i in range(4) for name, bot in (("a", a), ("b", b)))
        )  # fmt: skip
        assert posts(emu, 429), "the emulator should have refused a burst of 8"
        texts = sorted(m.text for m in emu.messages("C0GENERAL"))
        assert texts == sorted(f"{n}-{i}" for i in range(4) for n in "ab")
        metrics = a.deps.metrics.exposition().decode() + b.deps.metrics.exposition().decode()
        assert "opsloop_slack_rate_limited_total" in metrics


async def test_pending_updates_of_one_message_coalesce(redis_url: str) -> None:
    async with running_bot(redis_url, worker=False) as bot:
        slack = bot.deps.slack
        posted = await slack.post_message("C0GENERAL", "version 0")
        for i in range(1, 21):
            await slack.request_update("C0GENERAL", posted.ts, f"version {i}")
        # One flush job was queued for twenty requests; run it as a worker would.
        assert await bot.deps.store.queue_depth() == 1
        sent = await slack.flush_update("C0GENERAL", posted.ts)
        assert sent == 1
        message = bot.emulator.messages("C0GENERAL")[0]
        assert message.text == "version 20"
        updates = [c for c in bot.emulator.calls if c.method == "chat.update"]
        assert len(updates) == 1


async def test_coalesced_updates_flow_through_a_worker(redis_url: str) -> None:
    async with running_bot(redis_url) as bot:
        slack = bot.deps.slack
        posted = await slack.post_message("C0GENERAL", "version 0")
        for i in range(1, 31):
            await slack.request_update("C0GENERAL", posted.ts, f"version {i}")
            await asyncio.sleep(0.005)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if bot.emulator.messages("C0GENERAL")[0].text == "version 30":
                break
            await asyncio.sleep(0.05)
        assert bot.emulator.messages("C0GENERAL")[0].text == "version 30"
        updates = [c for c in bot.emulator.calls if c.method == "chat.update"]
        assert 1 <= len(updates) < 30


async def test_a_job_is_deferred_instead_of_waiting_for_a_busy_channel(redis_url: str) -> None:
    # Jobs that would sleep on a spent channel budget give their worker back: other work
    # (here /ops help) is answered at once, and every message still goes out in time.
    from bot.jobs import JobContext, JobRegistry, WorkerRunner
    from bot.runtime import build_registry

    async def post(job: JobContext, payload: dict[str, object]) -> None:
        await job.deps.slack.post_message("C0GENERAL", str(payload["text"]))

    async with (
        running_emulator(channel_rate_per_second=5.0, channel_burst=3) as emu,
        running_bot(
            redis_url, emulator=emu, worker=False, OPSLOOP_CHANNEL_RATE=4.0, OPSLOOP_CHANNEL_BURST=1
        ) as bot,
    ):
        registry: JobRegistry = build_registry()
        registry.add("test.post", post)
        runner = WorkerRunner(bot.deps, registry)
        for i in range(30):  # far more than the worker's 20 slots, all on one channel
            await bot.deps.queue.enqueue("test.post", {"text": f"m{i}"})
        await runner.start()
        try:
            await asyncio.sleep(0.5)
            started = time.monotonic()
            await bot.driver.command("/ops", "help", user="U0ALICE", channel="C0GENERAL")
            while not bot.emulator.ephemerals(user="U0ALICE"):
                assert time.monotonic() - started < 3, "the help job waited behind the posts"
                await asyncio.sleep(0.02)
            deadline = time.monotonic() + 30
            while len(bot.emulator.messages("C0GENERAL")) < 30:
                assert time.monotonic() < deadline, "deferred posts did not all go out"
                await asyncio.sleep(0.1)
        finally:
            await runner.stop()
        texts = sorted(m.text for m in bot.emulator.messages("C0GENERAL"))
        assert texts == sorted(f"m{i}" for i in range(30))
        assert [c for c in bot.emulator.calls if c.status == 429] == []
