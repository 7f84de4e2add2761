"""POST /hooks/grafana end to end: Grafana's webhook bodies in, the same alert threads out.

Real Redis, the emulated Slack, the whole bot in-process; bodies from Grafana's documentation
(tests/samples/README.md), signed as grafana/alerting's http/hmac.go signs them.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.config_file import OpsConfig
from tests.alert_payloads import alert_config
from tests.grafana_payloads import SECRET, grafana_sample, post_grafana, resolved, signature
from tests.harness import BotUnderTest, running_bot
from tests.servers import free_port, own_redis
from tests.test_alerts_webhook import (
    ALERTS,
    INCIDENT,
    audit_actions,
    buttons,
    escalations,
    one_parent,
    parents,
    settle,
    shown,
)
from tests.waiting import eventually


@asynccontextmanager
async def grafana_bot(
    redis_url: str, config: OpsConfig | None = None, **overrides: Any
) -> AsyncIterator[BotUnderTest]:
    overrides.setdefault("OPSLOOP_GRAFANA_WEBHOOK_SECRET", SECRET)
    async with running_bot(redis_url, config=config or alert_config(), **overrides) as bot:
        yield bot


# -- the door --------------------------------------------------------------------------------------


async def test_no_secret_configured_is_404(redis_url: str) -> None:
    async with running_bot(redis_url, config=alert_config()) as bot:
        status, text = await post_grafana(bot, grafana_sample())
        assert status == 404 and "OPSLOOP_GRAFANA_WEBHOOK_SECRET" in text


async def test_a_bad_or_missing_signature_is_401_and_stores_nothing(redis_url: str) -> None:
    async with grafana_bot(redis_url, worker=False) as bot:
        body = grafana_sample()
        raw = json.dumps(body).encode()
        for kwargs in (
            {"secret": None},  # unsigned
            {"secret": "another-secret"},
            {"headers": {"X-Grafana-Alerting-Signature": "00" * 32}},
            # The body signed, but not with the timestamp sent: Grafana signs "ts:body".
            {"headers": {"X-Grafana-Alerting-Signature": signature(raw)}},
            {"timestamp": str(int(time.time()) - 3600)},  # an old delivery replayed
            {"timestamp": "yesterday"},
        ):
            status, text = await post_grafana(bot, body, raw=raw, **kwargs)  # type: ignore[arg-type]
            assert status == 401, (kwargs, status, text)
            assert "Unauthorized" in text and SECRET not in text
        assert await bot.deps.store.queue_depth() == 0


async def test_signed_without_a_timestamp_is_accepted(redis_url: str) -> None:
    async with grafana_bot(redis_url, worker=False) as bot:
        status, text = await post_grafana(bot, grafana_sample(), timestamp=None)
        assert status == 202, text
        # The timestamp header Grafana's own tests name is read too.
        raw = json.dumps(grafana_sample(groupKey="other")).encode()
        stamp = str(int(time.time()))
        headers = {
            "X-Grafana-Alerting-Timestamp": stamp,
            "X-Grafana-Alerting-Signature": signature(raw, timestamp=stamp),
        }
        status, text = await post_grafana(bot, None, raw=raw, timestamp=None, headers=headers)
        assert status == 202, text


async def test_malformed_bodies_get_400_naming_the_field(redis_url: str) -> None:
    async with grafana_bot(redis_url, worker=False) as bot:
        cases: list[tuple[bytes, str]] = [
            (b"{not json", "not JSON"),
            (b"[1, 2]", "body"),
            (b"\xff\xfe", "not JSON"),
            (json.dumps(grafana_sample(version="4")).encode(), "version"),
            (json.dumps(grafana_sample(alerts=[])).encode(), "alerts"),
            (json.dumps(grafana_sample(alerts=["x"])).encode(), "alerts.0"),
            (json.dumps(grafana_sample(groupKey="")).encode(), "groupKey"),
            (json.dumps(grafana_sample(status="bad")).encode(), "status"),
        ]
        odd = grafana_sample()
        odd["alerts"][0]["values"] = {"B": "high"}
        cases.append((json.dumps(odd).encode(), "alerts.0.values.B"))
        odd = grafana_sample()
        odd["alerts"][0]["startsAt"] = "noon"
        cases.append((json.dumps(odd).encode(), "alerts.0.startsAt"))
        for raw, field in cases:
            status, text = await post_grafana(bot, None, raw=raw)
            assert status == 400, (raw[:60], status, text)
            assert field in text, (field, text)
        assert await bot.deps.store.queue_depth() == 0


async def test_a_body_over_one_mib_is_413(redis_url: str) -> None:
    async with grafana_bot(redis_url, worker=False) as bot:
        body = grafana_sample()
        body["message"] = "x" * (1024 * 1024 + 10)
        status, _ = await post_grafana(bot, body)
        assert status == 413


async def test_redis_away_is_503_never_500(redis_url: str, tmp_path: Path) -> None:
    async with own_redis(tmp_path) as server, grafana_bot(server.url, worker=False) as bot:
        server.stop()
        status, text = await post_grafana(bot, grafana_sample())
        assert status == 503 and "retry" in text.lower()
        server.start()
        status, _ = await post_grafana(bot, grafana_sample())
        assert status == 202
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with grafana_bot(dead, worker=False) as bot:
        status, _ = await post_grafana(bot, grafana_sample())
        assert status == 503


# -- the thread ------------------------------------------------------------------------------------


async def test_the_sample_becomes_one_thread_with_dashboard_panel_and_values(
    redis_url: str,
) -> None:
    async with grafana_bot(redis_url) as bot:
        status, text = await post_grafana(bot, grafana_sample())
        assert status == 202, text
        parent = await one_parent(bot, INCIDENT)  # severity=critical: the route's channel
        seen = shown(parent)
        for expected in (
            "AL-1",
            "HighCPU",
            "web-1 CPU is 93%",
            "B=0.9312, C=1",
            "https://grafana.example.com/d/shop-overview?from=1795290000000&orgId=1"
            "&to=1795294200000|Dashboard",
            "&viewPanel=4|Panel",
            "https://grafana.example.com/alerting/grafana/cpu-rule-1/view?orgId=1|Source",
            "https://runbooks.example.com/high-cpu|Runbook",
        ):
            assert expected in seen, (expected, seen)
        assert "|Alertmanager>" not in seen  # Grafana's URL is no Alertmanager UI
        assert buttons(parent) == ["Acknowledge", "Silence 1h", "Silence 4h", "Silence 1d"]
        assert parents(bot, ALERTS) == []
        [group] = await bot.deps.store.alerts.open_groups()
        assert group.source == "grafana"
        assert group.silence_matchers == [
            {"name": "__alert_rule_uid__", "value": "cpu-rule-1", "isRegex": False, "isEqual": True}
        ]

        # Grafana delivers the same notification again: 200, nothing new in Slack.
        status, _ = await post_grafana(bot, grafana_sample())
        assert status == 200
        await settle(bot)
        assert parent.replies == [] and len(parents(bot, INCIDENT)) == 1

        status, _ = await post_grafana(bot, resolved(grafana_sample()))
        assert status == 202
        await eventually(lambda: "RESOLVED" in shown(parent), what="resolved in place")
        await eventually(lambda: parent.replies, what="the resolution reply")
        assert len(parents(bot, INCIDENT)) == 1  # edited in place, never a second message
        assert await audit_actions(bot, "alert.resolved")


async def test_the_rule_uid_field_and_several_rules_in_one_group(redis_url: str) -> None:
    async with grafana_bot(redis_url) as bot:
        body = grafana_sample()
        second = json.loads(json.dumps(body["alerts"][0]))
        second["labels"]["instance"] = "web-2"
        second["fingerprint"] = "bc97ff14869b13e3"
        second["ruleUID"] = "cpu-rule.2"  # newer Grafana sends the UID in its own field
        second["silenceURL"] = ""
        second["values"] = None  # a rule with no values: nothing shown, no error
        body["alerts"].append(second)
        del body["commonLabels"]["instance"]
        status, text = await post_grafana(bot, body)
        assert status == 202, text
        parent = await one_parent(bot, INCIDENT)
        assert "instance=web-1: `B=0.9312, C=1`" in shown(parent)
        [group] = await bot.deps.store.alerts.open_groups()
        [matcher] = group.silence_matchers
        assert matcher["isRegex"] and matcher["value"] == r"cpu\-rule\-1|cpu\-rule\.2"


async def test_routes_and_escalation_work_as_for_alertmanager(redis_url: str) -> None:
    config = alert_config(escalate_after="1s", escalate_to=("S0ONCALL",))
    async with grafana_bot(redis_url, config) as bot:
        warning = grafana_sample(groupKey="warn")
        for alert in warning["alerts"]:
            alert["labels"]["severity"] = "warning"
        warning["commonLabels"]["severity"] = "warning"
        assert (await post_grafana(bot, warning))[0] == 202
        assert (await post_grafana(bot, grafana_sample()))[0] == 202
        parent = await one_parent(bot, INCIDENT)  # critical: the incident channel
        await one_parent(bot, ALERTS)  # warning: the default route
        await eventually(lambda: escalations(bot, parent), within=6, what="an escalation")
        assert "<!subteam^S0ONCALL>" in escalations(bot, parent)[0].text
        await bot.driver.click("Acknowledge", user="U0CAROL", message=parent)
        await eventually(lambda: "Acknowledged by <@U0CAROL>" in shown(parent), what="ack")
