"""`POST /hooks/alertmanager`: accept a notification in milliseconds, work on it in a job.

Alertmanager retries 5xx answers and drops 4xx ones, so: 401 for a bad token, 400 (naming the
field) for a body that will never be valid, 413 over 1 MiB, and 503 when the notification cannot
be stored yet, so that Alertmanager delivers it again later.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot import outages
from bot.alerting.payload import PayloadError, notification_id, parse_notification
from bot.alerting.ports import AlertSource, SourceRefused
from bot.alerting.service import NOTIFY_JOB
from bot.deps import Deps
from bot.outages import REDIS


def _authorized(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    # Constant-time comparison: the token must not leak through response timing.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def alertmanager_hook(deps: Deps) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for POST /hooks/alertmanager."""

    async def handle(request: web.Request) -> web.Response:
        token = deps.settings.secret("alertmanager_webhook_token")
        if not token:
            raise web.HTTPNotFound(text="Not found: OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN is unset.\n")
        if not _authorized(request.headers.get("Authorization", ""), token):
            return web.Response(
                status=401,
                text="Unauthorized: send Authorization: Bearer <the webhook token>.\n",
                headers={"WWW-Authenticate": "Bearer"},
            )
        raw = await request.read()
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return web.Response(status=400, text="Invalid payload: the body is not JSON.\n")
        if isinstance(data, dict):
            # Where a group came from is the route's to say, never the body's.
            data = {**data, "source": "alertmanager", "silenceMatchers": []}
        return await _accept(deps, data, f"am:{notification_id(raw)}", "alertmanager")

    return handle


def alert_source_hook(
    deps: Deps, source: AlertSource
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler for another alert source's webhook (e.g. POST /hooks/grafana):
    its own authentication and body, then the same answers as /hooks/alertmanager."""

    async def handle(request: web.Request) -> web.Response:
        secret = deps.settings.secret(source.secret)
        if not secret:
            raise web.HTTPNotFound(text=f"Not found: {source.secret_env} is unset.\n")
        raw = await request.read()
        refused = source.authenticate(request.headers, raw, secret, time.time())
        if refused is not None:
            return web.Response(status=401, text=f"Unauthorized: {refused}\n")
        try:
            data = source.translate(json.loads(raw))
        except (UnicodeDecodeError, ValueError) as e:
            why = str(e) if isinstance(e, SourceRefused) else "the body is not JSON."
            return web.Response(status=400, text=f"Invalid payload: {why}\n")
        data["source"] = source.name
        return await _accept(deps, data, f"{source.name}:{notification_id(raw)}", source.name)

    return handle


async def _accept(deps: Deps, data: Any, job_id: str, sender: str) -> web.Response:
    """Validate a notification and store it as a job: 202, 200 for a redelivery, 400, 503."""
    try:
        notification = parse_notification(data)
    except PayloadError as e:
        return web.Response(status=400, text=f"Invalid payload: {e}\n")
    payload = {"notification": data, "received_at": time.time()}
    try:
        # A Redis that does not answer in time may still store it (bot.store.batching);
        # the sender's retry is then recognised as a duplicate.
        fresh = await deps.queue.enqueue(NOTIFY_JOB, payload, job_id=job_id)
    except Exception as e:
        outages.redis_failure(e, f"storing a notification from {sender}")
        return web.Response(status=503, text="Cannot store the notification yet; retry.\n")
    if outages.down:
        outages.recovered(REDIS)
    if fresh:
        deps.metrics.enqueued(NOTIFY_JOB).inc()
    else:
        deps.metrics.duplicate(sender).inc()
    return web.json_response(
        {"status": "accepted" if fresh else "duplicate", "groupKey": notification.groupKey},
        status=202 if fresh else 200,
    )
