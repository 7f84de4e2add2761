"""POST /hooks/alertmanager end to end: webhook bodies in, Slack threads in the emulator out.

Real Redis, the emulated Slack, the whole bot in-process. Bodies are posted as Alertmanager
would post them; tests/test_alerts_alertmanager.py does the same with a real Alertmanager.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import re
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio

from bot.config_file import OpsConfig
from bot.sandbox.emulators.slack import Message
from tests.alert_payloads import TOKEN, alert, alert_config, notification, sample
from tests.harness import BotUnderTest, running_bot, running_emulator
from tests.servers import free_port, own_redis
from tests.waiting import eventually

INCIDENT = "C0INCIDENT"
ALERTS = "C0ALERTS"


# -- helpers (also used by tests/test_alerts_alertmanager.py) -------------------------------------


async def post_hook(
    bot: BotUnderTest,
    body: Any,
    *,
    token: str | None = TOKEN,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """POST a body to the bot's webhook as Alertmanager does; (status, text of the answer)."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body).encode()
    sent.setdefault("Content-Type", "application/json")
    async with (
        aiohttp.ClientSession() as http,
        # A stream, not bytes: aiohttp warns about big byte bodies (the 413 test sends one).
        http.post(
            bot.base_url + "/hooks/alertmanager", data=io.BytesIO(data), headers=sent
        ) as answer,
    ):
        return answer.status, await answer.text()


def shown(msg: Message) -> str:
    """Everything a person reads on a message: its text and every text in its blocks."""
    parts = [msg.text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(msg.blocks)
    # Slack shows the three entities of mrkdwn as the characters they stand for.
    text = "\n".join(parts)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def buttons(msg: Message) -> list[str]:
    return [
        e["text"]["text"]
        for b in msg.blocks
        if b.get("type") == "actions"
        for e in b.get("elements", [])
        if e.get("type") == "button"
    ]


def parents(bot: BotUnderTest, channel: str) -> list[Message]:
    """Top-level alert messages of a channel (broadcast thread replies left out)."""
    return [m for m in bot.emulator.messages(channel) if m.subtype != "thread_broadcast"]


async def one_parent(bot: BotUnderTest, channel: str, *, within: float = 10.0) -> Message:
    found = await eventually(lambda: parents(bot, channel), within=within, what="parent message")
    assert len(found) == 1, [m.text for m in found]
    return found[0]


def ephemeral_texts(bot: BotUnderTest, user: str) -> list[str]:
    return [e.text for e in bot.emulator.ephemerals(user=user)]


async def audit_actions(bot: BotUnderTest, action: str) -> list[Any]:
    return [e for e in await bot.deps.store.audit_recent(100) if e.action == action]


async def settle(bot: BotUnderTest, seconds: float = 0.6) -> None:
    """Give the worker every chance to do something it should not (duplicates, extra replies)."""
    await asyncio.sleep(seconds)
    await eventually(lambda: _idle(bot), within=10, what="the queue to drain")


async def _idle(bot: BotUnderTest) -> bool:
    return await bot.deps.store.queue_depth() == 0


@asynccontextmanager
async def alert_bot(
    redis_url: str, config: OpsConfig | None = None, **overrides: Any
) -> AsyncIterator[BotUnderTest]:
    """The bot with the webhook token set and the test alert routes."""
    overrides.setdefault("OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN", TOKEN)
    async with running_bot(redis_url, config=config or alert_config(), **overrides) as bot:
        yield bot


# -- the door: auth, limits, validation -----------------------------------------------------------


async def test_no_token_configured_is_404(redis_url: str) -> None:
    async with running_bot(redis_url, config=alert_config()) as bot:
        status, text = await post_hook(bot, sample("alertmanager-firing.json"))
        assert status == 404
        assert "OPSLOOP_ALERTMANAGER_WEBHOOK_TOKEN" in text
        assert TOKEN not in text


async def test_wrong_or_missing_bearer_token_is_401_and_stores_nothing(redis_url: str) -> None:
    body = sample("alertmanager-firing.json")
    async with alert_bot(redis_url, worker=False) as bot:
        for token, headers in (
            ("not-the-token", None),
            (None, None),
            (None, {"Authorization": TOKEN}),  # the token without the Bearer scheme
            (None, {"Authorization": f"Basic {TOKEN}"}),
            (TOKEN + "x", None),
        ):
            status, text = await post_hook(bot, body, token=token, headers=headers)
            assert status == 401, (token, headers)
            assert TOKEN not in text
        assert await bot.deps.store.queue_depth() == 0
        assert await bot.deps.store.alerts.open_groups() == []


async def test_malformed_payloads_get_400_naming_the_field(redis_url: str) -> None:
    good = sample("alertmanager-firing.json")

    def without(key: str) -> dict[str, Any]:
        body = copy.deepcopy(good)
        del body[key]
        return body

    def changed(**fields: Any) -> dict[str, Any]:
        body = copy.deepcopy(good)
        body.update(fields)
        return body

    no_labels = copy.deepcopy(good)
    no_labels["alerts"][0]["labels"] = {}
    bad_time = copy.deepcopy(good)
    bad_time["alerts"][0]["startsAt"] = "yesterday"
    cases: list[tuple[bytes, str]] = [
        (json.dumps(without("alerts")).encode(), "alerts"),
        (json.dumps(changed(alerts=[])).encode(), "alerts"),
        (json.dumps(changed(status="burning")).encode(), "status"),
        (json.dumps(changed(version="3")).encode(), "version"),
        (json.dumps(without("groupKey")).encode(), "groupKey"),
        (json.dumps(no_labels).encode(), "alerts.0.labels"),
        (json.dumps(bad_time).encode(), "alerts.0.startsAt"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b"", "not JSON"),
    ]
    async with alert_bot(redis_url, worker=False) as bot:
        for raw, field in cases:
            status, text = await post_hook(bot, None, raw=raw)
            assert status == 400, (raw[:60], status, text)
            assert field in text, (raw[:60], text)
            assert "Traceback" not in text
        assert await bot.deps.store.queue_depth() == 0


async def test_a_body_over_one_mib_is_413(redis_url: str) -> None:
    body = sample("alertmanager-firing.json")
    body["commonAnnotations"]["description"] = "x" * (1024 * 1024 + 1)
    async with alert_bot(redis_url, worker=False) as bot:
        status, _ = await post_hook(bot, body)
        assert status == 413
        assert await bot.deps.store.queue_depth() == 0


def grafana_body() -> dict[str, Any]:
    """Grafana's Alertmanager-style webhook: version "1" and many fields of its own."""
    return {
        "receiver": "opsloop",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "DiskFull", "grafana_folder": "infra", "host": "db-1"},
                "annotations": {"summary": "disk 97% full"},
                "startsAt": "2026-11-21T21:56:46Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://grafana/alerting/grafana/abc/view",
                "fingerprint": "6a1c2f0e3b4d5a69",
                "silenceURL": "http://grafana/alerting/silence/new?matcher=alertname%3DDiskFull",
                "dashboardURL": "http://grafana/d/abc",
                "panelURL": "http://grafana/d/abc?viewPanel=2",
                "values": {"B": 97.2, "C": 1},
                "valueString": "[ var='B' labels={host=db-1} value=97.2 ]",
            }
        ],
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "grafana_folder": "infra", "host": "db-1"},
        "commonAnnotations": {"summary": "disk 97% full"},
        "externalURL": "http://grafana/",
        "version": "1",
        "groupKey": '{}/{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] DiskFull (infra db-1)",
        "state": "alerting",
        "message": "**Firing**\n\nValue: B=97.2",
    }


async def test_grafana_version_1_body_is_accepted(redis_url: str) -> None:
    async with alert_bot(redis_url) as bot:
        status, text = await post_hook(bot, grafana_body())
        assert status == 202, text
        parent = await one_parent(bot, ALERTS)  # no severity label: the default route
        assert "DiskFull" in shown(parent) and "disk 97% full" in shown(parent)


# -- one thread per group -------------------------------------------------------------------------


async def test_the_sample_becomes_one_parent_message_with_everything_needed(
    redis_url: str,
) -> None:
    async with alert_bot(redis_url) as bot:
        started = time.monotonic()
        status, text = await post_hook(bot, sample("alertmanager-firing.json"))
        assert status == 202, text
        assert json.loads(text)["groupKey"] == '{}:{alertname="HighLatency"}'
        parent = await one_parent(bot, INCIDENT)
        assert time.monotonic() - started < 3
        seen = shown(parent)
        for expected in (
            "AL-1",
            "HighLatency",
            "p99 latency > 2s",
            "critical",
            "1 firing, 0 resolved",
            "http://127.0.0.1:9090/graph?g0.expr=up",  # generatorURL
            "http://127.0.0.1/runbook",  # runbook_url annotation
            "http://vm:9093/#/alerts?filter=",  # Alertmanager
        ):
            assert expected in seen, (expected, seen)
        assert buttons(parent) == ["Acknowledge", "Silence 1h", "Silence 4h", "Silence 1d"]
        assert parents(bot, ALERTS) == []  # routed: critical goes to the incident channel
        await settle(bot)
        assert parent.replies == []


async def test_redelivery_updates_and_resolution_of_one_group(redis_url: str) -> None:
    first = notification([alert("web-1")])
    async with alert_bot(redis_url) as bot:
        # Alertmanager retries a notification it thinks failed: the same bytes twice.
        assert (await post_hook(bot, first))[0] == 202
        assert (await post_hook(bot, first))[0] == 200
        parent = await one_parent(bot, INCIDENT)
        await settle(bot)
        assert len(parents(bot, INCIDENT)) == 1 and parent.replies == []

        # A later notification of the group with a new alert: edit the parent, one reply.
        second = notification([alert("web-1"), alert("web-2")])
        assert (await post_hook(bot, second))[0] == 202
        await eventually(lambda: "2 firing" in shown(parent), what="the parent edited")
        await eventually(lambda: len(parent.replies) == 1, what="one thread reply")
        assert parent.edits, "the parent is edited in place, not reposted"
        assert "1 new alert firing" in parent.replies[0].text
        assert "web-2" in parent.replies[0].text

        # The same state again in different bytes (Alertmanager's repeat_interval): nothing.
        repeat = copy.deepcopy(second)
        repeat["receiver"] = "bot-repeat"
        repeat["alerts"].reverse()
        edits = len(parent.edits)
        assert (await post_hook(bot, repeat))[0] == 202
        await settle(bot)
        assert len(parent.replies) == 1 and len(parent.edits) == edits
        assert len(parents(bot, INCIDENT)) == 1

        # All resolved: the parent says so and how long it lasted, plus one reply.
        done = notification([alert("web-1", resolved=True), alert("web-2", resolved=True)])
        assert (await post_hook(bot, done))[0] == 202
        await eventually(lambda: "RESOLVED" in shown(parent), what="the parent resolved")
        await eventually(lambda: len(parent.replies) == 2, what="the resolution reply")
        assert "after 7m" in shown(parent)  # startsAt to endsAt of the alerts: 7 minutes
        assert "All alerts resolved after" in parent.replies[1].text
        assert buttons(parent) == []
        assert await bot.deps.store.alerts.open_groups() == []
        assert await audit_actions(bot, "alert.resolved")
        await settle(bot)
        assert len(parents(bot, INCIDENT)) == 1 and len(parent.replies) == 2


async def test_some_alerts_resolving_says_which(redis_url: str) -> None:
    async with alert_bot(redis_url) as bot:
        await post_hook(bot, notification([alert("web-1"), alert("web-2")]))
        parent = await one_parent(bot, INCIDENT)
        await post_hook(bot, notification([alert("web-1"), alert("web-2", resolved=True)]))
        await eventually(lambda: len(parent.replies) == 1, what="a reply")
        assert "1 resolved" in parent.replies[0].text and "web-2" in parent.replies[0].text
        await eventually(lambda: "1 firing, 1 resolved" in shown(parent), what="counts edited")
        assert "FIRING" in shown(parent)


async def test_a_group_firing_again_after_resolving_gets_a_new_thread(redis_url: str) -> None:
    from datetime import timedelta

    from tests.alert_payloads import START

    async with alert_bot(redis_url) as bot:
        await post_hook(bot, notification([alert("web-1")]))
        parent = await one_parent(bot, INCIDENT)
        await post_hook(bot, notification([alert("web-1", resolved=True)]))
        await eventually(lambda: "RESOLVED" in shown(parent), what="resolved")
        later = START + timedelta(hours=1)
        await post_hook(bot, notification([alert("web-1", started=later)]))
        await eventually(lambda: len(parents(bot, INCIDENT)) == 2, what="a new parent")
        assert "AL-2" in shown(parents(bot, INCIDENT)[1])
        assert "RESOLVED" in shown(parent)


# -- people ---------------------------------------------------------------------------------------


async def test_acknowledge_button_ack_command_and_alerts_list(redis_url: str) -> None:
    async with alert_bot(redis_url) as bot:
        await post_hook(bot, sample("alertmanager-firing.json"))
        parent = await one_parent(bot, INCIDENT)
        await eventually(lambda: buttons(parent), what="buttons")

        # Alice and Bob click Acknowledge at the same moment: one of them acknowledged it.
        clicks = await asyncio.gather(
            bot.driver.click("Acknowledge", user="U0ALICE", message=parent),
            bot.driver.click("Acknowledge", user="U0BOB", message=parent),
        )
        assert [c.status for c in clicks] == [200, 200]
        await eventually(lambda: "Acknowledged by <@U0" in shown(parent), what="ack shown")
        [entry] = await eventually(
            lambda: audit_actions(bot, "alert.acknowledged"), what="audit entry"
        )
        winner = entry.who
        loser = "U0BOB" if winner == "U0ALICE" else "U0ALICE"
        assert f"Acknowledged by <@{winner}>" in shown(parent)
        assert entry.subject == "AL-1"
        refusal = await eventually(lambda: ephemeral_texts(bot, loser), what="refusal")
        assert "already acknowledged" in refusal[0] and f"<@{winner}>" in refusal[0]
        assert ephemeral_texts(bot, winner) == []  # the message itself shows it to the winner
        assert "Unacknowledge" in buttons(parent) and "Acknowledge" not in buttons(parent)
        await eventually(lambda: len(parent.replies) == 1, what="ack thread reply")

        # /ack by a third person: already acknowledged, said privately.
        await bot.driver.command("/ack", "AL-1 me too", user="U0CAROL", channel=INCIDENT)
        carol = await eventually(lambda: ephemeral_texts(bot, "U0CAROL"), what="carol's answer")
        assert "already acknowledged" in carol[0]

        # /alerts lists it with who acknowledged it.
        await bot.driver.command("/alerts", "", user="U0DAVE", channel=INCIDENT)
        listing = await eventually(lambda: ephemeral_texts(bot, "U0DAVE"), what="/alerts")
        assert "AL-1" in listing[0] and "HighLatency" in listing[0]
        assert f"acked by <@{winner}>" in listing[0]


async def test_ack_command_with_a_note_and_unacknowledge(redis_url: str) -> None:
    async with alert_bot(redis_url) as bot:
        await post_hook(bot, sample("alertmanager-firing.json"))
        parent = await one_parent(bot, INCIDENT)
        resp = await bot.driver.command(
            "/ack", "al-1 looking at the db", user="U0CAROL", channel=ALERTS
        )
        assert resp.status == 200
        answer = await eventually(lambda: ephemeral_texts(bot, "U0CAROL"), what="confirmation")
        assert "You acknowledged AL-1" in answer[0]
        await eventually(lambda: "looking at the db" in shown(parent), what="note on parent")
        assert "Acknowledged by <@U0CAROL>" in shown(parent)
        [entry] = await audit_actions(bot, "alert.acknowledged")
        assert entry.who == "U0CAROL" and entry.detail["note"] == "looking at the db"

        await bot.driver.click("Unacknowledge", user="U0CAROL", message=parent)
        await eventually(lambda: "Acknowledge" in buttons(parent), what="ack button back")
        assert "Acknowledged by" not in shown(parent)
        assert await audit_actions(bot, "alert.unacknowledged")
        await eventually(lambda: "Unacknowledged by <@U0CAROL>" in shown(parent.replies[-1]))


async def test_ack_usage_errors(redis_url: str) -> None:
    async with alert_bot(redis_url) as bot:
        resp = await bot.driver.command("/ack", "garbage", user="U0ALICE", channel=ALERTS)
        assert resp.json is not None and resp.json["response_type"] == "ephemeral"
        assert "`garbage` is not an alert reference" in resp.json["text"]
        # Escaped on the wire, so that Slack shows <n> instead of reading it as a link.
        assert "/ack AL-&lt;n&gt; [note]" in resp.json["text"]
        resp = await bot.driver.command("/ack", "", user="U0ALICE", channel=ALERTS)
        assert resp.json is not None and "Which alert group?" in resp.json["text"]
        resp = await bot.driver.command("/ack", "AL-404", user="U0ALICE", channel=ALERTS)
        assert resp.status == 200 and resp.body == ""  # well-formed: answered by the job
        answer = await eventually(
            lambda: [t for t in ephemeral_texts(bot, "U0ALICE") if "AL-404" in t], what="answer"
        )
        assert "`AL-404` is not an alert group" in answer[0] and "/alerts" in answer[0]
        resp = await bot.driver.command("/alerts", "everything", user="U0ALICE", channel=ALERTS)
        assert resp.json is not None and "takes no arguments" in resp.json["text"]


async def test_ack_of_a_resolved_group_says_so(redis_url: str) -> None:
    async with alert_bot(redis_url) as bot:
        await post_hook(bot, notification([alert("web-1")]))
        parent = await one_parent(bot, INCIDENT)
        await post_hook(bot, notification([alert("web-1", resolved=True)]))
        await eventually(lambda: "RESOLVED" in shown(parent), what="resolved")
        await bot.driver.command("/ack", "AL-1", user="U0ALICE", channel=ALERTS)
        answer = await eventually(lambda: ephemeral_texts(bot, "U0ALICE"), what="answer")
        assert "already resolved" in answer[0]


async def test_alerts_lists_this_channels_groups_first(redis_url: str) -> None:
    async with alert_bot(redis_url) as bot:
        await bot.driver.command("/alerts", "", user="U0ALICE", channel=ALERTS)
        empty = await eventually(lambda: ephemeral_texts(bot, "U0ALICE"), what="empty list")
        assert "No open alert groups" in empty[0]
        await post_hook(bot, notification([alert("web-1")]))  # critical: incident channel
        await one_parent(bot, INCIDENT)
        warn = notification([alert("db-1", name="SlowDisk", severity="warning")], name="SlowDisk")
        await post_hook(bot, warn)
        await one_parent(bot, ALERTS)
        await bot.driver.command("/alerts", "", user="U0BOB", channel=ALERTS)
        [listing] = await eventually(lambda: ephemeral_texts(bot, "U0BOB"), what="list")
        assert "2 open alert groups" in listing
        assert listing.index("SlowDisk") < listing.index("HighLatency")
        assert f"<#{INCIDENT}>" in listing  # the other channel's group says where it is
        assert re.search(r"\*AL-2\* SlowDisk · 1 firing · \d+[smhd]", listing), listing  # age


async def test_silence_without_alertmanager_is_a_clear_message(redis_url: str) -> None:
    async with alert_bot(redis_url) as bot:
        await post_hook(bot, sample("alertmanager-firing.json"))
        parent = await one_parent(bot, INCIDENT)
        await bot.driver.click("Silence 4h", user="U0ALICE", message=parent)
        answer = await eventually(lambda: ephemeral_texts(bot, "U0ALICE"), what="answer")
        assert "Alertmanager is not configured" in answer[0]
        assert "OPSLOOP_ALERTMANAGER_URL" in answer[0]
        # Acknowledging still works, and says that no silence was made only when one was due.
        await bot.driver.click("Acknowledge", user="U0ALICE", message=parent)
        await eventually(lambda: "Acknowledged by <@U0ALICE>" in shown(parent), what="ack")
        assert "Silenced" not in shown(parent)


async def test_ack_stands_when_alertmanager_cannot_be_reached(redis_url: str) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with alert_bot(redis_url, OPSLOOP_ALERTMANAGER_URL=nowhere) as bot:
        await post_hook(bot, sample("alertmanager-firing.json"))
        parent = await one_parent(bot, INCIDENT)
        started = time.monotonic()
        await bot.driver.command("/ack", "AL-1 on it", user="U0ALICE", channel=INCIDENT)
        [answer] = await eventually(lambda: ephemeral_texts(bot, "U0ALICE"), within=30)
        assert time.monotonic() - started < 30
        assert "You acknowledged AL-1" in answer and "No silence was made" in answer
        assert "Alertmanager" in answer
        await eventually(lambda: "Acknowledged by <@U0ALICE>" in shown(parent), what="ack shown")
        await eventually(lambda: parent.replies, what="the ack reply")
        assert "No silence was made" in parent.replies[0].text
        [entry] = await audit_actions(bot, "alert.acknowledged")
        assert entry.detail["silence_id"] is None


# -- escalation -----------------------------------------------------------------------------------


def escalations(bot: BotUnderTest, parent: Message) -> list[Message]:
    return [r for r in parent.replies if ":rotating_light:" in r.text]


async def test_escalation_repeats_until_acknowledged(redis_url: str) -> None:
    config = alert_config(escalate_after="1s", escalate_to=("S0ONCALL", "U0BOB"))
    async with alert_bot(redis_url, config) as bot:
        await post_hook(bot, sample("alertmanager-firing.json"))
        parent = await one_parent(bot, INCIDENT)
        await eventually(lambda: len(escalations(bot, parent)) >= 2, within=6, what="2 rounds")
        first = escalations(bot, parent)[0]
        assert "<!subteam^S0ONCALL>" in first.text and "<@U0BOB>" in first.text
        assert "AL-1" in first.text and "nobody has acknowledged" in first.text
        assert first.subtype == "thread_broadcast"  # also shown in the channel
        assert first in bot.emulator.messages(INCIDENT)
        broadcast = [c for c in bot.emulator.calls if c.args.get("reply_broadcast")]
        assert broadcast and all(c.args.get("thread_ts") == parent.ts for c in broadcast)
        audited = await audit_actions(bot, "alert.escalated")
        assert len(audited) >= 2 and audited[-1].detail["to"] == ["S0ONCALL", "U0BOB"]

        await bot.driver.click("Acknowledge", user="U0CAROL", message=parent)
        await eventually(lambda: "Acknowledged by <@U0CAROL>" in shown(parent), what="ack")
        count = len(escalations(bot, parent))
        await asyncio.sleep(1.5)
        assert len(escalations(bot, parent)) == count


async def test_escalation_stops_when_the_group_resolves(redis_url: str) -> None:
    config = alert_config(escalate_after="1s", escalate_to=("U0BOB",))
    async with alert_bot(redis_url, config) as bot:
        await post_hook(bot, notification([alert("web-1")]))
        parent = await one_parent(bot, INCIDENT)
        await eventually(lambda: escalations(bot, parent), within=5, what="an escalation")
        await post_hook(bot, notification([alert("web-1", resolved=True)]))
        await eventually(lambda: "RESOLVED" in shown(parent), what="resolved")
        count = len(escalations(bot, parent))
        await asyncio.sleep(1.5)
        assert len(escalations(bot, parent)) == count


async def test_escalation_timers_survive_a_restart(redis_url: str) -> None:
    config = alert_config(escalate_after="2s", escalate_to=("S0ONCALL",))
    async with running_emulator() as emu:
        async with alert_bot(redis_url, config, emulator=emu) as bot:
            await post_hook(bot, sample("alertmanager-firing.json"))
            parent = await one_parent(bot, INCIDENT)
        # The process that received the alert is gone before the escalation was due.
        assert escalations(bot, parent) == []
        async with alert_bot(redis_url, config, emulator=emu) as again:
            await eventually(lambda: escalations(again, parent), within=6, what="escalation")
            assert "<!subteam^S0ONCALL>" in escalations(again, parent)[0].text
            assert len(parents(again, INCIDENT)) == 1


# -- storms ---------------------------------------------------------------------------------------


def storm_group(i: int) -> dict[str, Any]:
    name = f"Storm{i:03d}"
    return notification([alert(f"node-{i}", name=name, severity="warning")], name=name)


async def test_a_storm_is_summed_up_in_one_message_and_every_group_is_kept(
    redis_url: str,
) -> None:
    sent = 14
    async with alert_bot(redis_url, OPSLOOP_STORM_THRESHOLD="3") as bot:
        answers = await asyncio.gather(*(post_hook(bot, storm_group(i)) for i in range(sent)))
        assert {status for status, _ in answers} == {202}

        def storms() -> list[Message]:
            return [m for m in parents(bot, ALERTS) if "Alert storm" in shown(m)]

        def settled() -> bool:
            found = storms()
            return len(found) == 1 and f"*{sent - 3}* new alert groups" in shown(found[0])

        await eventually(settled, within=30, what="the storm summary counting every group")
        assert "groups beyond 3 a minute are summed up here" in shown(storms()[0])
        alerts_messages = parents(bot, ALERTS)
        assert len(alerts_messages) == 3 + 1, [m.text for m in alerts_messages]
        # No message lost to Slack's limit: every 429 was waited out and sent again.
        posts = [c for c in bot.emulator.calls if c.method == "chat.postMessage"]
        assert all(c.ok or c.status == 429 for c in posts)

        await bot.driver.command("/alerts", "", user="U0ALICE", channel=ALERTS)
        [listing] = await eventually(lambda: ephemeral_texts(bot, "U0ALICE"), what="list")
        assert f"{sent} open alert groups" in listing
        refs = {f"AL-{n}" for n in range(1, sent + 1)}
        assert all(f"*{ref}*" in listing for ref in refs), listing
        assert len(await bot.deps.store.alerts.open_groups()) == sent

        # A storm member (no message of its own) is acknowledged with /ack.
        members = [g for g in await bot.deps.store.alerts.open_groups() if g.storm_id]
        assert len(members) == sent - 3
        ref = members[0].ref
        await bot.driver.command("/ack", f"{ref} on it", user="U0BOB", channel=ALERTS)
        answer = await eventually(lambda: ephemeral_texts(bot, "U0BOB"), what="ack answer")
        assert f"You acknowledged {ref}" in answer[0]
        await eventually(lambda: "*1* acknowledged" in shown(storms()[0]), what="storm counts")


async def test_a_storm_under_slack_rate_limits_loses_nothing(redis_url: str) -> None:
    """The bot's own budget is looser than Slack's here, so Slack answers 429s: honoured."""
    sent = 8
    async with (
        running_emulator(channel_rate_per_second=1.0, channel_burst=2) as emu,
        alert_bot(
            redis_url,
            emulator=emu,
            OPSLOOP_STORM_THRESHOLD="5",
            OPSLOOP_CHANNEL_RATE="5",
            OPSLOOP_CHANNEL_BURST="5",
        ) as bot,
    ):
        await asyncio.gather(*(post_hook(bot, storm_group(i)) for i in range(sent)))

        def complete() -> bool:
            found = parents(bot, ALERTS)
            storm = [m for m in found if "Alert storm" in shown(m)]
            return (
                len(found) == 6
                and len(storm) == 1
                and f"*{sent - 5}* new alert groups" in shown(storm[0])
            )

        await eventually(complete, within=30, what="5 parents and the storm summary")
        limited = [c for c in emu.calls if c.status == 429]
        assert limited, "the test wants Slack to have said 429 at least once"
        assert len(await bot.deps.store.alerts.open_groups()) == sent


async def test_a_storm_escalates_once_in_its_summary_thread(redis_url: str) -> None:
    config = alert_config(escalate_after="1s", escalate_to=("S0ONCALL",))

    def critical(i: int) -> dict[str, Any]:
        name = f"Crit{i}"
        return notification([alert(f"node-{i}", name=name)], name=name)

    async with (
        running_emulator(channel_rate_per_second=None) as emu,
        # Rate limits are another test's subject: here they would only slow the rounds down.
        alert_bot(
            redis_url, config, emulator=emu, OPSLOOP_STORM_THRESHOLD="1", OPSLOOP_CHANNEL_RATE="50"
        ) as bot,
    ):
        for i in range(3):
            await post_hook(bot, critical(i))

        def summary() -> Message | None:
            found = [m for m in parents(bot, INCIDENT) if "Alert storm" in shown(m)]
            return found[0] if found and "*2* new alert groups" in shown(found[0]) else None

        storm = await eventually(summary, within=10, what="the storm summary")
        await eventually(lambda: storm.replies, within=6, what="the storm's escalation")
        first = storm.replies[0]
        assert "<!subteam^S0ONCALL>" in first.text and "2 alert groups" in first.text
        assert first.subtype == "thread_broadcast"
        audited = [e.subject for e in await audit_actions(bot, "alert.escalated")]
        assert any(s.startswith("storm ") for s in audited)
        # The group that has its own message escalates in its own thread, not in the storm's.
        [own] = [m for m in parents(bot, INCIDENT) if m is not storm]
        await eventually(lambda: escalations(bot, own), within=5, what="its own escalation")

        # Everyone in the storm acknowledged: its escalation stops.
        for group in await bot.deps.store.alerts.open_groups():
            if group.storm_id:
                await bot.driver.command("/ack", group.ref, user="U0CAROL", channel=INCIDENT)
        await eventually(lambda: "*2* acknowledged" in shown(storm), what="acks counted")
        count = len(storm.replies)
        await asyncio.sleep(1.5)
        assert len(storm.replies) == count


# -- Redis away -----------------------------------------------------------------------------------


async def test_webhook_answers_503_when_redis_is_away(redis_url: str, tmp_path: Path) -> None:
    async with own_redis(tmp_path) as server, alert_bot(server.url, worker=False) as bot:
        server.stop()
        started = time.monotonic()
        status, text = await post_hook(bot, sample("alertmanager-firing.json"))
        assert status == 503, text  # Alertmanager retries a 5xx, and drops a 4xx
        assert "retry" in text.lower()
        assert time.monotonic() - started < 2
        server.start()  # the same port
        status, _ = await post_hook(bot, sample("alertmanager-firing.json"))
        assert status == 202
        assert await bot.deps.store.queue_depth() == 1
    # A Redis that was never there: 503 too, never 500.
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with alert_bot(dead, worker=False) as bot:
        status, _ = await post_hook(bot, sample("alertmanager-firing.json"))
        assert status == 503


async def test_webhook_answers_503_in_time_when_redis_hangs(redis_url: str, tmp_path: Path) -> None:
    async with own_redis(tmp_path) as server, alert_bot(server.url, worker=False) as bot:
        assert server.process is not None
        status, _ = await post_hook(bot, sample("alertmanager-firing.json"))
        assert status == 202
        # Paused, not gone: connections stay open and nothing answers.
        server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            status, text = await post_hook(bot, sample("alertmanager-resolved.json"))
            took = time.monotonic() - started
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert status == 503, text
        assert took < 3, f"answered after {took:.1f} s"
        # The notification reached Redis's socket before the pause: it is stored once Redis
        # runs again, and Alertmanager's retry of it is recognised as the same one.

        async def both_stored() -> bool:
            return await bot.deps.store.queue_depth() == 2

        await eventually(both_stored, what="the notification stored after the pause")
        status, text = await post_hook(bot, sample("alertmanager-resolved.json"))
        assert status == 200 and '"duplicate"' in text


async def test_the_same_process_works_again_once_redis_is_back(
    redis_url: str, tmp_path: Path
) -> None:
    async with own_redis(tmp_path) as server, alert_bot(server.url) as bot:
        server.stop()
        status, _ = await post_hook(bot, sample("alertmanager-firing.json"))
        assert status == 503
        await asyncio.sleep(0.3)  # the worker polls Redis meanwhile, and fails
        server.start()
        status, _ = await post_hook(bot, sample("alertmanager-firing.json"))  # the redelivery
        assert status == 202
        parent = await one_parent(bot, INCIDENT, within=5)
        assert "AL-1" in shown(parent)


async def test_an_escalation_that_slack_refuses_is_sent_later_and_keeps_going(
    redis_url: str,
) -> None:
    config = alert_config(escalate_after="1s", escalate_to=("U0BOB",))
    async with running_emulator() as emu, alert_bot(redis_url, config, emulator=emu) as bot:
        await post_hook(bot, sample("alertmanager-firing.json"))
        parent = await one_parent(bot, INCIDENT)
        token = emu.bot_token
        emu.bot_token = "xoxb-revoked"  # Slack refuses every call for a while
        await eventually(
            lambda: any(
                c.error == "invalid_auth" and c.args.get("reply_broadcast") for c in emu.calls
            ),
            within=5,
            what="the first escalation to fail",
        )
        emu.bot_token = token
        await eventually(lambda: len(escalations(bot, parent)) >= 2, within=5, what="escalations")
        rounds = [e.detail["round"] for e in await audit_actions(bot, "alert.escalated")]
        assert sorted(rounds)[:2] == [1, 2]


async def _keys(url: str, pattern: str) -> list[bytes]:
    client = redis.asyncio.Redis.from_url(url)
    try:
        return [k async for k in client.scan_iter(pattern)]
    finally:
        await client.aclose()
