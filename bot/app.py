"""create_app(): the aiohttp application of one bot process. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot import outages, scrape
from bot.alerting.webhook import alert_source_hook, alertmanager_hook
from bot.builds.jenkins_hook import jenkins_hook
from bot.builds.webhook import gitlab_hook
from bot.deploys.flagger_hook import flagger_hook
from bot.deps import Deps
from bot.outages import REDIS
from bot.settings import Settings
from bot.slack_in import BotIdentity, build_bolt_app, slack_events_handler

MAX_BODY_BYTES = 1024 * 1024
READY_TIMEOUT = 1.0

DEPS_KEY = web.AppKey("deps", Deps)
BOLT_KEY = web.AppKey("bolt", AsyncApp)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _counted(deps: Deps, route: str, handler: Handler) -> Handler:
    """`handler`, counting its answers by route and status.

    A wrapper per route rather than an aiohttp middleware: with any middleware, aiohttp builds
    the middleware chain again for every request, which costs the Slack ack path about as much
    as the counting itself.
    """

    async def count(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as e:  # e.g. a body over the size limit
            deps.metrics.request(route, e.status).inc()
            raise
        except Exception:
            deps.metrics.request(route, 500).inc()
            raise
        deps.metrics.request(route, response.status).inc()
        return response

    return count


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    try:
        await asyncio.wait_for(deps.store.ping(), READY_TIMEOUT)
    except Exception as e:
        outages.redis_failure(e, "/readyz")  # an outage: one line, not one per probe
        return web.Response(status=503, text="redis: not answering\n")
    outages.recovered(REDIS)
    return web.Response(text="ready\n")


async def _metrics(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    # Redis away: opsloop_redis_up 0; the rest of the metrics are still worth serving.
    await scrape.refresh(deps)
    return web.Response(
        body=deps.metrics.exposition(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


def _background(
    work: Callable[[], Coroutine[Any, Any, None]],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A task that runs while the app serves, cancelled when it stops."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(work())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run


def create_app(settings: Settings, deps: Deps) -> web.Application:
    """The HTTP app: Slack endpoint, webhooks, health and metrics."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[DEPS_KEY] = deps
    identity = BotIdentity(deps.slack.client, settings.secret("slack_bot_token") or "")
    bolt = build_bolt_app(deps, identity, settings.slack_api_base)
    app[BOLT_KEY] = bolt
    app.cleanup_ctx.append(_background(identity.learn))
    routes: list[tuple[str, str, Handler]] = [
        ("POST", "/slack/events", slack_events_handler(bolt, deps)),
        ("POST", "/hooks/alertmanager", alertmanager_hook(deps)),
        ("POST", "/hooks/gitlab", gitlab_hook(deps)),
        ("POST", "/hooks/flagger", flagger_hook(deps)),
        ("POST", "/hooks/jenkins", jenkins_hook(deps)),
        ("GET", "/healthz", _healthz),
        ("GET", "/readyz", _readyz),
        ("GET", "/metrics", _metrics),
    ]
    # Other systems' alert webhooks (e.g. /hooks/grafana), as their plugins declare them.
    routes += [("POST", s.route, alert_source_hook(deps, s)) for s in deps.systems.alert_sources()]
    for method, path, handler in routes:
        app.router.add_route(method, path, _counted(deps, path, handler))
    return app
