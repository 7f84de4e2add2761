"""One process's wiring: Redis (embedded or not), the store, the queue, Slack, the jobs, and
the configured outside systems (integrations.PLUGINS) as the capabilities in Deps."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot import slack_out
from bot.config_file import OpsConfig
from bot.deps import Deps
from bot.embedded_redis import EmbeddedRedis
from bot.jobs import JobQueue, JobRegistry
from bot.metrics import Metrics
from bot.plugins import Plugin, Systems
from bot.redis_conn import connect, describe
from bot.settings import Settings
from bot.slack_out import SlackOut
from bot.store import Store
from integrations import PLUGINS

log = logging.getLogger(__name__)


def build_registry() -> JobRegistry:
    """Every job the bot knows: the core ones and each command family's."""
    from commands import FAMILIES

    registry = JobRegistry()
    slack_out.register_jobs(registry)
    for family in FAMILIES:
        family.register_jobs(registry)
    return registry


@dataclass
class Runtime:
    """The process's Deps plus what must be stopped at the end."""

    deps: Deps
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
        slack = SlackOut(
            client,
            store,
            metrics,
            channel_rate=settings.channel_rate,
            channel_burst=settings.channel_burst,
        )
        queue = JobQueue(store)
        slack.attach_queue(queue)
        systems = Systems.start(settings, config, plugins)
        deps = Deps(
            settings=settings,
            config=config,
            store=store,
            queue=queue,
            slack=slack,
            metrics=metrics,
            jobs=build_registry(),
            commands=[f.HELP for f in FAMILIES],
            tasks=systems.tasks,
            ci=systems.ci,
            deployers=systems.deployers(),
            silencer=systems.silencer,
            systems=systems,
        )
        return cls(deps=deps, redis_url=url, embedded=embedded)

    async def close(self) -> None:
        try:
            await self.deps.systems.close()
            await self.deps.store.close()
        finally:
            if self.embedded is not None:
                self.embedded.stop()
