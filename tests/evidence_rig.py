"""A canary with evidence, for every deployer the tests drive through the bot: a real
Prometheus scraping an exporter the test controls, and the bot deploying version 2 of a
service whose stable version is 1, until the canary's first step waits for approval.

    async with evidence_canary(redis_url, tmp_path, "gitlab", approvals=2) as rig:
        rig.set("error_rate", canary=0.04, stable=0.02)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config_file import OpsConfig, Roles
from integrations.gitlab.config import GitLabService
from tests.harness import BotUnderTest, gitlab_env, running_bot, running_gitlab
from tests.kube_deploys import ARGO, DEPLOYMENT, Kind, canary, kube_bot, says
from tests.kube_deploys import config as kube_config
from tests.metrics_exporter import Exporter, running_exporter
from tests.prometheus_server import PrometheusServer, prometheus_binary
from tests.servers import missing
from tests.test_deploys_gitlab import JOBS
from tests.waiting import eventually

CHANNEL = "C0DEPLOYS"  # tests/kube_deploys.py's too
METRICS = {"error_rate": "app_error_ratio", "p99_seconds": "app_p99_seconds"}
QUERIES = {
    name: f'max({metric}{{service="$service",version="$version"}})'
    for name, metric in METRICS.items()
}


@dataclass
class Values:
    """What the exporter says of the service's versions."""

    service: str
    exporter: Exporter

    def set(self, query: str, *, canary: float | None = None, stable: float | None = None) -> None:
        """What the exporter says of `query`'s metric for version 2 (canary) and 1 (stable)."""
        for version, value in (("2", canary), ("1", stable)):
            if value is not None:
                self.exporter.set(METRICS[query], value, service=self.service, version=version)

    def healthy(self) -> None:
        self.set("error_rate", canary=0.021, stable=0.02)
        self.set("p99_seconds", canary=0.26, stable=0.25)


@dataclass
class Rig(Values):
    bot: BotUnderTest
    prometheus: PrometheusServer


Canary = Callable[..., AbstractAsyncContextManager[tuple[BotUnderTest, str]]]


@asynccontextmanager
async def _gitlab(
    redis_url: str, tmp_path: Path, analysis: dict[str, Any], approvals: int, env: dict[str, Any]
) -> AsyncIterator[tuple[BotUnderTest, str]]:
    service = GitLabService.model_validate(
        {
            "deployer": "gitlab",
            "project": "acme/api",
            "ref": "main",
            "steps": [{"percent": 10, "job": "canary"}, {"percent": 100, "job": "production"}],
            "rollback_job": "rollback",
            "channel": CHANNEL,
            "approvals": approvals,
            "analysis": analysis,
        }
    )
    roles = Roles(deployers=["U0ALICE"], approvers=["U0BOB", "U0CAROL"])
    cfg = OpsConfig(roles=roles, services={"api": service})
    async with running_gitlab() as gitlab:
        gitlab.pipeline_step_seconds = 0.05
        gitlab.set_pipeline_jobs("acme/api", JOBS)
        async with running_bot(
            redis_url, config=cfg, OPSLOOP_DEPLOY_POLL_SECONDS="0.1", **gitlab_env(gitlab), **env
        ) as bot:
            # GitLab cannot say what runs: version 1, deployed through opsloop, is stable.
            await bot.driver.command("/deploy", "api 1", user="U0ALICE")
            await says(bot, "1", "waiting for approval to go to 100%")
            for approver in ("U0BOB", "U0CAROL")[:approvals]:
                await bot.driver.click("Approve", user=approver, channel=CHANNEL)
            await says(bot, "1", "complete")
            await bot.driver.command("/deploy", "api 2", user="U0ALICE")
            await says(bot, "2", "waiting for approval to go to 100%")
            yield bot, "api"


def _kubernetes(kind: Kind) -> Canary:
    @asynccontextmanager
    async def canary_of(
        redis_url: str,
        tmp_path: Path,
        analysis: dict[str, Any],
        approvals: int,
        env: dict[str, Any],
    ) -> AsyncIterator[tuple[BotUnderTest, str]]:
        cfg = kube_config(kind, approvals=approvals, analysis=analysis)
        async with kube_bot(redis_url, tmp_path, kind, cfg, **env) as (bot, kube):
            await canary(bot, kube, kind)
            yield bot, kind.service

    return canary_of


@asynccontextmanager
async def _docker(
    redis_url: str, tmp_path: Path, analysis: dict[str, Any], approvals: int, env: dict[str, Any]
) -> AsyncIterator[tuple[BotUnderTest, str]]:
    from tests.test_deploys import config as docker_config

    cfg = docker_config(approvals=approvals, analysis=analysis)
    async with running_bot(redis_url, config=cfg, OPSLOOP_DEPLOY_STEP_TIMEOUT="60", **env) as bot:
        # The first deploy runs at full size with no approval: then 1 is stable.
        await bot.driver.command("/deploy", "web 1", user="U0ALICE")
        await says(bot, "1", "complete", within=60)
        await bot.driver.command("/deploy", "web 2", user="U0ALICE")
        await says(bot, "2", "waiting for approval to go to 50%", within=60)
        yield bot, "web"


DEPLOYERS: dict[str, Canary] = {
    "gitlab": _gitlab,
    "kubernetes": _kubernetes(DEPLOYMENT),
    "argo": _kubernetes(ARGO),
    "docker": _docker,
}
SERVICES = {
    "gitlab": "api",
    "kubernetes": DEPLOYMENT.service,
    "argo": ARGO.service,
    "docker": "web",
}


@asynccontextmanager
async def evidence_canary(
    redis_url: str,
    tmp_path: Path,
    deployer: str,
    *,
    approvals: int = 1,
    analysis: dict[str, Any] | None = None,
    before: Callable[[Values], None] = Values.healthy,
    env: dict[str, Any] | None = None,
) -> AsyncIterator[Rig]:
    """Version 2 of the deployer's service waiting for approval at its first step, measured
    by a real Prometheus every second; `before` sets the exporter's values first."""
    binary = prometheus_binary()
    if binary is None:
        missing("prometheus is not installed (apt-get install prometheus)")
    assert binary is not None
    prometheus = PrometheusServer(binary, tmp_path / "prometheus")
    prometheus.directory.mkdir()
    service = SERVICES[deployer]
    try:
        async with running_exporter() as exporter:
            before(Values(service, exporter))
            prometheus.start(target=exporter.target, rule_files=[])
            await eventually(
                lambda: prometheus.query("up == 1"), within=20, what="Prometheus's first scrape"
            )
            settings = {
                "OPSLOOP_PROMETHEUS_URL": prometheus.url,
                "OPSLOOP_EVIDENCE_SECONDS": "1",
                **(env or {}),
            }
            spec = {"queries": QUERIES, "max_regression": "20%", **(analysis or {})}
            canary_of = DEPLOYERS[deployer]
            async with canary_of(redis_url, tmp_path, spec, approvals, settings) as (bot, _):
                yield Rig(service, exporter, bot, prometheus)
    finally:
        prometheus.stop()
