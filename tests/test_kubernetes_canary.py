"""A plain Deployment deployed through the bot: the canary Deployment of the Kubernetes docs'
canary pattern, made, scaled, restored after drift and removed by opsloop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.deploys.service import DeployService
from integrations.kubernetes.client import KubeClient
from integrations.kubernetes.errors import DEPLOYMENT as DEPLOYMENTS
from tests.harness import running_bot
from tests.kube_cluster import running_cluster
from tests.kube_deploys import (
    CHANNEL,
    DEPLOYMENT,
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


async def test_the_canary_copies_the_stable_pods_with_track_canary_and_goes_at_the_end(
    redis_url: str, tmp_path: Path
) -> None:
    cfg = config(DEPLOYMENT, replicas=None)  # the size is the stable Deployment's: 4
    async with kube_bot(redis_url, tmp_path, DEPLOYMENT, cfg) as (bot, kube):
        message = await canary(bot, kube, DEPLOYMENT)
        made = kube.emu.object("Deployment", "shop", "cart-canary")
        assert made["metadata"]["labels"]["track"] == "canary"
        assert "ownerReferences" not in made["metadata"], "owned by nothing"
        assert made["spec"]["selector"]["matchLabels"] == {"app": "cart", "track": "canary"}
        template = made["spec"]["template"]
        assert template["metadata"]["labels"] == {"app": "cart", "track": "canary"}
        assert template["spec"]["containers"][0]["image"] == "reg.example.com/cart:2"
        stable = kube.emu.object("Deployment", "shop", "cart")
        assert stable["spec"]["selector"]["matchLabels"] == {"app": "cart"}, "the Service's"
        text = shown(message)
        assert "cart-canary" in text and "1 of 1 pods available" in text
        assert "3 of 3 pods available" in text

        for user in ("U0BOB", "U0CAROL"):
            await bot.driver.click("Approve", user=user, channel=CHANNEL)
            await says(bot, "2", "to 100%" if user == "U0BOB" else "complete")
        assert DEPLOYMENT.at(kube, 2), "the stable Deployment runs 2 at full size"
        assert DEPLOYMENT.deployment(kube, "cart-canary") is None
        rollout = await bot.deps.store.deploys.load("cart")
        assert rollout is not None and rollout.size == 4


async def test_an_awaiting_rollout_whose_canary_was_deleted_is_restored_by_reconcile(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, DEPLOYMENT) as (bot, kube):
        await canary(bot, kube, DEPLOYMENT)
        outside = KubeClient(kube.kubeconfig)  # as a person's `kubectl delete` would
        try:
            assert await outside.delete(DEPLOYMENTS, "shop", "cart-canary")
        finally:
            await outside.close()
        assert DEPLOYMENT.deployment(kube, "cart-canary") is None
        await DeployService(bot.deps).reconcile()  # what a restarted worker runs first
        await eventually(lambda: DEPLOYMENT.at(kube, 0), within=15, what="the canary back")
        assert "waiting for approval to go to 50%" in shown(await says(bot, "2", "Approve"))


async def test_a_step_job_run_again_mid_step_changes_nothing_twice(
    redis_url: str, tmp_path: Path
) -> None:
    env = {"OPSLOOP_DEPLOY_LEASE_SECONDS": "3"}
    async with kube_bot(redis_url, tmp_path, DEPLOYMENT, **env) as (bot, kube):
        await canary(bot, kube, DEPLOYMENT)
        kube.emu.ready_seconds = 2.0  # the 50% step's pods take a while
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await eventually(
            lambda: DEPLOYMENT.promotions(kube) == 1, within=10, what="the step under way"
        )
        rollout = await bot.deps.store.deploys.load("cart")
        assert rollout is not None and rollout.state == "promoting"
        await DeployService(bot.deps).reconcile()  # a second step job, while the first runs
        await says(bot, "2", "waiting for approval to go to 100%")
        await asyncio.sleep(2)  # the second job has run by now
        assert DEPLOYMENT.at(kube, 1) and DEPLOYMENT.promotions(kube) == 1
        assert [r for r in thread(bot, "2") if r.startswith(":arrow_up:")] != []
        assert (await actions(bot)).count("deploy.promoted") == 2  # 25% and 50%, once each


async def test_a_refused_create_reaches_the_person_naming_the_verb(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, DEPLOYMENT) as (bot, kube):
        kube.emu.deny(verb="create", resource="deployments", namespace="shop")
        await bot.driver.command("/deploy", "cart 2", user="U0ALICE")
        text = shown(await says(bot, "2", "failed"))
        assert "opsloop may not create Deployment shop/cart-canary (403 Forbidden)" in text
        assert "`create` on `deployments`" in text
        assert (
            DEPLOYMENT.at(kube, 2) is False and DEPLOYMENT.deployment(kube, "cart-canary") is None
        )


async def test_a_canary_whose_pods_never_come_up_fails_with_kubernetes_words_and_retries(
    redis_url: str, tmp_path: Path
) -> None:
    async with running_cluster(tmp_path) as kube:
        DEPLOYMENT.set_up(kube, progress_deadline_seconds=100)  # 1 s at the emulator's scale
        kube.emu.fail_image("reg.example.com/cart:2")
        async with running_bot(redis_url, config=config(DEPLOYMENT), **kube.env) as bot:
            await bot.driver.command("/deploy", "cart 2", user="U0ALICE")
            text = shown(await says(bot, "2", "failed going to 25%"))
            assert "Deployment shop/cart-canary is not progressing" in text
            assert "ProgressDeadlineExceeded" in text
            stable = DEPLOYMENT.deployment(kube, "cart")
            assert stable is not None and stable["status"]["availableReplicas"] == 4

            kube.emu.failing_images.discard("reg.example.com/cart:2")  # the image is fixed
            await bot.driver.command("/deploy", "promote cart", user="U0ALICE")
            await says(bot, "2", "waiting for approval to go to 50%")
            assert DEPLOYMENT.at(kube, 0)


async def test_a_missing_deployment_reaches_the_person_naming_it(
    redis_url: str, tmp_path: Path
) -> None:
    gone = config(DEPLOYMENT, deployment="gone")
    async with kube_bot(redis_url, tmp_path, DEPLOYMENT, gone) as (bot, _):
        await bot.driver.command("/deploy", "cart 2", user="U0ALICE")
        answer = await told(bot, "U0ALICE", "was not found")
        assert "Deployment shop/gone was not found (404)" in answer and "Traceback" not in answer
