"""One process's wiring: Redis (embedded or not), the store, the queue, Slack, the jobs, and
the configured outside systems (integrations.PLUGINS) as the capabilities in Deps."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.config_file import OpsConfig
from bot.deps import Deps
from bot.embedded_redis import EmbeddedRedis
from bot.job_queue import JobQueue
from bot.jobs import JobContext, JobRegistry
from bot.metrics import Metrics
from bot.plugins import Plugin, Systems
from bot.redis_conn import connect, describe
from bot.settings import Settings
from bot.slack_out import FLUSH_JOB, SlackOut
from bot.store import Store
from integrations import PLUGINS

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
        cls,
        settings: Settings,
        config: OpsConfig,
        *,
        client: AsyncWebClient | None = None,
        plugins: Sequence[Plugin] = PLUGINS,
    ) -> Runtime:
        """Connect everything (starting the embedded Redis when no URL is set) and start the
        systems of `plugins` that are configured."""
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
        systems = Systems.start(settings, config, plugins)
        analysed = sorted(n for n, s in config.services.items() if s.analysis is not None)
        if analysed and systems.measures is None:
            log.warning(
                "services %s have `analysis`, but OPSLOOP_PROMETHEUS_URL is unset: their "
                "approvals carry no evidence",
                ", ".join(analysed),
            )
        deps = Deps(
            settings=settings,
            config=config,
            store=store,
            queue=queue,
            slack=slack,
            metrics=metrics,
            commands=[f.HELP for f in FAMILIES],
            tasks=systems.tasks,
            ci=systems.ci,
            deployers=systems.deployers(),
            silencer=systems.silencer,
            silencers=systems.silencers,
            measures=systems.measures,
            annotator=systems.annotator,
            systems=systems,
        )
        return cls(deps=deps, jobs=build_registry(), redis_url=url, embedded=embedded)

    async def close(self) -> None:
        try:
            await self.deps.systems.close()
            await self.deps.store.close()
        finally:
            if self.embedded is not None:
                self.embedded.stop()
