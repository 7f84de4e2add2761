"""Alerts end to end with a real Prometheus Alertmanager sending its webhook to the bot.

Alertmanager runs with group_wait 1s and group_interval 2s, so a webhook arrives about a second
after an alert is posted to it; the bot polls Alertmanager every 0.5 s for acknowledged groups.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio
from aiohttp import web
from arq.constants import result_key_prefix

from tests.alert_payloads import TOKEN, alert, alert_config, notification
from tests.alertmanager_server import AlertmanagerServer
from tests.harness import BotUnderTest, running_bot, running_emulator, start_site
from tests.servers import own_redis
from tests.test_alerts_webhook import (
    INCIDENT,
    audit_actions,
    buttons,
    ephemeral_texts,
    one_parent,
    parents,
    post_hook,
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

        # Acknowledging the silenced group keeps that silence rather than adding a second.
        await bot.driver.click("Acknowledge", user="U0ALICE", message=parent)
        await eventually(lambda: "Acknowledged by <@U0ALICE>" in shown(parent), what="ack")
        assert [s["id"] for s in await live_silences(alertmanager)] == [silence_id]
        [entry] = await audit_actions(bot, "alert.acknowledged")
        assert entry.detail["silence_id"] == silence_id


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


@dataclass
class Proxy:
    """What the proxy in front of Alertmanager does, and what it saw."""

    url: str = ""
    alerts_down: bool = False  # answer 503 to alert queries
    refused: int = 0
    lose_silence_answers: bool = False  # forward a new silence, then answer 502
    hold_silence_answers: bool = False  # forward a new silence, then keep its answer
    silences_forwarded: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def flaky_proxy(upstream: str) -> AsyncIterator[Proxy]:
    """Alertmanager behind a proxy that fails as `Proxy` says."""
    state = Proxy()

    async def forward(request: web.Request) -> web.Response:
        if state.alerts_down and request.method == "GET" and request.path == "/api/v2/alerts":
            state.refused += 1
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
            reply = web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
            )
        if request.method == "POST" and request.path == "/api/v2/silences":
            state.silences_forwarded += 1
            if state.hold_silence_answers:
                await state.released.wait()
            if state.lose_silence_answers:
                return web.Response(status=502, text="bad gateway")
        return reply

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner, state.url = await start_site(app)
    try:
        yield state
    finally:
        state.released.set()
        await runner.cleanup()


async def test_polling_outlives_alertmanager_being_away(
    redis_url: str, alertmanager: AlertmanagerServer
) -> None:
    async with (
        flaky_proxy(alertmanager.url) as proxy,
        bot_with_alertmanager(redis_url, alertmanager, am_url=proxy.url) as bot,
    ):
        await alertmanager.post_alerts([high_latency("web-1")])
        parent = await one_parent(bot, INCIDENT, within=10)
        await bot.driver.click("Acknowledge", user="U0CAROL", message=parent)
        await eventually(lambda: "Silenced in Alertmanager" in shown(parent), what="silenced")
        proxy.alerts_down = True
        # The adapter retries twice per poll: 3 refusals are one failed poll, 6 are two.
        await eventually(lambda: proxy.refused >= 6, within=10, what="two polls to fail")
        proxy.alerts_down = False
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


# -- a silence is made once per request -----------------------------------------------------------


async def live_silences(am: AlertmanagerServer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await am_get(am.url, "/api/v2/silences")
    return [s for s in found if s["status"]["state"] != "expired"]


async def run_the_same_job_again(bot: BotUnderTest, redis_url: str, kind: str = "action") -> str:
    """Enqueue the finished click job (`kind` "slash": slash command job) once more under its
    own id, as a redelivery after its result expired would; wait until it has run. Returns
    the job id."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        [key] = [k async for k in client.scan_iter(f"{result_key_prefix}{kind}:*")]
        result = json.loads(await client.get(key))
        await client.delete(key)
        job_id = key.decode().removeprefix(result_key_prefix)
        assert await bot.deps.queue.enqueue(result["f"], result["a"][0], job_id=job_id)
        await eventually(lambda: client.exists(key), what="the job to run again")
    finally:
        await client.aclose()
    return job_id


async def test_an_acknowledge_that_dies_after_alertmanager_answered_makes_one_silence(
    redis_url: str, alertmanager: AlertmanagerServer
) -> None:
    """The worker stops while Alertmanager's answer is on its way (its job cancelled mid-call,
    as a killed worker's would end); another worker runs the job again and finds the silence
    by the request's key instead of making a second one."""
    async with running_emulator() as emu, flaky_proxy(alertmanager.url) as proxy:
        proxy.hold_silence_answers = True
        async with bot_with_alertmanager(
            redis_url, alertmanager, am_url=proxy.url, emulator=emu
        ) as first:
            await alertmanager.post_alerts([high_latency("web-1")])
            parent = await one_parent(first, INCIDENT, within=10)
            await first.driver.click("Acknowledge", user="U0ALICE", message=parent)
            await eventually(lambda: proxy.silences_forwarded == 1, what="the silence made")
        # Alertmanager has the silence; the bot recorded only that it was about to ask.
        [made] = await live_silences(alertmanager)
        assert "Acknowledged by" not in shown(parent)

        async with bot_with_alertmanager(redis_url, alertmanager, emulator=emu) as second:
            await eventually(
                lambda: "Silenced in Alertmanager" in shown(parent),
                within=15,
                what="the job to run again",
            )
            assert "Acknowledged by <@U0ALICE>" in shown(parent)
            assert [s["id"] for s in await live_silences(alertmanager)] == [made["id"]]
            group = await second.deps.store.alerts.load("AL-1")
            assert group is not None and group.silence_id == made["id"]
            [entry] = await audit_actions(second, "alert.acknowledged")
            assert entry.detail["silence_id"] == made["id"]

            # The same job once more, after it finished: still one silence, no second answer.
            await run_the_same_job_again(second, redis_url)
            assert [s["id"] for s in await live_silences(alertmanager)] == [made["id"]]
            assert len(await audit_actions(second, "alert.acknowledged")) == 1
            assert ephemeral_texts(second, "U0ALICE") == []
            assert len([r for r in parent.replies if "Acknowledged by" in r.text]) == 1


async def test_acknowledgements_of_twin_groups_each_get_their_own_silence(
    redis_url: str, alertmanager: AlertmanagerServer
) -> None:
    """Two groups with the same labels, acknowledged by two people, every answer to a new
    silence lost on the way: each retry finds its own request's silence, not the other's."""
    async with (
        flaky_proxy(alertmanager.url) as proxy,
        # No polling: these groups were posted to the bot, so Alertmanager does not hold them.
        bot_with_alertmanager(
            redis_url, alertmanager, am_url=proxy.url, OPSLOOP_ALERT_POLL_SECONDS="600"
        ) as bot,
    ):
        proxy.lose_silence_answers = True
        body = notification([alert("web-1")])
        twin = copy.deepcopy(body) | {"groupKey": '{}/{severity="critical"}:{alertname="X"}'}
        for sent in (body, twin):
            status, _ = await post_hook(bot, sent)
            assert status == 202
        await eventually(lambda: len(parents(bot, INCIDENT)) == 2, what="two alert messages")
        one, two = sorted(parents(bot, INCIDENT), key=lambda m: "AL-2" in shown(m))
        for person, message in (("U0ALICE", one), ("U0BOB", two)):
            await bot.driver.click("Acknowledge", user=person, message=message)
            await eventually(lambda m=message: "Silenced in Alertmanager" in shown(m))

        assert proxy.silences_forwarded == 2  # one POST each; each retry looked instead
        live = await live_silences(alertmanager)
        assert len(live) == 2
        assert live[0]["matchers"] == live[1]["matchers"]
        made_for = {("U0ALICE" if "U0ALICE" in s["createdBy"] else "U0BOB"): s["id"] for s in live}
        for ref, person in (("AL-1", "U0ALICE"), ("AL-2", "U0BOB")):
            group = await bot.deps.store.alerts.load(ref)
            assert group is not None and group.acked_by == person
            assert group.silence_id == made_for[person]
