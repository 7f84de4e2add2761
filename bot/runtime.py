"""One process's wiring: Redis (embedded or not), the store, the queue, Slack, the jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.config_file import OpsConfig
from bot.deps import Deps
from bot.embedded_redis import EmbeddedRedis
from bot.job_queue import JobQueue
from bot.jobs import JobContext, JobRegistry
from bot.metrics import Metrics
from bot.redis_conn import connect, describe
from bot.settings import Settings
from bot.slack_out import FLUSH_JOB, SlackOut
from bot.store import Store
from integrations.alertmanager import AlertmanagerClient
from integrations.docker import ContainerEngine
from integrations.gitlab import GitLabClient

log = logging.getLogger(__name__)


async def _flush_slack_update(job: JobContext, payload: dict[str, Any]) -> None:
    """The job SlackOut.request_update queues: send a message's newest pending state."""
    await job.deps.slack.flush_update(
        payload["channel"], payload["ts"], owner=job.job_id, attempt=job.attempt
    )


def build_registry() -> JobRegistry:
    """Every job the bot knows: the core ones and each command family's."""
    from commands import FAMILIES

    registry = JobRegistry()
    registry.add(FLUSH_JOB, _flush_slack_update)
    for family in FAMILIES:
        family.register_jobs(registry)
    return registry


@dataclass
class Runtime:
    """The process's Deps, the jobs its workers run, and what must be stopped at the end."""

    deps: Deps
    jobs: JobRegistry
    redis_url: str
    embedded: EmbeddedRedis | None

    @classmethod
    def start(
        cls, settings: Settings, config: OpsConfig, *, client: AsyncWebClient | None = None
    ) -> Runtime:
        """Connect everything (starting the embedded Redis when no URL is set)."""
        from commands import FAMILIES

        embedded = None
        url = settings.redis_url
        if url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            url = embedded.start()
        log.info("Redis: %s", describe(url))
        store = Store(connect(url))
        metrics = Metrics()
        if client is None:
            client = AsyncWebClient(
                token=settings.secret("slack_bot_token"),
                base_url=settings.slack_api_base,
                timeout=10,
            )
        queue = JobQueue(store)
        slack = SlackOut(
            client,
            store,
            metrics,
            queue,
            channel_rate=settings.channel_rate,
            channel_burst=settings.channel_burst,
        )
        alertmanager = (
            AlertmanagerClient(settings.alertmanager_url) if settings.alertmanager_url else None
        )
        gitlab_token = settings.secret("gitlab_token")
        gitlab = (
            GitLabClient(
                settings.gitlab_url,
                gitlab_token,
                timeout=min(10.0, settings.gitlab_call_seconds / 2),
                budget=settings.gitlab_call_seconds,
            )
            if settings.gitlab_url and gitlab_token
            else None
        )
        deps = Deps(
            settings=settings,
            config=config,
            store=store,
            queue=queue,
            slack=slack,
            metrics=metrics,
            commands=[f.HELP for f in FAMILIES],
            alertmanager=alertmanager,
            gitlab=gitlab,
            docker=(
                ContainerEngine(settings.docker_host)
                if any(s.deployer == "docker" for s in config.services.values())
                else None
            ),
        )
        return cls(deps=deps, jobs=build_registry(), redis_url=url, embedded=embedded)

    async def close(self) -> None:
        try:
            if self.deps.alertmanager is not None:
                await self.deps.alertmanager.close()
            if isinstance(self.deps.gitlab, GitLabClient):
                await self.deps.gitlab.close()
            if self.deps.docker is not None:
                await self.deps.docker.close()
            await self.deps.store.close()
        finally:
            if self.embedded is not None:
                self.embedded.stop()
