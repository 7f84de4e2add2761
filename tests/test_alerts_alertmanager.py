"""Alerts end to end with a real Prometheus Alertmanager sending its webhook to the bot.

Alertmanager runs with group_wait 1s and group_interval 2s, so a webhook arrives about a second
after an alert is posted to it; the bot polls Alertmanager every 0.5 s for acknowledged groups.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.alert_payloads import TOKEN, alert_config
from tests.alertmanager_server import AlertmanagerServer
from tests.alertmanager_server import alertmanager as _alertmanager  # noqa: F401  (the fixture)
from tests.harness import BotUnderTest, running_bot, running_emulator, start_site
from tests.servers import own_redis
from tests.test_alerts_webhook import (
    INCIDENT,
    audit_actions,
    buttons,
    ephemeral_texts,
    one_parent,
    parents,
    settle,
    shown,
)
from tests.waiting import eventually

LABELS = {"service": "api", "severity": "critical"}
ANNOTATIONS = {"summary": "p99 latency > 2s", "runbook_url": "http://runbooks/latency"}


def high_latency(instance: str, *, resolved: bool = False) -> dict[str, Any]:
    return AlertmanagerServer.alert(
        "HighLatency",
        labels={**LABELS, "instance": instance},
        annotations=ANNOTATIONS,
        resolved=resolved,
    )


async def am_get(am_url: str, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(am_url + path) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def http_text(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        return await answer.text()


async def am_alerts(am: AlertmanagerServer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await am_get(am.url, "/api/v2/alerts")
    return found


@asynccontextmanager
async def bot_with_alertmanager(
    redis_url: str, am: AlertmanagerServer, *, am_url: str | None = None, **overrides: Any
) -> AsyncIterator[BotUnderTest]:
    """The bot, and Alertmanager sending its webhook to it with the bearer token."""
    overrides.setdefault("OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN", TOKEN)
    overrides.setdefault("OPSLOOP_ALERTMANAGER_URL", am_url or am.url)
    overrides.setdefault("OPSLOOP_ALERT_POLL_SECONDS", "0.5")
    overrides.setdefault("config", alert_config())
    async with running_bot(redis_url, **overrides) as bot:
        am.configure(bot.base_url + "/hooks/alertmanager", TOKEN)
        am.reload()
        yield bot


async def test_alerts_posted_to_alertmanager_become_one_thread(
    redis_url: str, alertmanager: AlertmanagerServer
) -> None:
    async with bot_with_alertmanager(redis_url, alertmanager) as bot:
        await alertmanager.post_alerts([high_latency("web-1")])
        parent = await one_parent(bot, INCIDENT, within=10)
        seen = shown(parent)
        assert "AL-1" in seen and "HighLatency" in seen and "p99 latency > 2s" in seen
        assert "1 firing, 0 resolved" in seen
        assert alertmanager.url + "/#/alerts?filter=" in seen  # its externalURL
        assert buttons(parent) == ["Acknowledge", "Silence 1h", "Silence 4h", "Silence 1d"]

        await alertmanager.post_alerts([high_latency("web-1"), high_latency("web-2")])
        await eventually(lambda: "2 firing" in shown(parent), within=10, what="parent edited")
        await eventually(lambda: parent.replies, what="a thread reply")
        assert "1 new alert firing" in parent.replies[0].text
        assert "instance=web-2" in parent.replies[0].text
        await settle(bot, 2.1)  # a group_interval more: Alertmanager has nothing new to say
        assert len(parents(bot, INCIDENT)) == 1 and len(parent.replies) == 1


async def test_acknowledge_silences_in_alertmanager_and_unacknowledge_expires_it(
    redis_url: str, alertmanager: AlertmanagerServer
) -> None:
    async with bot_with_alertmanager(redis_url, alertmanager) as bot:
        await alertmanager.post_alerts([high_latency("web-1")])
        parent = await one_parent(bot, INCIDENT, within=10)
        await bot.driver.click("Acknowledge", user="U0ALICE", message=parent)
        await eventually(lambda: "Silenced in Alertmanager" in shown(parent), what="silence shown")
        assert "Acknowledged by <@U0ALICE>" in shown(parent)

        [alert] = await am_alerts(alertmanager)
        assert alert["status"]["state"] == "suppressed"
        [silence_id] = alert["status"]["silencedBy"]
        silence = await am_get(alertmanager.url, f"/api/v2/silence/{silence_id}")
        assert silence["status"]["state"] == "active"
        assert "alice" in silence["createdBy"] and "U0ALICE" in silence["createdBy"]
        assert "AL-1" in silence["comment"]
        assert {"name": "alertname", "value": "HighLatency"} in [
            {"name": m["name"], "value": m["value"]} for m in silence["matchers"]
        ]
        [entry] = await audit_actions(bot, "alert.acknowledged")
        assert entry.detail["silence_id"] == silence_id

        await bot.driver.click("Unacknowledge", user="U0ALICE", message=parent)
        await eventually(lambda: "Acknowledge" in buttons(parent), what="ack button back")
        silence = await am_get(alertmanager.url, f"/api/v2/silence/{silence_id}")
        assert silence["status"]["state"] == "expired"
        [alert] = await am_alerts(alertmanager)
        assert alert["status"]["state"] == "active"
        assert "Silenced in Alertmanager" not in shown(parent)


async def test_silence_button_makes_a_silence_for_that_long(
    redis_url: str, alertmanager: AlertmanagerServer
) -> None:
    async with bot_with_alertmanager(redis_url, alertmanager) as bot:
        await alertmanager.post_alerts([high_latency("web-1")])
        parent = await one_parent(bot, INCIDENT, within=10)
        await bot.driver.click("Silence 4h", user="U0BOB", message=parent)
        await eventually(lambda: "Silenced in Alertmanager by <@U0BOB>" in shown(parent))
        [alert] = await am_alerts(alertmanager)
        [silence_id] = alert["status"]["silencedBy"]
        silence = await am_get(alertmanager.url, f"/api/v2/silence/{silence_id}")
        from datetime import datetime

        length = datetime.fromisoformat(silence["endsAt"]) - datetime.fromisoformat(
            silence["startsAt"]
        )
        assert abs(length.total_seconds() - 4 * 3600) < 60
        assert "bob" in silence["createdBy"]
        assert await audit_actions(bot, "alert.silenced")
        assert ephemeral_texts(bot, "U0BOB") == []  # the message shows it


async def test_resolution_while_acknowledged_is_noticed_by_asking_alertmanager(
    redis_url: str, alertmanager: AlertmanagerServer
) -> None:
    async with bot_with_alertmanager(redis_url, alertmanager) as bot:
        await alertmanager.post_alerts([high_latency("web-1")])
        parent = await one_parent(bot, INCIDENT, within=10)
        await bot.driver.click("Acknowledge", user="U0CAROL", message=parent)
        await eventually(lambda: "Silenced in Alertmanager" in shown(parent), what="silenced")
        [alert] = await am_alerts(alertmanager)
        [silence_id] = alert["status"]["silencedBy"]

        await alertmanager.post_alerts([high_latency("web-1", resolved=True)])
        # Alertmanager sends no `resolved` for a silenced alert: the bot finds out itself.
        await eventually(lambda: "RESOLVED" in shown(parent), within=10, what="resolved")
        assert any("noticed it in Alertmanager" in r.text for r in parent.replies)
        assert not any("All alerts resolved" in r.text for r in parent.replies)
        silence = await am_get(alertmanager.url, f"/api/v2/silence/{silence_id}")
        assert silence["status"]["state"] == "expired"
        assert await bot.deps.store.alerts.open_groups() == []
        assert await audit_actions(bot, "alert.resolved")


@asynccontextmanager
async def flaky_proxy(upstream: str) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """Alertmanager behind a proxy that answers 503 to alert queries while `state["down"]`."""
    state = {"down": 0, "refused": 0}

    async def forward(request: web.Request) -> web.Response:
        if state["down"] and request.method == "GET" and request.path == "/api/v2/alerts":
            state["refused"] += 1
            return web.Response(status=503, text="upstream restarting")
        body = await request.read()
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method,
                upstream + request.path,
                params=list(request.query.items()),
                data=body or None,
                headers={"Content-Type": request.content_type} if body else None,
            ) as answer,
        ):
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner, url = await start_site(app)
    try:
        yield url, state
    finally:
        await runner.cleanup()


async def test_polling_outlives_alertmanager_being_away(
    redis_url: str, alertmanager: AlertmanagerServer
) -> None:
    async with (
        flaky_proxy(alertmanager.url) as (proxy_url, proxy),
        bot_with_alertmanager(redis_url, alertmanager, am_url=proxy_url) as bot,
    ):
        await alertmanager.post_alerts([high_latency("web-1")])
        parent = await one_parent(bot, INCIDENT, within=10)
        await bot.driver.click("Acknowledge", user="U0CAROL", message=parent)
        await eventually(lambda: "Silenced in Alertmanager" in shown(parent), what="silenced")
        proxy["down"] = 1
        # The adapter retries twice per poll: 3 refusals are one failed poll, 6 are two.
        await eventually(lambda: proxy["refused"] >= 6, within=10, what="two polls to fail")
        proxy["down"] = 0
        await alertmanager.post_alerts([high_latency("web-1", resolved=True)])
        await eventually(lambda: "RESOLVED" in shown(parent), within=10, what="resolved")


async def test_redis_away_then_back_loses_nothing(
    redis_url: str, alertmanager: AlertmanagerServer, tmp_path: Path
) -> None:
    """503 while Redis is away; Alertmanager delivers again and the group is stored and posted.

    The web process runs without a worker (`opsloop serve --no-worker`); a worker process is
    started once Redis is back, as it would be restarted in production.
    """
    async with (
        own_redis(tmp_path) as server,
        running_emulator() as emu,
        bot_with_alertmanager(server.url, alertmanager, emulator=emu, worker=False) as web_bot,
    ):
        server.stop()
        await alertmanager.post_alerts([high_latency("web-1")])

        async def answered(status: int) -> bool:
            metrics = await http_text(web_bot.base_url + "/metrics")
            return f'route="/hooks/alertmanager",status="{status}"' in metrics

        await eventually(lambda: answered(503), within=10, what="the webhook to answer 503")
        server.start()  # the same port, empty
        await eventually(lambda: answered(202), within=20, what="Alertmanager to deliver again")
        async with running_bot(
            server.url,
            emulator=emu,
            config=alert_config(),
            OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN,
            OPSLOOP_ALERTMANAGER_URL=alertmanager.url,
        ) as worker_bot:
            parent = await one_parent(worker_bot, INCIDENT, within=10)
            assert "AL-1" in shown(parent) and "HighLatency" in shown(parent)
