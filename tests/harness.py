"""The bot under test, wired to the Slack emulator and a real Redis, served on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.app import create_app
from bot.config_file import OpsConfig
from bot.jobs import WorkerRunner
from bot.plugins import Plugin
from bot.runtime import Runtime
from bot.sandbox.emulators.slack import SlackDriver, SlackEmulator
from bot.settings import Settings, load_settings
from integrations import PLUGINS


@dataclass
class BotUnderTest:
    emulator: SlackEmulator
    driver: SlackDriver
    runtime: Runtime
    settings: Settings
    base_url: str
    worker: WorkerRunner | None

    @property
    def deps(self) -> Any:
        return self.runtime.deps


def bot_settings(emulator: SlackEmulator, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": emulator.bot_token,
        "SLACK_SIGNING_SECRET": emulator.signing_secret,
        "OPSLOOP_SLACK_API_URL": emulator.api_url,
        "OPSLOOP_REDIS_URL": redis_url,
        "OPSLOOP_CONFIG_FILE": None,
    }
    values.update(overrides)
    return load_settings(**values)


async def start_site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@asynccontextmanager
async def running_emulator(**kwargs: Any) -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(**kwargs)
    async with emulator.serve(host="127.0.0.1", port=0):
        yield emulator


@asynccontextmanager
async def running_bot(
    redis_url: str,
    *,
    emulator: SlackEmulator | None = None,
    config: OpsConfig | None = None,
    worker: bool = True,
    plugins: Sequence[Plugin] = PLUGINS,
    **overrides: Any,
) -> AsyncIterator[BotUnderTest]:
    """A whole bot process in this event loop: HTTP app, optional worker, emulated Slack, and
    the outside systems of `plugins` that `overrides` and `config` configure."""
    if emulator is None:
        async with (
            running_emulator() as emu,
            running_bot(
                redis_url, emulator=emu, config=config, worker=worker, plugins=plugins, **overrides
            ) as bot,
        ):
            yield bot
        return
    settings = bot_settings(emulator, redis_url, **overrides)
    runtime = Runtime.start(settings, config or OpsConfig(), plugins=plugins)
    app = create_app(settings, runtime.deps)
    runner, base_url = await start_site(app)
    emulator.bot_events_url = base_url + "/slack/events"
    workers = None
    if worker:
        workers = WorkerRunner(runtime.deps, runtime.jobs)
        await workers.start()
    driver = SlackDriver(emulator)
    try:
        yield BotUnderTest(emulator, driver, runtime, settings, base_url, workers)
    finally:
        await driver.close()
        await runner.cleanup()
        if workers is not None:
            await workers.stop()
        await runtime.close()


@asynccontextmanager
async def running_gitlab(**kwargs: Any) -> AsyncIterator[Any]:
    """The GitLab emulator on a free port; pass `gitlab_env(emu)` to running_bot."""
    from bot.sandbox.emulators.gitlab import GitLabEmulator

    emulator = GitLabEmulator(**kwargs)
    async with emulator.serve(host="127.0.0.1", port=0):
        yield emulator


def gitlab_env(emulator: Any) -> dict[str, str]:
    return {"OPSLOOP_GITLAB_URL": emulator.base_url, "OPSLOOP_GITLAB_TOKEN": emulator.token}
