"""`/deploy checkout 2.0` on a Flagger service with `image`: opsloop reads the Canary in the
(emulated) cluster, sets its target Deployment's image, and Flagger's next approval request
is the requester's, so another approver must approve it. Without `image` or a cluster it says
how to start the canary by hand; the cluster's refusals reach the person naming the object."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from integrations.kubernetes.client import JSON_PATCH, KubeClient
from integrations.kubernetes.errors import DEPLOYMENT as DEPLOYMENTS
from tests.harness import BotUnderTest
from tests.kube_cluster import Cluster, running_cluster
from tests.test_alerts_alertmanager import run_the_same_job_again
from tests.test_deploys import told as told_within
from tests.test_flagger_gate import CHANNEL, TOKEN, config, gate, gate_bot, opened, says, told
from tests.test_flagger_setup import CONTRACT_EXAMPLE, opsloop_check

IMAGE = "registry.example.com/acme/checkout"
TARGET = "*/namespaces/shop/deployments/checkout"
NEW = f"{IMAGE}:2.0"


@asynccontextmanager
async def flagger_cluster(
    redis_url: str, tmp_path: Path, *, canary: bool = True, **service: Any
) -> AsyncIterator[tuple[BotUnderTest, Cluster]]:
    """The bot gating Canary shop/checkout, whose target is Deployment shop/checkout (with a
    sidecar beside the app's container, so the container is found by its image)."""
    service.setdefault("image", IMAGE)
    async with running_cluster(tmp_path) as kube:
        kube.emu.add_deployment("shop", "checkout", image=f"{IMAGE}:1.0")
        if canary:
            kube.emu.add_canary("shop", "checkout", target="checkout")
        async with gate_bot(redis_url, config(**service), **kube.env) as bot:
            yield bot, kube


def image_of(kube: Cluster, container: str = "app") -> str:
    template = kube.emu.object("Deployment", "shop", "checkout")["spec"]["template"]
    [found] = [c for c in template["spec"]["containers"] if c["name"] == container]
    return str(found["image"])


async def audited(bot: BotUnderTest, action: str) -> list[Any]:
    return [e for e in await bot.deps.store.audit_recent(200) if e.action == action]


async def test_deploy_sets_the_targets_image_once_and_the_requester_may_not_approve(
    redis_url: str, tmp_path: Path
) -> None:
    async with flagger_cluster(redis_url, tmp_path) as (bot, kube):
        await bot.driver.command("/deploy", "checkout 2.0", user="U0ALICE", channel=CHANNEL)
        said = await told_within(bot, "U0ALICE", "Set Deployment shop/checkout")
        assert f"`{IMAGE}:2.0`" in said and "container `app`" in said
        assert f"will appear in <#{CHANNEL}> when Flagger calls its gate" in said
        assert "another approver must approve it" in said
        assert image_of(kube) == f"{IMAGE}:2.0"
        patch = [
            {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "app"},
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/image",
                "value": f"{IMAGE}:2.0",
            },
        ]
        assert kube.patches(TARGET) == [patch]
        assert kube.emu.requests_to("*/canaries/checkout", "GET"), "the Canary was read"

        await run_the_same_job_again(bot, redis_url, "slash")
        assert kube.patches(TARGET) == [patch], "a re-run sends no second patch"
        [requested] = await audited(bot, "deploy.requested")
        assert requested.who == "U0ALICE" and requested.subject == "checkout 2.0"
        assert bot.emulator.messages(CHANNEL) == [], "Flagger, not /deploy, opens the request"

        # Flagger saw the new pod spec: its next checksum is Alice's request.
        message = await opened(bot, checksum="2f00aa")
        await says(bot, "<@U0ALICE>")
        await bot.driver.click("Approve", user="U0ALICE", channel=CHANNEL)
        await told(bot, "U0ALICE", "You started this rollout, so you may not approve it")
        assert await gate(bot, checksum="2f00aa") == 403
        await bot.driver.click("Approve", user="U0BOB", channel=CHANNEL)
        await says(bot, "the gate is open")
        assert await gate(bot, checksum="2f00aa") == 200
        assert "<@U0ALICE>" in message.text + json.dumps(message.blocks)

        # The request after it is Flagger's own again: Alice may approve that one.
        await opened(bot, checksum="3e11bb")
        await bot.driver.click("Approve", user="U0ALICE", channel=CHANNEL)
        await says(bot, "the gate is open")
        assert await gate(bot, checksum="3e11bb") == 200


async def test_the_requester_may_reject_their_own_request(redis_url: str, tmp_path: Path) -> None:
    async with flagger_cluster(redis_url, tmp_path) as (bot, _):
        await bot.driver.command("/deploy", "checkout 2.0", user="U0ALICE", channel=CHANNEL)
        await told_within(bot, "U0ALICE", "Set Deployment shop/checkout")
        await opened(bot, checksum="2f00aa")
        await bot.driver.click("Reject", user="U0ALICE", channel=CHANNEL)
        await says(bot, "rejected")
        assert await gate(bot, checksum="2f00aa") == 403


async def test_the_container_is_the_one_running_the_image_else_they_are_named(
    redis_url: str, tmp_path: Path
) -> None:
    async with running_cluster(tmp_path) as kube:
        kube.emu.add_deployment("shop", "checkout", image="envoyproxy/envoy:v1.30")
        outside = KubeClient(kube.kubeconfig)  # as a person's `kubectl patch` would
        try:
            sidecar = {"name": "web", "image": f"{IMAGE}:1.0"}
            add = [{"op": "add", "path": "/spec/template/spec/containers/-", "value": sidecar}]
            await outside.patch(DEPLOYMENTS, "shop", "checkout", add, content_type=JSON_PATCH)
        finally:
            await outside.close()
        kube.emu.add_canary("shop", "checkout", target="checkout")
        async with gate_bot(redis_url, config(image=IMAGE), **kube.env) as bot:
            await bot.driver.command("/deploy", "checkout 2.1", user="U0ALICE", channel=CHANNEL)
            said = await told_within(bot, "U0ALICE", "Set Deployment shop/checkout")
            assert "container `web`" in said
            assert image_of(kube, "web") == f"{IMAGE}:2.1"
            assert image_of(kube, "app") == "envoyproxy/envoy:v1.30"
        other = "registry.example.com/acme/other"
        async with gate_bot(redis_url, config(image=other), **kube.env) as bot:
            await bot.driver.command("/deploy", "checkout 3", user="U0ALICE", channel=CHANNEL)
            said = await told_within(bot, "U0ALICE", "cannot tell which one /deploy sets")
            assert "Deployment shop/checkout has 2 containers" in said
            assert f"app (envoyproxy/envoy:v1.30), web ({IMAGE}:2.1)" in said
            assert f"none runs {other}" in said


async def test_without_image_deploy_says_how_and_names_what_is_missing(
    redis_url: str, tmp_path: Path
) -> None:
    async with flagger_cluster(redis_url, tmp_path, image=None) as (bot, kube):
        await bot.driver.command("/deploy", "checkout 2.0", user="U0ALICE", channel=CHANNEL)
        said = await told_within(bot, "U0ALICE", "Flagger starts it")
        assert "the service has no `image:`" in said and "kubectl -n shop set image" in said
        assert kube.patches(TARGET) == [] and not kube.emu.requests_to("*/canaries/*", "GET")
        await opened(bot)
        await bot.driver.click("Approve", user="U0ALICE", channel=CHANNEL)
        await says(bot, "the gate is open")  # nobody asked through opsloop: Flagger did


async def test_without_a_cluster_deploy_says_how_and_names_what_is_missing(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing names a cluster: no OPSLOOP_KUBECONFIG, no pod, no KUBECONFIG, no ~/.kube/config.
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    async with gate_bot(redis_url, config(image=IMAGE)) as bot:
        await bot.driver.command("/deploy", "checkout 2.0", user="U0ALICE", channel=CHANNEL)
        said = await told_within(bot, "U0ALICE", "Flagger starts it")
        assert "no Kubernetes cluster is configured" in said and "OPSLOOP_KUBECONFIG" in said
        assert f"{IMAGE}:2.0" in said
        assert not await audited(bot, "deploy.requested")


async def test_a_missing_canary_is_named_and_the_next_request_stays_flaggers(
    redis_url: str, tmp_path: Path
) -> None:
    async with flagger_cluster(redis_url, tmp_path, canary=False) as (bot, kube):
        started = time.monotonic()
        await bot.driver.command("/deploy", "checkout 2.0", user="U0ALICE", channel=CHANNEL)
        said = await told_within(bot, "U0ALICE", "Canary shop/checkout was not found (404)")
        assert "Kubernetes" in said and time.monotonic() - started < 30
        assert kube.patches(TARGET) == []
        await opened(bot)  # nothing changed, so nothing makes Flagger's request Alice's
        await bot.driver.click("Approve", user="U0ALICE", channel=CHANNEL)
        await says(bot, "the gate is open")


async def test_a_refused_patch_names_the_verb(redis_url: str, tmp_path: Path) -> None:
    async with flagger_cluster(redis_url, tmp_path) as (bot, kube):
        kube.emu.deny(verb="patch", resource="deployments", namespace="shop")
        await bot.driver.command("/deploy", "checkout 2.0", user="U0ALICE", channel=CHANNEL)
        said = await told_within(bot, "U0ALICE", "opsloop may not patch Deployment shop/checkout")
        assert "(403 Forbidden)" in said and "`patch` on `deployments`" in said
        assert image_of(kube) == f"{IMAGE}:1.0"


async def test_a_missing_target_is_named(redis_url: str, tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as kube:
        kube.emu.add_canary("shop", "checkout", target="gone")
        async with gate_bot(redis_url, config(image=IMAGE), **kube.env) as bot:
            await bot.driver.command("/deploy", "checkout 2.0", user="U0ALICE", channel=CHANNEL)
            await told_within(bot, "U0ALICE", "Deployment shop/gone was not found (404)")


async def test_opsloop_check_says_which_target_deploy_sets_and_whether_it_may(
    redis_url: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "opsloop.yml"
    config_file.write_text(CONTRACT_EXAMPLE, encoding="utf-8")
    async with running_cluster(tmp_path) as kube:
        kube.emu.add_deployment("shop", "checkout", image=f"{IMAGE}:1.0")
        kube.emu.add_canary("shop", "checkout", target="checkout")
        env = {"OPSLOOP_FLAGGER_WEBHOOK_TOKEN": TOKEN, "OPSLOOP_KUBECONFIG": str(kube.kubeconfig)}
        _, out = await asyncio.to_thread(opsloop_check, redis_url, config_file, **env)
        [line] = [x for x in out.splitlines() if "flagger" in x]
        assert line.startswith("ok"), out
        assert "/deploy sets the image of Deployment shop/checkout" in line

        kube.emu.deny(verb="patch", resource="deployments", namespace="shop")
        code, out = await asyncio.to_thread(opsloop_check, redis_url, config_file, **env)
        [line] = [x for x in out.splitlines() if "flagger" in x]
        assert code != 0 and line.startswith("FAIL"), out
        assert "may not patch Deployment shop/checkout" in line
