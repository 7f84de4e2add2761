"""A job accepted by one process survives that process being killed, and acts once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio
from arq.constants import in_progress_key_prefix

from bot.sandbox.emulators.slack import SlackEmulator
from tests.harness import running_bot, running_emulator
from tests.waiting import eventually

REPO = Path(__file__).resolve().parent.parent
JOB_TIMEOUT = 2  # arq lets another worker retry after job timeout + 10 s


def start_worker(emulator: SlackEmulator, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env.update(
        SLACK_BOT_TOKEN=emulator.bot_token,
        OPSLOOP_SLACK_API_URL=emulator.api_url,
        OPSLOOP_REDIS_URL=redis_url,
        OPSLOOP_JOB_TIMEOUT=str(JOB_TIMEOUT),
        OPSLOOP_CONFIG_FILE=os.devnull,
        PYTHONPATH=str(REPO),
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"], env=env, stdout=out, stderr=out, cwd=REPO
        )


@pytest.mark.slow
@pytest.mark.timeout(60)  # about 14 s: a worker process is killed and another takes over
async def test_worker_killed_mid_job_and_another_worker_finishes_it(
    redis_url: str, tmp_path: Path
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    async with running_emulator() as emu, running_bot(redis_url, emulator=emu, worker=False) as bot:
        # /ops status asks Slack's auth.test; make Slack hang so the first worker is mid-job.
        emu.delays["auth.test"] = 60.0
        resp = await bot.driver.command("/ops", "status", user="U0ALICE", channel="C0GENERAL")
        assert resp.status == 200
        [job_key] = [k async for k in client.scan_iter("arq:job:slash:*")]
        job_id = job_key.decode().removeprefix("arq:job:")

        first = start_worker(emu, redis_url, tmp_path / "worker-a.log")
        try:

            async def in_progress() -> bool:
                return bool(await client.exists(in_progress_key_prefix + job_id))

            await eventually(in_progress, within=20, what="the first worker to pick up the job")
            await asyncio.sleep(0.3)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        assert not emu.ephemerals(), "the killed worker must not have answered"

        emu.delays.clear()
        second = start_worker(emu, redis_url, tmp_path / "worker-b.log")
        try:

            async def answered() -> bool:
                return bool(emu.ephemerals(user="U0ALICE"))

            await eventually(
                answered, within=JOB_TIMEOUT + 10 + 15, what="the second worker to finish"
            )
            await asyncio.sleep(1.0)  # a duplicate answer would show up now
        finally:
            second.terminate()
            second.wait(timeout=15)
        replies = emu.ephemerals(user="U0ALICE")
        assert len(replies) == 1
        assert "Redis" in replies[0].text and "Slack" in replies[0].text
        assert await client.zcard("opsloop:queue") == 0
    await client.aclose()


async def test_a_stored_job_survives_the_accepting_process(redis_url: str) -> None:
    # The process that acked dies before any worker ran the job: a later worker still runs it.
    async with running_emulator() as emu:
        async with running_bot(redis_url, emulator=emu, worker=False) as bot:
            await bot.driver.command("/ops", "help", user="U0CAROL", channel="C0GENERAL")
        assert not emu.ephemerals()
        async with running_bot(redis_url, emulator=emu, worker=True):
            await eventually(lambda: emu.ephemerals(user="U0CAROL"), what="the stored job")
        assert len(emu.ephemerals(user="U0CAROL")) == 1


async def test_deferred_jobs_run_at_their_time(redis_url: str) -> None:
    async with running_bot(redis_url) as bot:
        posted = await bot.deps.slack.post_message("C0GENERAL", "before")
        await bot.deps.store.slack.set_pending_update("C0GENERAL", posted.ts, {"text": "after"})
        run_at = time.time() + 1.0
        await bot.deps.queue.enqueue(
            "slack.flush_update", {"channel": "C0GENERAL", "ts": posted.ts}, run_at=run_at
        )
        await asyncio.sleep(0.5)
        assert bot.emulator.messages("C0GENERAL")[0].text == "before"
        deadline = time.monotonic() + 5
        while bot.emulator.messages("C0GENERAL")[0].text != "after":
            assert time.monotonic() < deadline, "the deferred job did not run"
            await asyncio.sleep(0.05)
        assert time.time() >= run_at
