"""`opsloop check`: validate settings and reach every configured system, one line each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config_file import OpsConfig
from bot.embedded_redis import EmbeddedRedis
from bot.redact import hide_userinfo
from bot.redis_conn import close, connect, describe
from bot.settings import Settings
from integrations.docker import ContainerEngine

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


async def _http(system: str, url: str, headers: dict[str, str] | None = None) -> CheckLine:
    async def probe() -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers or {}) as response,
        ):
            if response.status == 401:
                raise RuntimeError("the token was rejected (401)")
            if response.status >= 400:
                raise RuntimeError(f"answered HTTP {response.status}")
            return f"{urlsplit(url).netloc.rsplit('@', 1)[-1]} answers"  # not its userinfo

    ok, detail = await _timed(probe)
    return CheckLine(system, ok, detail)


async def _docker(settings: Settings) -> CheckLine:
    engine = ContainerEngine(settings.docker_host, timeout=5)

    async def probe() -> str:
        try:
            return f"Docker Engine {await engine.ping()} answers"
        finally:
            await engine.close()

    ok, detail = await _timed(probe)
    return CheckLine("docker", ok, detail)


async def run_checks(settings: Settings, config: OpsConfig) -> list[CheckLine]:
    lines = [CheckLine("settings", True, "environment and YAML file are valid")]
    lines.append(await _redis(settings))
    lines.append(await _slack(settings))
    if settings.gitlab_url:
        headers = {"PRIVATE-TOKEN": settings.secret("gitlab_token") or ""}
        api = settings.gitlab_url.rstrip("/") + "/api/v4/version"
        lines.append(await _http("gitlab", api, headers))
    if any(s.deployer == "docker" for s in config.services.values()):
        lines.append(await _docker(settings))
    if settings.alertmanager_url:
        api = settings.alertmanager_url.rstrip("/") + "/api/v2/status"
        lines.append(await _http("alertmanager", api))
    return lines
