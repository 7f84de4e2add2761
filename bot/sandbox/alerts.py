"""The sandbox's sample alert: Alertmanager webhook notifications sent to the bot for real.

`POST /_sandbox/alert {"action": "fire" | "add" | "resolve"}` on the page's app plays
Alertmanager's part: it keeps the alerts of one sample group, builds the payload version 4 body
Alertmanager would send for them (fresh `startsAt`, Alertmanager's own fingerprints, one stable
`groupKey`), and POSTs it to the bot's `/hooks/alertmanager` with the bearer token. The bot
stores it as a job and the worker turns it into a thread in the emulated Slack, exactly as for a
real Alertmanager. `GET /_sandbox/info` tells the page that the control is there.

The body builders (`fingerprint`, `alert_entry`, `notification`) are also used by
`bench/alert_storm.py`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.alerting.routing import route_for
from bot.config_file import OpsConfig
from bot.durations import format_duration

# Not a secret: the sandbox listens on loopback and its token only keeps the route's auth real.
SANDBOX_WEBHOOK_TOKEN = "sandbox-alertmanager-token"

ALERTNAME = "HighLatency"
# The sandbox's GitLab-deployed service (its `alert_labels: {service: api}`): the alert names
# its last deploy, with Roll back (bot/alerting/last_change.py).
SERVICE = "api"
SEVERITY = "critical"
INSTANCES = ("web-1", "web-2", "web-3", "web-4", "web-5")
RECEIVER = "opsloop"
EXTERNAL_URL = "http://alertmanager.example:9093"
ACTIONS = ("fire", "add", "resolve")
POST_TIMEOUT = 10.0
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert that has not ended

# Prometheus's label-set fingerprint: FNV-1a 64 over sorted name/value pairs, 0xff-separated.
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = b"\xff"


def fingerprint(labels: Mapping[str, str]) -> str:
    """The fingerprint Alertmanager puts on an alert with these labels (16 hex digits)."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name.encode(), _SEPARATOR, labels[name].encode(), _SEPARATOR):
            for byte in part:
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(ts: float) -> str:
    """A time as Alertmanager writes it (UTC, microseconds, `Z`)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alert_entry(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    starts_at: float,
    ends_at: float | None = None,
    generator_url: str = "",
) -> dict[str, Any]:
    """One alert of a notification; resolved when `ends_at` is given."""
    return {
        "status": "firing" if ends_at is None else "resolved",
        "labels": dict(labels),
        "annotations": dict(annotations),
        "startsAt": rfc3339(starts_at),
        "endsAt": ZERO_TIME if ends_at is None else rfc3339(ends_at),
        "generatorURL": generator_url,
        "fingerprint": fingerprint(labels),
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def notification(
    group_key: str,
    group_labels: Mapping[str, str],
    alerts: list[dict[str, Any]],
    *,
    receiver: str = RECEIVER,
    external_url: str = EXTERNAL_URL,
) -> dict[str, Any]:
    """A webhook body (payload version 4) as Alertmanager sends it for one group."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": dict(group_labels),
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }


# -- the sample group ------------------------------------------------------------------------


def sample_labels(instance: str) -> dict[str, str]:
    return {
        "alertname": ALERTNAME,
        "instance": instance,
        "service": SERVICE,
        "severity": SEVERITY,
    }


def sample_annotations(instance: str) -> dict[str, str]:
    return {
        "summary": f"p99 latency above 2s on {SERVICE}",
        "description": f"{instance} answers {SERVICE} requests in 2.4s at the 99th percentile.",
        "runbook_url": f"https://runbooks.example.com/{SERVICE}/high-latency",
    }


class NothingFiring(Exception):
    """`add` or `resolve` without a firing sample alert."""


@dataclass
class SampleGroup:
    """What Alertmanager would hold for the sample group: its firing alerts and their starts.

    The groupKey carries an id of this sandbox run: the sandbox's Redis outlives a restart but
    the emulated Slack does not, so a group left open by an earlier run is never continued.
    """

    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    firing: dict[str, float] = field(default_factory=dict)  # instance -> startsAt

    @property
    def group_key(self) -> str:
        return f'{{}}/{{sandbox="{self.run_id}"}}:{{alertname="{ALERTNAME}"}}'

    def _entry(self, instance: str, starts_at: float, ends_at: float | None = None) -> Any:
        generator = (
            "http://prometheus.example:9090/graph?g0.expr="
            f"histogram_quantile%280.99%2C+http_latency%7Binstance%3D%22{instance}%22%7D%29"
        )
        return alert_entry(
            sample_labels(instance), sample_annotations(instance), starts_at, ends_at, generator
        )

    def _body(self, alerts: list[dict[str, Any]]) -> dict[str, Any]:
        return notification(self.group_key, {"alertname": ALERTNAME}, alerts)

    def fire(self, now: float) -> dict[str, Any]:
        """The first alert starts firing (a repeat of the current state if it already is)."""
        if not self.firing:
            self.firing[INSTANCES[0]] = now
        return self._body([self._entry(i, s) for i, s in self.firing.items()])

    def add(self, now: float) -> dict[str, Any]:
        """One more instance of the group starts firing: the group's next notification."""
        if not self.firing:
            raise NothingFiring("Fire the sample alert first.")
        spare = [i for i in INSTANCES if i not in self.firing]
        if spare:
            self.firing[spare[0]] = now
        return self._body([self._entry(i, s) for i, s in self.firing.items()])

    def resolve(self, now: float) -> dict[str, Any]:
        """Every alert of the group ends: Alertmanager's `resolved` notification."""
        if not self.firing:
            raise NothingFiring("Nothing is firing: fire the sample alert first.")
        alerts = [self._entry(i, s, now) for i, s in self.firing.items()]
        self.firing.clear()
        return self._body(alerts)


# -- the routes ------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class SandboxAlerts:
    """The sample alert control; `hook_url` and `token` are set once the bot listens."""

    def __init__(self, config: OpsConfig) -> None:
        self.config = config
        self.group = SampleGroup()
        self.hook_url: str | None = None
        self.token: str | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        # More for the page's GET /_sandbox/info, e.g. the app's message shortcuts.
        self.extra_info: dict[str, Any] = {}

    def _route(self) -> dict[str, Any]:
        labels = sample_labels(INSTANCES[0])
        route = route_for(self.config.alerts, labels)
        if route is None:
            return {"channel": None, "escalate_after": None, "escalate_to": []}
        after = route.escalate_after
        return {
            "channel": route.channel,
            "escalate_after": format_duration(after) if after is not None else None,
            "escalate_to": list(route.escalate_to),
        }

    def info(self) -> dict[str, Any]:
        return {
            **self.extra_info,
            "alerts": {
                "available": self.hook_url is not None,
                "title": f"{ALERTNAME} on {SERVICE}",
                "severity": SEVERITY,
                **self._route(),
                "firing": list(self.group.firing),
                "max_alerts": len(INSTANCES),
            },
        }

    async def _post(self, body: dict[str, Any]) -> tuple[int, Any]:
        assert self.hook_url is not None and self.token is not None
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT))
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "User-Agent": "Alertmanager/0.25.0 (opsloop sandbox)",
        }
        async with self._session.post(
            self.hook_url, data=json.dumps(body).encode(), headers=headers
        ) as resp:
            text = await resp.text()
            try:
                answer: Any = json.loads(text)
            except ValueError:
                answer = text.strip()
            return resp.status, answer

    async def handle_info(self, request: web.Request) -> web.Response:
        return web.json_response(self.info(), headers={"Cache-Control": "no-store"})

    async def handle_alert(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read())
        except (UnicodeDecodeError, ValueError):
            return _error(400, 'The body must be JSON: {"action": "fire" | "add" | "resolve"}.')
        action = data.get("action") if isinstance(data, dict) else None
        if action not in ACTIONS:
            return _error(400, f'"action" must be one of {", ".join(ACTIONS)}.')
        if self.hook_url is None or self.token is None:
            return _error(503, "The bot is still starting; try again in a moment.")
        async with self._lock:  # Alertmanager sends a group's notifications one at a time
            before = dict(self.group.firing)
            now = time.time()
            try:
                body = getattr(self.group, action)(now)
            except NothingFiring as e:
                return _error(409, str(e))
            try:
                status, answer = await self._post(body)
            except (aiohttp.ClientError, TimeoutError) as e:
                self.group.firing = before  # not delivered: Alertmanager would still hold it
                return _error(502, f"Could not reach the bot's /hooks/alertmanager: {e!r}")
            if status >= 300:
                self.group.firing = before
        return web.json_response(
            {
                "action": action,
                "status": status,
                "answer": answer,
                "groupKey": self.group.group_key,
                **self.info()["alerts"],
            }
        )

    async def close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def add_alert_routes(app: web.Application, alerts: SandboxAlerts) -> None:
    """GET /_sandbox/info and POST /_sandbox/alert on the page's app."""
    app.router.add_get("/_sandbox/info", alerts.handle_info)
    app.router.add_post("/_sandbox/alert", alerts.handle_alert)
    app.on_cleanup.append(alerts.close)
