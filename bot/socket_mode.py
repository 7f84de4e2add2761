"""Slack over Socket Mode: Bolt's handler, with each envelope's ack timed like /slack/events."""

from __future__ import annotations

import time

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.metrics import Metrics


def envelope_kind(request: SocketModeRequest) -> str:
    """The same kinds as the HTTP endpoint's: "command", or the payload's type
    ("block_actions", "view_submission", "event_callback"...)."""
    if request.type == "slash_commands":
        return "command"
    payload = request.payload if isinstance(request.payload, dict) else {}
    return str(payload.get("type", "other"))


class MeteredSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler; the time from an envelope's arrival to its ack lands in the
    ack-latency histogram, which otherwise only hears of HTTP requests."""

    def __init__(self, app: AsyncApp, app_token: str | None, metrics: Metrics) -> None:
        super().__init__(app, app_token)
        self._metrics = metrics

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        started = time.perf_counter()
        await super().handle(client, req)  # type: ignore[arg-type]  # Bolt's narrower type
        self._metrics.ack(envelope_kind(req)).observe(time.perf_counter() - started)
