"""Acknowledging a Grafana alert silences it in Grafana's Alertmanager, matched on the rule's UID.

Grafana's Alertmanager is a real Prometheus Alertmanager started with
`--web.route-prefix=/api/alertmanager/grafana`, behind the Grafana emulator's thin shim (its
bearer token, its 202 answer). An Alertmanager group in the same process is silenced in
Alertmanager: each group where it came from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox.emulators.grafana import GrafanaEmulator
from tests.alert_payloads import TOKEN, alert_config, sample
from tests.alertmanager_server import AlertmanagerServer, alertmanager_binary
from tests.grafana_payloads import SECRET, grafana_sample, post_grafana
from tests.harness import BotUnderTest, running_bot
from tests.servers import free_port, missing
from tests.test_alerts_webhook import (
    INCIDENT,
    audit_actions,
    buttons,
    ephemeral_texts,
    one_parent,
    post_hook,
    settle,
    shown,
)
from tests.waiting import eventually

PREFIX = "/api/alertmanager/grafana"
RULE = {"name": "__alert_rule_uid__", "value": "cpu-rule-1", "isRegex": False, "isEqual": True}


@pytest.fixture
def grafana_am(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    """Grafana's Alertmanager: a real one, at Grafana's path."""
    binary = alertmanager_binary()
    if binary is None:
        missing("prometheus-alertmanager is not installed")
    assert binary is not None
    (tmp_path / "grafana").mkdir()
    server = AlertmanagerServer(binary, tmp_path / "grafana", route_prefix=PREFIX)
    server.start()
    yield server
    server.stop()


async def silences(am_url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(am_url + "/api/v2/silences") as answer:
        assert answer.status == 200, await answer.text()
        found: list[dict[str, Any]] = await answer.json()
        return found


async def live(am_url: str) -> list[dict[str, Any]]:
    return [s for s in await silences(am_url) if s["status"]["state"] == "active"]


@asynccontextmanager
async def grafana_and_bot(
    redis_url: str, am: AlertmanagerServer | None, **overrides: Any
) -> AsyncIterator[tuple[GrafanaEmulator, BotUnderTest]]:
    emu = GrafanaEmulator(alertmanager_url=am.url if am is not None else None)
    async with emu.serve() as url:
        env = {
            "OPSLOOP_GRAFANA_URL": url,
            "OPSLOOP_GRAFANA_TOKEN": emu.token,
            "OPSLOOP_GRAFANA_WEBHOOK_SECRET": SECRET,
            "OPSLOOP_ALERT_POLL_SECONDS": 0.5,
            **overrides,
        }
        async with running_bot(redis_url, config=alert_config(), **env) as bot:
            yield emu, bot


async def test_acknowledge_silences_the_rule_in_grafana_and_unacknowledge_ends_it(
    redis_url: str, grafana_am: AlertmanagerServer, alertmanager: AlertmanagerServer
) -> None:
    async with grafana_and_bot(
        redis_url,
        grafana_am,
        OPSLOOP_ALERTMANAGER_URL=alertmanager.url,
        OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN,
    ) as (emu, bot):
        body = await firing_in_grafana(grafana_am)
        assert (await post_grafana(bot, body))[0] == 202
        parent = await one_parent(bot, INCIDENT)
        await bot.driver.click("Acknowledge", user="U0CAROL", message=parent)
        await eventually(lambda: "Silenced in Grafana" in shown(parent), what="silence shown")
        [made] = await live(grafana_am.url)
        assert RULE in made["matchers"]
        names = {m["name"] for m in made["matchers"]}
        assert names == {"__alert_rule_uid__", "alertname", "grafana_folder"}
        assert "[opsloop:" in made["comment"] and "AL-1" in made["comment"]
        posts = [r for r in emu.requests if r.method == "POST" and r.path.endswith("/silences")]
        assert len(posts) == 1 and posts[0].authorized
        assert await live(alertmanager.url) == []  # not Alertmanager's: Grafana sent it
        [entry] = await audit_actions(bot, "alert.acknowledged")
        assert entry.detail["silence_id"] == made["id"]

        await asyncio.sleep(1.5)  # polls: the alert still fires in Grafana, the group stays open
        assert "Unacknowledge" in buttons(parent)
        await bot.driver.click("Unacknowledge", user="U0CAROL", message=parent)
        await eventually(lambda: "Acknowledge" in buttons(parent), what="unacknowledged")
        await eventually(lambda: _none_live(grafana_am.url), what="the silence to end")
        await settle(bot)
        assert len(await silences(grafana_am.url)) == 1  # ended, and nothing made twice


async def firing_in_grafana(am: AlertmanagerServer) -> dict[str, Any]:
    """The sample's alert firing in Grafana's Alertmanager (with the rule UID label Grafana
    keeps there), and the webhook body Grafana sends for it: the same fingerprint."""
    body = grafana_sample()
    labels = {**body["alerts"][0]["labels"], "__alert_rule_uid__": "cpu-rule-1"}
    await am.post_alerts([{"labels": labels, "annotations": {}}])
    async with aiohttp.ClientSession() as http, http.get(am.url + "/api/v2/alerts") as answer:
        [held] = await answer.json()
    body["alerts"][0]["fingerprint"] = held["fingerprint"]
    return body


async def _none_live(url: str) -> bool:
    return await live(url) == []


async def test_an_alertmanager_group_is_still_silenced_in_alertmanager(
    redis_url: str, grafana_am: AlertmanagerServer, alertmanager: AlertmanagerServer
) -> None:
    async with grafana_and_bot(
        redis_url,
        grafana_am,
        OPSLOOP_ALERTMANAGER_URL=alertmanager.url,
        OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN=TOKEN,
    ) as (emu, bot):
        assert (await post_hook(bot, sample("alertmanager-firing.json")))[0] == 202
        parent = await one_parent(bot, INCIDENT)
        await bot.driver.command("/ack", "AL-1", user="U0ALICE", channel=INCIDENT)
        await eventually(lambda: "Silenced in Alertmanager" in shown(parent), what="silenced")
        assert len(await live(alertmanager.url)) == 1
        assert await silences(grafana_am.url) == []
        assert not [r for r in emu.requests if "/alertmanager/" in r.path]


async def test_grafana_refusing_or_away_is_named_within_30s_and_the_ack_stands(
    redis_url: str, grafana_am: AlertmanagerServer
) -> None:
    async with grafana_and_bot(redis_url, grafana_am, OPSLOOP_GRAFANA_TOKEN="wrong") as (_, bot):
        assert (await post_grafana(bot, grafana_sample()))[0] == 202
        parent = await one_parent(bot, INCIDENT)
        started = time.monotonic()
        await bot.driver.command("/ack", "AL-1 on it", user="U0ALICE", channel=INCIDENT)
        [answer] = await eventually(lambda: ephemeral_texts(bot, "U0ALICE"), within=30)
        assert time.monotonic() - started < 30
        assert "You acknowledged AL-1" in answer and "No silence was made" in answer
        assert "Grafana refused" in answer and "token" in answer and "wrong" not in answer
        await eventually(lambda: "Acknowledged by <@U0ALICE>" in shown(parent), what="ack")
    assert await silences(grafana_am.url) == []

    nowhere = f"http://127.0.0.1:{free_port()}"
    async with running_bot(
        redis_url,
        config=alert_config(),
        OPSLOOP_GRAFANA_URL=nowhere,
        OPSLOOP_GRAFANA_TOKEN="t",
        OPSLOOP_GRAFANA_WEBHOOK_SECRET=SECRET,
    ) as bot:
        assert (await post_grafana(bot, grafana_sample(groupKey="again")))[0] == 202
        parent = await one_parent(bot, INCIDENT)
        started = time.monotonic()
        await bot.driver.click("Silence 1h", user="U0ALICE", message=parent)
        [answer] = await eventually(lambda: ephemeral_texts(bot, "U0ALICE"), within=30)
        assert time.monotonic() - started < 30
        assert "Grafana" in answer and "unreachable" in answer, answer


async def test_silencing_a_grafana_group_without_grafana_says_so(redis_url: str) -> None:
    async with running_bot(
        redis_url, config=alert_config(), OPSLOOP_GRAFANA_WEBHOOK_SECRET=SECRET
    ) as bot:
        assert (await post_grafana(bot, grafana_sample()))[0] == 202
        parent = await one_parent(bot, INCIDENT)
        await bot.driver.click("Silence 1h", user="U0ALICE", message=parent)
        [answer] = await eventually(lambda: ephemeral_texts(bot, "U0ALICE"), within=10)
        assert "Grafana is not configured" in answer and "OPSLOOP_GRAFANA_URL" in answer
