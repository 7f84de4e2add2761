"""The weekly digest: posted once per slot however many replicas run, with the last 7 days'
figures and their change from the 7 before."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arq.constants import job_key_prefix

from bot.config_file import WEEKDAYS, Feedback, OpsConfig
from bot.config_load import parse_config
from bot.errors import SettingsError
from bot.feedback.service import DIGEST_JOB, FeedbackService, last_slot, slot_name
from bot.jobs import WorkerRunner
from integrations.gitlab.config import GitLabService
from tests.dora_history import known_history
from tests.harness import running_bot, running_emulator
from tests.processes import opsloop_env, running_processes, wait_workers
from tests.waiting import eventually

DIGEST = "C0GENERAL"


def just_passed(minutes: int = 1) -> str:
    """`digest_at` for a moment `minutes` ago (UTC)."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes)
    return f"{WEEKDAYS[moment.weekday()][:3]} {moment:%H:%M}"


def config(digest_at: str) -> OpsConfig:
    api = GitLabService.model_validate({"deployer": "gitlab", "project": "acme/api"})
    return OpsConfig(
        services={"api": api},
        feedback=Feedback(digest_channel=DIGEST, digest_at=digest_at),
    )


def test_the_slot_is_the_last_moment_at_digest_at() -> None:
    monday_nine = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()
    assert last_slot("mon 09:00", monday_nine) == monday_nine
    assert last_slot("mon 09:00", monday_nine - 60) == monday_nine - 7 * 86_400
    assert last_slot("wed 17:30", monday_nine) == monday_nine - 5 * 86_400 + 8.5 * 3600
    assert slot_name(monday_nine) == "2026-11-30T09:00Z"


async def test_two_replicas_post_the_digest_once(redis_url: str) -> None:
    cfg = config(just_passed())
    async with (
        running_emulator() as emu,
        running_bot(redis_url, emulator=emu, config=cfg, worker=False) as a,
        running_bot(redis_url, emulator=emu, config=cfg, worker=False) as b,
    ):
        for r in known_history(time.time())[0]:
            await a.deps.store.history.save_rollout(r)
        # Two replicas' workers, each with its own connections, started at the same time.
        runners = [WorkerRunner(bot.deps, bot.runtime.jobs) for bot in (a, b)]
        await asyncio.gather(*(r.start() for r in runners))
        try:
            posted = await eventually(lambda: emu.messages(DIGEST), what="the digest")
            await asyncio.sleep(1.5)  # a second one would show up now
        finally:
            for runner in runners:
                await runner.stop()
        assert len(emu.messages(DIGEST)) == 1, [m.text for m in emu.messages(DIGEST)]
        text = posted[0].text
        assert text.startswith("Weekly delivery digest, the 7 days to")
        # Known history, the 7 days to now: 4 deployments; the 7 before: D-0 (+3 on it).
        assert "*Deployments*: 4 (+3 on the week before)" in text
        # No incidents written: D-1 is no failure here (3 of 6); the week before, D-0 of 1.
        assert "*Change failure rate*: 50% (3 of 6) (+50 points on the week before)" in text
        slot = last_slot(cfg.feedback.digest_at, time.time())
        nxt = slot_name(slot + 7 * 86_400)
        redis = a.deps.store.redis
        assert await redis.exists(job_key_prefix + f"{DIGEST_JOB}:{nxt}"), "next week's queued"


async def test_a_digest_run_again_after_posting_posts_nothing(redis_url: str) -> None:
    cfg = config(just_passed())
    async with running_bot(redis_url, config=cfg, worker=False) as bot:
        slot = last_slot(cfg.feedback.digest_at, time.time())
        service = FeedbackService(bot.deps)
        await service.post_digest(slot)
        await service.post_digest(slot)  # the job run again (a worker died after posting)
        assert len(bot.emulator.messages(DIGEST)) == 1


def test_the_yaml_feedback_section_is_checked() -> None:
    good = parse_config({"feedback": {"digest_channel": "C0ENG", "digest_at": "Friday 7:30"}})
    assert good.feedback.digest_at == "fri 07:30"
    assert good.feedback.failure_window == timedelta(hours=1)
    for bad, words in (
        ({"digest_at": "monday"}, 'write e.g. "mon 09:00"'),
        ({"digest_at": "mon 24:00"}, 'write e.g. "mon 09:00"'),
        ({"digest_at": "someday 09:00"}, 'write e.g. "mon 09:00"'),
        ({"digest_channel": "#eng"}, "feedback.digest_channel"),
        ({"digst_at": "mon 09:00"}, "feedback.digst_at"),
    ):
        with pytest.raises(SettingsError) as e:
            parse_config({"feedback": bad})
        assert words in str(e.value), (bad, str(e.value))


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_two_worker_processes_post_the_digest_once(tmp_path: Path) -> None:
    """Two `opsloop worker` processes on one Redis, started together just after the slot."""
    async with running_emulator() as slack, running_processes(tmp_path) as procs:
        redis_server = await procs.redis()
        config = tmp_path / "opsloop.yml"
        config.write_text(f'feedback: {{digest_channel: {DIGEST}, digest_at: "{just_passed()}"}}\n')
        env = opsloop_env(
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=slack.signing_secret,
            OPSLOOP_SLACK_API_URL=slack.api_url,
            OPSLOOP_REDIS_URL=redis_server.url,
            OPSLOOP_CONFIG_FILE=str(config),
            OPSLOOP_LOG_LEVEL="WARNING",
        )
        procs.worker(env, "worker-a")
        procs.worker(env, "worker-b")
        try:
            await wait_workers(redis_server.url, 2)
            await eventually(lambda: slack.messages(DIGEST), within=30, what="the digest")
            await asyncio.sleep(2)  # a second one would show up now
        except BaseException:
            print(procs.logs())
            raise
        assert len(slack.messages(DIGEST)) == 1
        assert slack.messages(DIGEST)[0].text.startswith("Weekly delivery digest")
