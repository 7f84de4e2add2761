"""`opsloop check`: validate settings and reach every configured system, one line each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config_file import OpsConfig
from bot.embedded_redis import EmbeddedRedis
from bot.plugins import Plugin
from bot.redact import hide_userinfo
from bot.redis_conn import close, connect, describe
from bot.settings import Settings
from integrations import PLUGINS

TIMEOUT = 5.0


@dataclass(frozen=True)
class CheckLine:
    system: str
    ok: bool
    detail: str

    def render(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.system:<13} {self.detail}"


async def _timed(probe: Callable[[], Awaitable[str]]) -> tuple[bool, str]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(probe(), TIMEOUT)
    except TimeoutError:
        return False, f"no answer within {TIMEOUT:.0f} s"
    except Exception as e:
        # An SDK's error may quote the URL it was given, password included.
        return False, hide_userinfo(str(e)) or type(e).__name__
    return True, f"{detail} ({(time.perf_counter() - started) * 1000:.0f} ms)"


async def _redis(settings: Settings) -> CheckLine:
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        try:
            url = embedded.start()
        except Exception as e:
            return CheckLine("redis", False, hide_userinfo(str(e)))
    else:
        embedded, url = None, settings.redis_url
    client = connect(url)

    async def probe() -> str:
        await client.ping()
        return f"{describe(url)} answers"

    try:
        ok, detail = await _timed(probe)
    finally:
        await close(client)
        if embedded is not None:
            embedded.stop()
    return CheckLine("redis", ok, detail)


async def _slack(settings: Settings) -> CheckLine:
    token = settings.secret("slack_bot_token")
    if not token:
        return CheckLine("slack", False, "SLACK_BOT_TOKEN is not set")
    client = AsyncWebClient(token=token, base_url=settings.slack_api_base, timeout=int(TIMEOUT))

    async def probe() -> str:
        try:
            auth = await client.auth_test()
        except SlackApiError as e:
            raise RuntimeError(f"auth.test said {e.response.get('error')}") from None
        return f"auth.test: {auth.get('user')} in {auth.get('team')}"

    ok, detail = await _timed(probe)
    return CheckLine("slack", ok, detail)


async def _system(plugin: Plugin, settings: Settings, config: OpsConfig) -> CheckLine:
    """A configured system, started on its own and asked its probe."""
    try:
        provided = plugin.start(settings, config)
    except Exception as e:
        return CheckLine(plugin.name, False, hide_userinfo(str(e)) or type(e).__name__)
    try:
        ok, detail = await _timed(provided.check)
    finally:
        await provided.close()
    return CheckLine(plugin.name, ok, detail)


async def run_checks(
    settings: Settings, config: OpsConfig, plugins: Sequence[Plugin] = PLUGINS
) -> list[CheckLine]:
    lines = [CheckLine("settings", True, "environment and YAML file are valid")]
    lines.append(await _redis(settings))
    lines.append(await _slack(settings))
    for plugin in plugins:
        if plugin.configured(settings, config):
            lines.append(await _system(plugin, settings, config))
    return lines
