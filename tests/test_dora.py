"""`/ops dora` through the real HTTP path: a signed command in, the ephemeral answer out, over
a history written with the store's own functions (tests/dora_history.py: figures by hand)."""

from __future__ import annotations

import time
from typing import Any

from bot.config_file import Feedback, OpsConfig, Roles
from bot.feedback.history import KEEP_DAYS, MAX_PER_SERVICE, Incident
from integrations.gitlab.config import GitLabService
from tests.dora_history import DAY, known_history
from tests.harness import BotUnderTest, running_bot
from tests.waiting import eventually

GENERAL = "C0GENERAL"


def config() -> OpsConfig:
    def service(project: str) -> GitLabService:
        return GitLabService.model_validate(
            {"deployer": "gitlab", "project": project, "alert_labels": {"service": "api"}}
        )

    return OpsConfig(
        roles=Roles(deployers=["U0ALICE"], approvers=["U0BOB"]),
        services={"api": service("acme/api"), "web": service("acme/web")},
        feedback=Feedback(failure_window="1h"),  # type: ignore[arg-type]
    )


async def ask(bot: BotUnderTest, text: str, user: str = "U0ALICE") -> Any:
    """`/ops <text>`'s ephemeral answer."""
    before = len(bot.emulator.ephemerals(user=user))
    await bot.driver.command("/ops", text, user=user, channel=GENERAL)
    answers = await eventually(
        lambda: bot.emulator.ephemerals(user=user)[before:], what=f"the answer to /ops {text}"
    )
    return answers[0]


async def write_known_history(bot: BotUnderTest, now: float) -> None:
    history = bot.deps.store.history
    rollouts, leads, incidents = known_history(now)
    for r in rollouts:
        await history.save_rollout(r)
    for lead in leads.values():
        await history.save_lead("api", lead)
    for incident in incidents:
        await history.save_incident(incident)


async def test_ops_dora_answers_the_figures_computed_by_hand(redis_url: str) -> None:
    async with running_bot(redis_url, config=config()) as bot:
        await write_known_history(bot, time.time())
        answer = await ask(bot, "dora api 7")
        assert "Delivery figures, last 7 days" in answer.text
        assert (
            "*api*: 4 deployments (0.57/day, 4.0/week) · lead time 4h (p90 6h, 3 measured) · "
            "failure rate 67% (4 of 6) · time to restore 30m, 1 failure not restored"
        ) in answer.text
        assert "Lead time not measured for 1 rollout" in answer.text
        assert "D-4 api `1.4`: no tag `1.2` or `1.4` in acme/api" in answer.text
        for words in ("from committed to version control", "within 1h", "next good state"):
            assert words in answer.text, words
        assert "All services" not in answer.text, "one service asked for"

        everything = await ask(bot, "dora")  # every service, 30 days: D-0 counts too
        assert "Delivery figures, last 30 days" in everything.text
        assert "*api*: 5 deployments" in everything.text
        assert "*web*: 0 deployments" in everything.text
        assert "*All services*: 5 deployments" in everything.text


async def test_ops_dora_bad_input_says_what_to_type(redis_url: str) -> None:
    async with running_bot(redis_url, config=config()) as bot:
        unknown = await ask(bot, "dora nope")
        assert "`nope` is not a service (known: `api`, `web`)" in unknown.text
        assert "/ops dora [service] [days]" in unknown.text
        for bad in ("dora api 0", "dora 999", "dora api -3", "dora 1.5", "dora api seven"):
            answer = await ask(bot, bad)
            assert "is not a number of days: type a whole number from 1 to 365" in answer.text
            assert "/ops dora [service] [days]" in answer.text
        too_many = await ask(bot, "dora api 7 more")
        assert "takes at most a service and a number of days" in too_many.text
        helped = await ask(bot, "help")
        assert "/ops dora [service] [days]" in helped.text


async def test_records_are_kept_once_and_trimmed_by_age_and_count(redis_url: str) -> None:
    async with running_bot(redis_url, config=config(), worker=False) as bot:
        history = bot.deps.store.history
        now = time.time()
        old = Incident(ref="AL-1", service="api", fired_at=now - (KEEP_DAYS + 1) * DAY)
        await history.save_incident(old)
        assert await history.incident("api", "AL-1") is None, "older than KEEP_DAYS: trimmed"

        kept = Incident(ref="AL-2", service="api", fired_at=now - 100 * DAY)
        for _ in range(3):  # written again (a job run again): still one record
            await history.save_incident(kept)
        assert await history.count("api") == 1
        assert await history.incident("api", "AL-2") == kept, "kept beyond 90 days"

        for n in range(MAX_PER_SERVICE + 5):
            await history.save_incident(
                Incident(ref=f"AL-{100 + n}", service="api", fired_at=now - 50 * DAY + n)
            )
        assert await history.count("api") == MAX_PER_SERVICE
        assert await history.incident("api", "AL-2") is None, "the oldest went first"
        assert await history.incident("api", f"AL-{100 + MAX_PER_SERVICE + 4}") is not None
        ttl = await bot.deps.store.redis.ttl("opsloop:history:api:records")
        assert 0 < ttl <= 400 * DAY
