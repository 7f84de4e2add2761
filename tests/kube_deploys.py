"""Driving Kubernetes deploys through the bot: the two kinds of service (an Argo Rollout, a
plain Deployment) on the Kubernetes emulator, and what a person sees in Slack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config_file import AlertRoute, Alerts, OpsConfig, Roles
from integrations.kubernetes.config import KubernetesService
from tests.harness import BotUnderTest, running_bot
from tests.kube_cluster import Cluster, running_cluster
from tests.waiting import eventually

REPO = Path(__file__).resolve().parent.parent
CHANNEL = "C0DEPLOYS"
NS = "shop"
PROMOTE = {"status": {"pauseConditions": None}}
ABORT = {"status": {"abort": True}}
RETRY = {"status": {"abort": False}}


@dataclass(frozen=True)
class Kind:
    """One kind of `deployer: kubernetes` service, as the tests set it up and look at it."""

    name: str  # "argo" or "deployment"
    service: str

    def settings(self, **overrides: Any) -> KubernetesService:
        spec: dict[str, Any] = {
            "deployer": "kubernetes",
            "namespace": NS,
            "image": f"reg.example.com/{self.service}",
            "approvals": 1,
            "channel": CHANNEL,
            "alert_labels": {"service": self.service},
        }
        if self.name == "argo":
            spec["rollout"] = self.service
        else:
            spec.update(deployment=self.service, replicas=4, steps=[25, 50, 100])
        spec.update(overrides)
        return KubernetesService.model_validate(spec)

    def set_up(self, kube: Cluster, **kwargs: Any) -> None:
        image = f"reg.example.com/{self.service}:1"
        if self.name == "argo":  # 20%, pause, 50%, pause: steps [20, 50, 100]
            kube.emu.add_rollout(NS, self.service, image=image, replicas=4, **kwargs)
        else:
            kube.emu.add_deployment(NS, self.service, image=image, replicas=4, **kwargs)

    @property
    def percents(self) -> list[int]:
        return [20, 50, 100] if self.name == "argo" else [25, 50, 100]

    def at(self, kube: Cluster, step: int) -> bool:
        """The cluster stands where step `step` of the rollout of version 2 put it."""
        if self.name == "argo":
            status = kube.emu.object("Rollout", NS, self.service).get("status") or {}
            if step == 2:
                return status.get("phase") == "Healthy" and self.image(kube) == "2"
            reasons = [c.get("reason") for c in status.get("pauseConditions") or []]
            return "CanaryPauseStep" in reasons and status.get("currentStepIndex") == 2 * step + 1
        canary = self.deployment(kube, self.service + "-canary")
        stable = self.deployment(kube, self.service)
        if step == 2:
            return canary is None and _runs(stable, 4) and self.image(kube) == "2"
        return _runs(canary, [1, 2][step]) and _runs(stable, [3, 2][step])

    def promotions(self, kube: Cluster) -> int:
        """The writes that promoted the canary from its first step to its second."""
        if self.name == "argo":
            return kube.sent(f"*/rollouts/{self.service}/status", PROMOTE)
        return kube.sent(f"*/deployments/{self.service}-canary/scale", {"spec": {"replicas": 2}})

    def image(self, kube: Cluster) -> str:
        kind = "Rollout" if self.name == "argo" else "Deployment"
        obj = kube.emu.object(kind, NS, self.service)
        return str(obj["spec"]["template"]["spec"]["containers"][0]["image"]).rsplit(":", 1)[1]

    @staticmethod
    def deployment(kube: Cluster, name: str) -> dict[str, Any] | None:
        try:
            return kube.emu.object("Deployment", NS, name)
        except KeyError:
            return None


def _runs(deployment: dict[str, Any] | None, replicas: int) -> bool:
    if deployment is None:
        return False
    status = deployment.get("status") or {}
    return (
        deployment["spec"]["replicas"] == replicas
        and status.get("availableReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
    )


ARGO = Kind("argo", "shop")
DEPLOYMENT = Kind("deployment", "cart")
KINDS = [ARGO, DEPLOYMENT]


def config(kind: Kind, **overrides: Any) -> OpsConfig:
    return OpsConfig(
        # Alice deploys and also approves (so self-approval can be tried); Carol approves
        # through the S0ONCALL user group; Dave is neither.
        roles=Roles(deployers=["U0ALICE"], approvers=["U0ALICE", "U0BOB", "S0ONCALL"]),
        services={kind.service: kind.settings(**overrides)},
        alerts=Alerts(routes=[AlertRoute(channel="C0ALERTS")]),
    )


@asynccontextmanager
async def kube_bot(
    redis_url: str, tmp_path: Path, kind: Kind, cfg: OpsConfig | None = None, **env: Any
) -> AsyncIterator[tuple[BotUnderTest, Cluster]]:
    """The emulator with the kind's object, and the bot deploying to it."""
    async with running_cluster(tmp_path) as kube:
        kind.set_up(kube)
        async with running_bot(
            redis_url, config=cfg or config(kind), OPSLOOP_DEPLOY_STEP_TIMEOUT="20", **kube.env,
            **env,
        ) as bot:  # fmt: skip
            yield bot, kube


def deploy_messages(bot: BotUnderTest, version: str | None = None) -> list[Any]:
    return [
        m
        for m in bot.emulator.messages(CHANNEL)
        if m.text.startswith("Deploy ") and (version is None or f" {version} (" in m.text)
    ]


def shown(message: Any) -> str:
    return str(message.text) + json.dumps(message.blocks)


def live(bot: BotUnderTest, version: str) -> Any:
    return deploy_messages(bot, version)[-1]


def thread(bot: BotUnderTest, version: str) -> list[str]:
    return [r.text for r in bot.emulator.thread(CHANNEL, live(bot, version).ts)]


async def says(bot: BotUnderTest, version: str, words: str, within: float = 20) -> Any:
    await eventually(
        lambda: deploy_messages(bot, version) and words in shown(live(bot, version)),
        within=within,
        what=f"the deploy message of {version} to say {words!r}",
    )
    return live(bot, version)


async def told(bot: BotUnderTest, user: str, words: str, within: float = 15) -> str:
    found = await eventually(
        lambda: [e.text for e in bot.emulator.ephemerals(user=user) if words in e.text],
        within=within,
        what=f"{user} to be told {words!r}",
    )
    return str(found[-1])


async def actions(bot: BotUnderTest) -> list[str]:
    return [e.action for e in reversed(await bot.deps.store.audit_recent(200))]


async def canary(bot: BotUnderTest, kube: Cluster, kind: Kind) -> Any:
    """`/deploy <service> 2` by Alice, until its first step waits for approval."""
    await bot.driver.command("/deploy", f"{kind.service} 2", user="U0ALICE")
    message = await says(bot, "2", f"waiting for approval to go to {kind.percents[1]}%")
    assert kind.at(kube, 0)
    return message


def start_worker(
    bot: BotUnderTest, kube: Cluster, config_file: Path, log: Path
) -> subprocess.Popen[bytes]:
    """`opsloop worker` as a process of its own, on the bot's Redis, Slack and cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSLOOP_", "SLACK_"))}
    env.update(
        {k: str(v) for k, v in kube.env.items()},
        SLACK_BOT_TOKEN=bot.emulator.bot_token,
        OPSLOOP_SLACK_API_URL=bot.emulator.api_url,
        OPSLOOP_REDIS_URL=bot.settings.redis_url or "",
        OPSLOOP_CONFIG_FILE=str(config_file),
        OPSLOOP_DEPLOY_LEASE_SECONDS="2",
        PYTHONPATH=str(REPO),
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"], env=env, stdout=out, stderr=out, cwd=REPO
        )
