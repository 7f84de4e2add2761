"""Slack toward the bot: the Bolt app, and the aiohttp boundary in front of it.

The boundary refuses what Bolt would turn into a 500 (bodies that are not UTF-8, a `payload`
that is not a JSON object, broken JSON) with a 400, before anything is stored. Bolt then checks
the signature (401 on a bad, stale or missing one) and runs the listener inline
(`process_before_response=True`): our listeners only enqueue and ack, so the answer goes out as
soon as the job is stored, instead of after Bolt's default 10 ms ack polling.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.errors import log_unexpected
from bot.replies import unexpected_error

log = logging.getLogger(__name__)


def build_bolt_app(deps: Deps, client: AsyncWebClient) -> AsyncApp:
    """The Bolt app with every command family registered and one error handler."""
    from commands import FAMILIES

    app = AsyncApp(
        client=client,
        signing_secret=deps.settings.secret("slack_signing_secret") or "",
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
    )

    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        # Listeners turn known errors into messages themselves; this is for the unknown ones.
        ref = log_unexpected(error, f"Slack request {body.get('command') or body.get('type')}")
        reply = unexpected_error(ref)
        payload = {"response_type": "ephemeral", "text": reply.text}
        return BoltResponse(
            status=200, body=json.dumps(payload), headers={"content-type": "application/json"}
        )

    app.error(on_error)
    for family in FAMILIES:
        family.register(app, deps)
    return app


def inspect_body(text: str, content_type: str) -> tuple[str | None, str]:
    """(problem, kind): a problem that makes the body unusable, and the kind of request."""
    if content_type == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            return "the body is not valid JSON", "other"
        if not isinstance(data, dict):
            return "the JSON body must be an object", "other"
        return None, str(data.get("type", "event"))
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return "`payload` is not valid JSON", "other"
        if not isinstance(payload, dict):
            return "`payload` must be a JSON object", "other"
        return None, str(payload.get("type", "other"))
    if "command" in form:
        return None, "command"
    return None, "other"


def slack_events_handler(bolt: AsyncApp, deps: Deps) -> Any:
    """The aiohttp handler for POST /slack/events."""

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        raw = await request.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return web.Response(status=400, text="The request body is not UTF-8.\n")
        problem, kind = inspect_body(text, request.content_type)
        if problem:
            return web.Response(status=400, text=f"Malformed Slack request: {problem}.\n")
        bolt_request = AsyncBoltRequest(
            body=text, query=request.query_string, headers=dict(request.headers)
        )
        try:
            bolt_response = await bolt.async_dispatch(bolt_request)
        except Exception as e:
            ref = log_unexpected(e, "Slack request dispatch")
            return web.Response(status=503, text=f"opsloop could not handle this ({ref}).\n")
        response = await to_aiohttp_response(bolt_response)
        deps.metrics.ack_latency.labels(kind).observe(time.perf_counter() - started)
        return response

    return handle
