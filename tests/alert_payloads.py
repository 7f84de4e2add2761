"""Alertmanager webhook bodies for tests, shaped like samples/alertmanager-firing.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config_file import AlertRoute, Alerts, OpsConfig, Roles

SAMPLES = Path(__file__).resolve().parent / "samples"
TOKEN = "am-webhook-test-token"
START = datetime(2026, 11, 21, 21, 0, tzinfo=UTC)


def stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def alert(
    instance: str,
    *,
    name: str = "HighLatency",
    resolved: bool = False,
    started: datetime = START,
    severity: str = "critical",
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels = {"alertname": name, "instance": instance, "service": "api", "severity": severity}
    labels.update(extra or {})
    return {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": {"summary": "p99 latency > 2s", "runbook_url": "http://runbooks/latency"},
        "startsAt": stamp(started),
        "endsAt": stamp(started + timedelta(minutes=7)) if resolved else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": f"fp-{name}-{instance}",
    }


def notification(alerts: list[dict[str, Any]], *, name: str = "HighLatency") -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    common = {"alertname": name, "service": "api", "severity": alerts[0]["labels"]["severity"]}
    return {
        "receiver": "bot",
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": {"alertname": name},
        "commonLabels": common,
        "commonAnnotations": {"summary": "p99 latency > 2s"},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
    }


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return data


def alert_config(
    *, escalate_after: str | None = None, escalate_to: tuple[str, ...] = ("S0ONCALL",)
) -> OpsConfig:
    critical = AlertRoute.model_validate(
        {
            "match": {"severity": "critical"},
            "channel": "C0INCIDENT",
            **({"escalate_after": escalate_after, "escalate_to": list(escalate_to)}
               if escalate_after else {}),
        }
    )  # fmt: skip
    default = AlertRoute.model_validate({"channel": "C0ALERTS"})
    return OpsConfig(
        roles=Roles(approvers=["U0BOB"]),
        alerts=Alerts(routes=[critical, default], ack_silence=timedelta(hours=2)),
    )
