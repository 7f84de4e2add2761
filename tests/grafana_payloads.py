"""Grafana webhook bodies and signed posts for tests (samples/grafana-firing.json, see README)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import time
from typing import Any

import aiohttp

from tests.alert_payloads import sample
from tests.harness import BotUnderTest

SECRET = "grafana-hmac-test-secret"


def grafana_sample(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(sample("grafana-firing.json"))
    body.update(changes)
    return body


def resolved(body: dict[str, Any]) -> dict[str, Any]:
    """The same group, resolved, as Grafana sends it."""
    done = copy.deepcopy(body)
    done["status"] = "resolved"
    done["state"] = "ok"
    for alert in done["alerts"]:
        alert["status"] = "resolved"
        alert["endsAt"] = "2026-11-21T20:09:00Z"
    return done


def signature(body: bytes, secret: str = SECRET, timestamp: str | None = None) -> str:
    """Written from grafana/alerting http/hmac.go, independently of the bot's code."""
    message = (timestamp.encode() + b":" if timestamp is not None else b"") + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


async def post_grafana(
    bot: BotUnderTest,
    body: Any,
    *,
    secret: str | None = SECRET,
    raw: bytes | None = None,
    timestamp: str | bool | None = True,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """POST as Grafana's webhook contact point does, signed with `secret` (None: unsigned);
    `timestamp` True: now, in X-Grafana-Alerting-Signature-Timestamp; None: no timestamp."""
    data = raw if raw is not None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    stamp = str(int(time.time())) if timestamp is True else timestamp or None
    if stamp is not None:
        sent["X-Grafana-Alerting-Signature-Timestamp"] = stamp
    if secret is not None:
        sent.setdefault("X-Grafana-Alerting-Signature", signature(data, secret, stamp))
    async with (
        aiohttp.ClientSession() as http,
        http.post(bot.base_url + "/hooks/grafana", data=io.BytesIO(data), headers=sent) as answer,
    ):
        return answer.status, await answer.text()
