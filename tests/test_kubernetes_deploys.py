"""/deploy to Kubernetes through the bot's HTTP path, for both kinds of service: an Argo
Rollout (Argo walks the steps, opsloop approves its pauses) and a plain Deployment (opsloop
runs the `-canary` Deployment). Every approval rule holds for both."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.alert_payloads import TOKEN, alert, notification
from tests.kube_deploys import (
    CHANNEL,
    KINDS,
    Kind,
    actions,
    canary,
    config,
    kube_bot,
    says,
    shown,
    thread,
    told,
)
from tests.waiting import eventually

pytestmark = pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)


async def test_a_rollout_goes_through_its_steps_with_approvals_to_complete(
    redis_url: str, tmp_path: Path, kind: Kind
) -> None:
    async with kube_bot(redis_url, tmp_path, kind) as (bot, kube):
        message = await canary(bot, kube, kind)
        text = shown(message)
        assert "Approve" in text and "Reject" in text and "*Pods*" in text, text
        assert f"{kind.percents[0]}% (step 1 of 3)" in text
        assert kind.image(kube) == ("2" if kind.name == "argo" else "1")

        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "waiting for approval to go to 100%")
        assert kind.at(kube, 1) and kind.promotions(kube) == 1

        await bot.driver.click("Approve", user="U0CAROL", channel=CHANNEL)  # via S0ONCALL
        final = await says(bot, "2", "complete")
        assert kind.at(kube, 2)
        assert "Approve" not in shown(final) and "Reject" not in shown(final)
        assert len([m for m in bot.emulator.messages(CHANNEL) if " 2 (" in m.text]) == 1
        replies = thread(bot, "2")
        assert any("Approved by <@U0BOB>" in r for r in replies)
        assert any("Approved by <@U0CAROL>" in r for r in replies)
        log = await actions(bot)
        assert log.count("deploy.approved") == 2 and log.count("deploy.completed") == 1


async def test_only_approvers_approve_never_the_starter_and_each_step_needs_n_of_them(
    redis_url: str, tmp_path: Path, kind: Kind
) -> None:
    async with kube_bot(redis_url, tmp_path, kind, config(kind, approvals=2)) as (bot, kube):
        await bot.driver.command("/deploy", f"{kind.service} 2", user="U0DAVE")
        await told(bot, "U0DAVE", "Only deployers")
        await canary(bot, kube, kind)

        await bot.driver.click("Approve", user="U0ALICE", channel=CHANNEL)
        await told(bot, "U0ALICE", "you may not approve it")
        await bot.driver.click("Approve", user="U0DAVE", channel=CHANNEL)
        await told(bot, "U0DAVE", f"Only approvers of {kind.service} may approve")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "1 of 2")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await told(bot, "U0BOB", "You already approved this step")
        await asyncio.sleep(0.5)
        assert kind.at(kube, 0) and kind.promotions(kube) == 0, "one approver twice is not two"

        await bot.driver.click("Approve", user="U0CAROL", channel=CHANNEL)
        await says(bot, "2", "waiting for approval to go to 100%")
        assert kind.at(kube, 1) and kind.promotions(kube) == 1


async def test_two_approve_clicks_at_the_same_moment_promote_once(
    redis_url: str, tmp_path: Path, kind: Kind
) -> None:
    async with kube_bot(redis_url, tmp_path, kind) as (bot, kube):
        message = await canary(bot, kube, kind)
        await asyncio.gather(
            bot.driver.click("Approve", user="U0BOB", message=message),
            bot.driver.click("Approve", user="U0CAROL", message=message),
        )
        await says(bot, "2", "waiting for approval to go to 100%")
        await asyncio.sleep(1)
        assert kind.at(kube, 1), "promoted once: the second step, not the last"
        assert kind.promotions(kube) == 1
        assert (await actions(bot)).count("deploy.approved") == 1


async def test_an_expired_request_holds_the_canary_until_asked_again(
    redis_url: str, tmp_path: Path, kind: Kind
) -> None:
    cfg = config(kind, approval_timeout="2s")
    async with kube_bot(redis_url, tmp_path, kind, cfg) as (bot, kube):
        await canary(bot, kube, kind)
        message = await says(bot, "2", "expired", within=15)
        assert "Approve" not in shown(message)
        assert kind.at(kube, 0) and kind.promotions(kube) == 0, "the canary is held"

        await bot.driver.command("/deploy", f"promote {kind.service}", user="U0ALICE")
        await says(bot, "2", "Approve")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "go to 100%")
        assert kind.at(kube, 1) and kind.promotions(kube) == 1


async def test_a_firing_unacknowledged_alert_blocks_approval(
    redis_url: str, tmp_path: Path, kind: Kind
) -> None:
    env = {"OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN": TOKEN}
    async with kube_bot(redis_url, tmp_path, kind, **env) as (bot, kube):
        await canary(bot, kube, kind)
        labels = {"service": kind.service}
        body = notification([alert("shop-1", name="HighErrorRate", extra=labels)])
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(bot.base_url + "/hooks/alertmanager", json=body, headers=headers) as resp,
        ):
            assert resp.status < 300
        await eventually(lambda: bot.emulator.messages("C0ALERTS"), what="the alert's thread")
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        assert "blocked" in await told(bot, "U0BOB", "AL-1")
        await asyncio.sleep(0.5)
        assert kind.at(kube, 0) and kind.promotions(kube) == 0


async def test_reject_rolls_the_canary_back_and_only_approvers_or_the_starter_may(
    redis_url: str, tmp_path: Path, kind: Kind
) -> None:
    async with kube_bot(redis_url, tmp_path, kind) as (bot, kube):
        await canary(bot, kube, kind)
        await bot.driver.click("Reject", user="U0DAVE", channel=CHANNEL)
        await told(bot, "U0DAVE", "Only approvers of")
        await bot.driver.click("Reject", user="U0BOB", channel=CHANNEL)
        final = await says(bot, "2", "rolled back")
        assert "Approve" not in shown(final) and "Reject" not in shown(final)
        assert any("Rejected by <@U0BOB>" in r for r in thread(bot, "2"))
        if kind.name == "argo":  # Argo's abort: the stable pods serve, the spec keeps 2
            status = kube.emu.object("Rollout", "shop", kind.service)["status"]
            assert status["abort"] is True and status["availableReplicas"] == 4
            assert kube.sent("*/rollouts/shop/status", {"status": {"abort": True}}) == 1
        else:
            assert kind.deployment(kube, "cart-canary") is None
            stable = kind.deployment(kube, "cart")
            assert stable is not None and stable["spec"]["replicas"] == 4
        assert "deploy.rolled_back" in await actions(bot)
