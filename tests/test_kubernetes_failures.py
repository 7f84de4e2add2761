"""When the cluster answers badly: a conflict retried on a fresh read, a server error retried,
watching refused (polled instead) or expired (410, listed again), and an API server that does
not answer said to the person within 30 seconds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from integrations.kubernetes.client import MERGE_PATCH, KubeClient
from integrations.kubernetes.errors import ROLLOUT
from integrations.kubernetes.watching import wait_for
from tests.harness import running_bot
from tests.kube_cluster import running_cluster
from tests.kube_deploys import ARGO, CHANNEL, PROMOTE, canary, config, kube_bot, says, told


async def test_a_conflict_is_retried_on_a_fresh_read_and_a_server_error_again(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        kube.emu.fail(409, times=1, path="*/rollouts/shop", method="PATCH")
        kube.emu.fail(503, times=2, path="*/rollouts/shop/status", method="PATCH")
        await canary(bot, kube, ARGO)
        images = kube.emu.requests_to("*/rollouts/shop", "PATCH")
        assert [r.status for r in images] == [409, 200]
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "2", "waiting for approval to go to 100%")
        promotes = kube.emu.requests_to("*/rollouts/shop/status", "PATCH")
        assert [r.status for r in promotes] == [503, 503, 200]
        assert kube.sent("*/rollouts/shop/status", PROMOTE) == 3  # one promote, sent 3 times


async def test_without_watch_the_rollout_is_followed_by_polling(
    redis_url: str, tmp_path: Path
) -> None:
    async with kube_bot(redis_url, tmp_path, ARGO) as (bot, kube):
        kube.emu.deny(verb="watch", resource="rollouts", namespace="shop")
        await canary(bot, kube, ARGO)
        assert kube.emu.requests_to("*/rollouts", "GET"), "listed, then polled"


async def test_a_watch_from_a_forgotten_version_lists_again(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as kube:
        ARGO.set_up(kube)
        client = KubeClient(kube.kubeconfig)

        def labelled(obj: dict[str, Any] | None) -> bool | None:
            labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
            return True if labels.get("seen") == "yes" else None

        async def change_later() -> None:
            await asyncio.sleep(1.5)  # the list is done, the watch is held on its way in
            body = {"metadata": {"labels": {"seen": "yes"}}}
            await client.patch(ROLLOUT, "shop", "shop", body, content_type=MERGE_PATCH)
            kube.emu.compact()  # so it asks from a forgotten resourceVersion: 410 Gone

        kube.emu.hold("*/namespaces/shop/rollouts", 1.0, method="GET")
        try:
            changing = asyncio.create_task(change_later())
            waited = await wait_for(client, ROLLOUT, "shop", "shop", labelled, within=10)
            await changing
        finally:
            await client.close()
        assert waited.result is True
        reads = kube.emu.requests_to("*/namespaces/shop/rollouts", "GET")
        lists = [r for r in reads if "watch" not in r.query]
        assert len(lists) == 2 and len(reads) == 3, [(r.query, r.status) for r in reads]


@pytest.mark.timeout(60)
async def test_an_api_server_that_does_not_answer_is_said_within_30_seconds(
    redis_url: str, tmp_path: Path
) -> None:
    async with running_cluster(tmp_path) as kube:
        env = kube.env  # a kubeconfig for a server that stops answering once this block ends
    async with running_bot(redis_url, config=config(ARGO), **env) as bot:
        started = time.monotonic()
        await bot.driver.command("/deploy", "shop 2", user="U0ALICE")
        answer = await told(bot, "U0ALICE", "unreachable", within=40)
        assert time.monotonic() - started < 30
        assert "Kubernetes" in answer and "127.0.0.1" in answer and "Traceback" not in answer


async def test_refused_credentials_are_said_and_a_renewed_kubeconfig_is_read_again(
    redis_url: str, tmp_path: Path
) -> None:
    async with running_cluster(tmp_path) as kube:
        ARGO.set_up(kube)
        kube.emu.kubeconfig(kube.kubeconfig, token="expired-token")
        async with running_bot(redis_url, config=config(ARGO), **kube.env) as bot:
            await bot.driver.command("/deploy", "shop 2", user="U0ALICE")
            answer = await told(bot, "U0ALICE", "401")
            assert "refused opsloop's credentials (401 Unauthorized)" in answer
            assert "expired-token" not in answer
            # An exec plugin's token renewed in the file, as `aws eks get-token` would.
            kube.emu.kubeconfig(kube.kubeconfig)
            await canary(bot, kube, ARGO)
