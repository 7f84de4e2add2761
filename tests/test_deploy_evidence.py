"""Approvals carry evidence: a real Prometheus measures the canary against stable, for a
GitLab-deployed service and a Kubernetes Deployment, through the bot's HTTP path."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dockerd_server import DockerEngine
from tests.evidence_rig import CHANNEL, Values, evidence_canary
from tests.kube_deploys import (
    DEPLOYMENT,
    actions,
    canary,
    kube_bot,
    live,
    says,
    shown,
    thread,
    told,
)
from tests.kube_deploys import config as kube_config
from tests.waiting import eventually

pytestmark = [pytest.mark.timeout(120)]
DEPLOYERS = pytest.mark.parametrize("deployer", ["gitlab", "kubernetes", "docker"])


@pytest.fixture
def env(request: pytest.FixtureRequest, deployer: str) -> Iterator[dict[str, str]]:
    """The bot's settings a deployer needs: a Docker Engine for `docker` (web's containers
    removed before and after)."""
    if deployer != "docker":
        yield {}
        return
    engine: DockerEngine = request.getfixturevalue("dockerd")

    def clear() -> None:
        for c in engine.client.containers.list(all=True, filters={"label": "opsloop.service=web"}):
            c.remove(force=True)

    clear()
    yield {"OPSLOOP_DOCKER_HOST": engine.url}
    clear()


def regressed(rig: Values) -> None:
    rig.set("error_rate", canary=0.04, stable=0.02)  # twice stable's
    rig.set("p99_seconds", canary=0.25, stable=0.25)


@pytest.mark.parametrize("deployer", ["gitlab", "kubernetes", "argo", "docker"])
async def test_the_approval_message_shows_canary_against_stable_and_when_measured(
    redis_url: str, tmp_path: Path, deployer: str, env: dict[str, str]
) -> None:
    async with evidence_canary(redis_url, tmp_path, deployer, env=env) as rig:
        message = await says(rig.bot, "2", "canary 0.021 vs stable 0.02")
        text = shown(message)
        assert "`error_rate`" in text and "(+5%)" in text, text
        assert "`p99_seconds`: canary 0.26 vs stable 0.25 (+4%)" in text, text
        assert "canary `2` vs stable `1`, measured <!date^" in text, text

        await rig.bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(
            rig.bot,
            "2",
            "complete" if deployer == "gitlab" else "waiting for approval to go to 100%",
        )
        assert "deploy.approved" in await actions(rig.bot)


@DEPLOYERS
async def test_a_canary_twice_as_bad_as_stable_cannot_be_approved(
    redis_url: str, tmp_path: Path, deployer: str, env: dict[str, str]
) -> None:
    async with evidence_canary(redis_url, tmp_path, deployer, before=regressed, env=env) as rig:
        await says(rig.bot, "2", "worse than stable by more than 20%")
        await rig.bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        refusal = await told(rig.bot, "U0BOB", "Approve is refused")
        assert "`error_rate` is 0.04 for the canary `2` against 0.02 for stable `1`" in refusal
        assert "+100%, more than the 20% allowed" in refusal
        await asyncio.sleep(1)
        earlier = 1 if deployer == "gitlab" else 0  # version 1's approval (GitLab asks)
        assert (await actions(rig.bot)).count("deploy.approved") == earlier
        assert "0 of 1" in shown(live(rig.bot, "2"))


@DEPLOYERS
async def test_an_approval_is_withdrawn_when_the_canary_regresses_before_the_step_runs(
    redis_url: str, tmp_path: Path, deployer: str, env: dict[str, str]
) -> None:
    async with evidence_canary(redis_url, tmp_path, deployer, approvals=2, env=env) as rig:
        await says(rig.bot, "2", "canary 0.021 vs stable 0.02")
        await rig.bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(rig.bot, "2", "1 of 2")

        regressed(rig)
        await eventually(
            lambda: [t for t in thread(rig.bot, "2") if "Approvals withdrawn" in t],
            within=20,
            what="the thread to say the approval was withdrawn",
        )
        [said] = [t for t in thread(rig.bot, "2") if "Approvals withdrawn" in t]
        assert "<@U0BOB>" in said and "`error_rate` is 0.04" in said, said
        await says(rig.bot, "2", "0 of 2")

        await rig.bot.driver.click("Approve", user="U0CAROL", channel=CHANNEL)
        await told(rig.bot, "U0CAROL", "Approve is refused")
        log = await actions(rig.bot)
        assert log.count("deploy.approvals_withdrawn") == 1
        assert log.count("deploy.approved") == (3 if deployer == "gitlab" else 1)
        assert "0 of 2" in shown(live(rig.bot, "2"))


async def test_prometheus_down_shows_unknown_and_approvals_still_work(
    redis_url: str, tmp_path: Path
) -> None:
    async with evidence_canary(redis_url, tmp_path, "gitlab") as rig:
        await says(rig.bot, "2", "canary 0.021 vs stable 0.02")
        rig.prometheus.stop()
        message = await says(rig.bot, "2", "unknown", within=30)
        assert "unreachable" in shown(message), shown(message)
        await rig.bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(rig.bot, "2", "complete")


async def test_a_required_query_that_gives_nothing_blocks_approve(
    redis_url: str, tmp_path: Path
) -> None:
    def no_canary_errors(rig: Values) -> None:
        rig.set("error_rate", stable=0.02)  # nothing for the canary
        rig.set("p99_seconds", canary=0.25, stable=0.25)

    analysis = {"required": ["error_rate"]}
    async with evidence_canary(
        redis_url, tmp_path, "kubernetes", analysis=analysis, before=no_canary_errors
    ) as rig:
        await says(rig.bot, "2", "required: Approve is refused until it answers")
        await rig.bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        refusal = await told(rig.bot, "U0BOB", "Approve is refused")
        assert "`error_rate` is required and gave no answer (no data)" in refusal, refusal

        rig.set("error_rate", canary=0.02)  # it answers now, as well as stable
        await says(rig.bot, "2", "canary 0.02 vs stable 0.02")
        await rig.bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(rig.bot, "2", "waiting for approval to go to 100%")


async def test_without_prometheus_the_message_says_approvals_carry_no_evidence(
    redis_url: str, tmp_path: Path
) -> None:
    cfg = kube_config(DEPLOYMENT, analysis={"queries": {"error_rate": "vector(1)"}})
    async with kube_bot(redis_url, tmp_path, DEPLOYMENT, cfg) as (bot, kube):
        await canary(bot, kube, DEPLOYMENT)
        await says(bot, "2", "OPSLOOP_PROMETHEUS_URL is unset, so approvals carry no evidence")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "waiting for approval to go to 100%")
