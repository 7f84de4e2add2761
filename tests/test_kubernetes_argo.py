"""An Argo Rollout deployed through the bot: exactly the patches `kubectl argo rollouts` sends,
abort and retry, and what Argo decides by itself (a Degraded canary, an inconclusive analysis,
an abort) reaching the person in the rollout's one message."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.config_load import parse_config
from integrations.kubernetes.client import KubeClient
from integrations.kubernetes.errors import ROLLOUT
from tests.harness import running_bot
from tests.kube_cluster import running_cluster
from tests.kube_deploys import (
    ABORT,
    ARGO,
    CHANNEL,
    PROMOTE,
    RETRY,
    actions,
    canary,
    config,
    kube_bot,
    says,
    shown,
    start_worker,
    thread,
    told,
)
from tests.waiting import eventually

STATUS = "*/rollouts/shop/status"


async def test_the_image_and_the_promotes_are_the_patches_kubectl_sends(
    redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        text = shown(await canary(bot, kube, ARGO))
        assert "Argo Rollout `shop/shop`: *Paused* (CanaryPauseStep)" in text
        assert "approval point 1 of 2" in text and "canary weight 20%" in text, text
        assert "ready of 4 (1 of `2`)" in text, "pods: ready, of the new version"
        [image] = kube.emu.requests_to("*/rollouts/shop", "PATCH")
        assert image.content_type == "application/json-patch+json"
        assert image.body == [
            {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "app"},
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/image",
                "value": "reg.example.com/shop:2",
            },
        ]
        for _ in range(2):
            await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
            await says(bot, "2", "complete" if kube.sent(STATUS, PROMOTE) == 2 else "to 100%")
        await says(bot, "2", "complete")
        promotes = kube.emu.requests_to(STATUS, "PATCH")
        assert [r.body for r in promotes] == [PROMOTE, PROMOTE]
        assert {r.content_type for r in promotes} == {"application/merge-patch+json"}
        assert len(kube.emu.requests_to("*/rollouts/shop", "PATCH")) == 1, "spec.paused unset"
        assert "*Healthy*" in shown(await says(bot, "2", "Healthy"))
        said = [shown(m) for m in bot.emulator.messages(CHANNEL)]
        assert not [t for t in [*said, caplog.text] if kube.emu.token in t], "the token leaked"


async def test_promote_after_a_reject_retries_the_rollout_from_its_first_pause(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        await canary(bot, kube, ARGO)
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "waiting for approval to go to 100%")
        await bot.driver.click("Reject", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "rolled back")
        assert kube.patches(STATUS) == [PROMOTE, ABORT]

        await bot.driver.command("/deploy", "promote shop", user="U0ALICE")
        await told(bot, "U0ALICE", "again from its first step")
        message = await says(bot, "2", "waiting for approval to go to 50%")
        assert "20% (step 1 of 3)" in shown(message) and ARGO.at(kube, 0)
        assert kube.patches(STATUS) == [PROMOTE, ABORT, RETRY]
        assert any("starting `2` again from its first step" in r for r in thread(bot, "2"))
        await bot.driver.click("Approve", user="U0CAROL", channel=CHANNEL)
        await says(bot, "2", "waiting for approval to go to 100%")
        assert kube.sent(STATUS, PROMOTE) == 2


async def test_a_degraded_canary_fails_the_step_with_argos_own_message(
    redis_url: str, tmp_path: Path
) -> None:
    async with running_cluster(tmp_path) as kube:
        ARGO.set_up(kube, progress_deadline_seconds=100)  # 1 s at the emulator's time scale
        kube.emu.fail_image("reg.example.com/shop:2")
        async with running_bot(redis_url, config=config(ARGO), **kube.env) as bot:
            await bot.driver.command("/deploy", "shop 2", user="U0ALICE")
            message = await says(bot, "2", "failed going to 20%")
            text = shown(message)
            assert "Rollout shop/shop is Degraded" in text and "ProgressDeadlineExceeded" in text
            assert "*Degraded*" in text, "the message shows the Rollout's phase"
            assert "Approve" not in text and "Reject" in text


async def test_an_inconclusive_analysis_is_shown_as_argos_pause_not_an_approval_point(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        await canary(bot, kube, ARGO)
        kube.emu.inconclusive("shop", "shop")
        message = await says(bot, "2", "analysis was inconclusive")
        assert "waiting for approval to go to 50%" in shown(message)
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "waiting for approval to go to 100%")
        assert kube.sent(STATUS, PROMOTE) == 1


async def test_argo_aborting_an_awaiting_rollout_fails_it_and_promote_retries(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        await canary(bot, kube, ARGO)
        # What Argo does when a background analysis fails: it aborts the Rollout itself.
        outside = KubeClient(kube.kubeconfig)
        try:
            await outside.patch(
                ROLLOUT, "shop", "shop", ABORT,
                content_type="application/merge-patch+json", subresource="status",
            )  # fmt: skip
        finally:
            await outside.close()
        message = await says(bot, "2", "failed at 20%")
        assert "Argo aborted Rollout shop/shop" in shown(message)
        assert any("Argo aborted" in r for r in thread(bot, "2"))

        await bot.driver.command("/deploy", "promote shop", user="U0ALICE")
        await says(bot, "2", "waiting for approval to go to 50%")
        assert kube.patches(STATUS) == [ABORT, RETRY]


async def test_a_refusal_reaches_the_person_naming_the_verb_and_the_object(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        kube.emu.deny(verb="patch", resource="rollouts", namespace="shop")
        started = asyncio.get_running_loop().time()
        await bot.driver.command("/deploy", "shop 2", user="U0ALICE")
        message = await says(bot, "2", "failed")
        assert asyncio.get_running_loop().time() - started < 30
        text = shown(message)
        assert "opsloop may not patch Rollout shop/shop (403 Forbidden)" in text, text
        assert "`patch` on `rollouts`" in text and "token" not in text.lower()


async def test_a_missing_rollout_reaches_the_person_naming_it(
    redis_url: str, tmp_path: Path
) -> None:
    gone = config(ARGO, rollout="gone")
    async with kube_bot(redis_url, tmp_path, ARGO, gone) as (bot, _):
        await bot.driver.command("/deploy", "shop 2", user="U0ALICE")
        answer = await told(bot, "U0ALICE", "was not found")
        assert "Rollout shop/gone was not found (404)" in answer and "Traceback" not in answer


YAML = """
roles: {deployers: [U0ALICE], approvers: [U0BOB]}
services:
  shop:
    deployer: kubernetes
    namespace: shop
    rollout: shop
    channel: C0DEPLOYS
"""


@pytest.mark.slow
@pytest.mark.timeout(90)  # about 15 s: a worker process is killed and another takes over
async def test_a_worker_killed_mid_promotion_is_resumed_and_promotes_once(
    redis_url: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "opsloop.yml"
    config_file.write_text(YAML, encoding="utf-8")
    async with running_cluster(tmp_path) as kube:
        ARGO.set_up(kube)
        cfg = parse_config(yaml.safe_load(YAML))
        async with running_bot(redis_url, config=cfg, worker=False, **kube.env) as bot:
            first = start_worker(bot, kube, config_file, tmp_path / "worker-a.log")
            try:
                await canary(bot, kube, ARGO)
                kube.emu.ready_seconds = 4.0  # the 50% step's pods take a while
                await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
                await eventually(
                    lambda: kube.sent(STATUS, PROMOTE) == 1, within=20, what="the promote"
                )
            finally:
                stop(first)
            rollout = await bot.deps.store.deploys.load("shop")
            assert rollout is not None and rollout.state == "promoting", rollout

            second = start_worker(bot, kube, config_file, tmp_path / "worker-b.log")
            try:
                await says(bot, "2", "waiting for approval to go to 100%", within=40)
            finally:
                stop(second)
            assert ARGO.at(kube, 1) and kube.sent(STATUS, PROMOTE) == 1, "promoted once"
            promoted = [a for a in await actions(bot) if a == "deploy.promoted"]
            assert len(promoted) == 2  # 20% and 50%, each recorded once


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


async def test_the_same_version_deployed_again_after_a_reject_retries_the_old_abort(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        await canary(bot, kube, ARGO)
        await bot.driver.click("Reject", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "rolled back")
        await asyncio.sleep(1)  # Argo's abortedAt has whole seconds
        await bot.driver.command("/deploy", "shop 2", user="U0ALICE")
        await eventually(
            lambda: len([m for m in bot.emulator.messages(CHANNEL) if " 2 (" in m.text]) == 2,
            what="a second rollout of 2",
        )
        await eventually(lambda: ARGO.at(kube, 0), within=15, what="Argo at its first pause")
        await says(bot, "2", "waiting for approval to go to 50%")  # the newest message
        assert kube.patches(STATUS) == [ABORT, RETRY]


async def test_an_inconclusive_pause_during_a_step_fails_it_and_promote_goes_on_past_it(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        await canary(bot, kube, ARGO)
        kube.emu.ready_seconds = 3.0  # the 50% step's pods take a while
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await eventually(lambda: kube.sent(STATUS, PROMOTE) == 1, what="the promote")
        kube.emu.inconclusive("shop", "shop")  # Argo's analysis could not decide
        text = shown(await says(bot, "2", "failed going to 50%"))
        assert "its analysis was inconclusive" in text and "not an approval point" in text
        kube.emu.ready_seconds = 0.3

        await bot.driver.command("/deploy", "promote shop", user="U0ALICE")
        await says(bot, "2", "waiting for approval to go to 100%")
        assert ARGO.at(kube, 1)
        past = kube.patches(STATUS)[-1]
        assert past["status"]["pauseConditions"] is None
        assert past["status"]["controllerPause"] is False
