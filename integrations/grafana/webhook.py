"""Grafana's webhook contact point as an alert source (bot/alerting/ports.py, AlertSource).

Its default body (grafana/alerting receivers/webhook/v1, `webhookMessage`) is Alertmanager's
webhook body with `version: "1"` and extras. Its HMAC signature (grafana/alerting http/hmac.go):
hex(HMAC-SHA256(secret, [timestamp + ":"] + body)) in `X-Grafana-Alerting-Signature`, the
timestamp (Unix seconds) in the header the contact point names, when it names one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.alerting.ports import AlertSource, SourceRefused

SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
# Grafana has no default timestamp header: the contact point names one. These are accepted.
TIMESTAMP_HEADERS = ("X-Grafana-Alerting-Signature-Timestamp", "X-Grafana-Alerting-Timestamp")
# A signed timestamp further than this from now is refused: a replayed old delivery. Grafana
# signs every attempt anew, so its own retries always carry a fresh one.
MAX_SKEW_SECONDS = 300
RULE_UID_LABEL = "__alert_rule_uid__"  # Grafana's label; it strips it from what it sends


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The signature Grafana sends for `body` (and `timestamp`, when one is configured)."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    if timestamp is not None:
        mac.update(timestamp.encode() + b":")
    mac.update(body)
    return mac.hexdigest()


def authenticate(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> str | None:
    """None when the call carries Grafana's signature for this body; else why not."""
    given = headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not given:
        return f"send the contact point's HMAC signature in {SIGNATURE_HEADER}."
    timestamp = next((headers[h] for h in TIMESTAMP_HEADERS if headers.get(h)), None)
    expected = sign(secret, body, timestamp)
    # Constant time: the signature must not leak through response timing.
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return f"{SIGNATURE_HEADER} does not match the body (check the HMAC secret)."
    if timestamp is not None:
        try:
            skew = abs(now - int(timestamp.strip()))
        except ValueError:
            return "the signature's timestamp is not Unix seconds."
        if skew > MAX_SKEW_SECONDS:
            return "the signature's timestamp is more than 5 minutes from now (a replay?)."
    return None


def _rule_uid(alert: Mapping[str, Any]) -> str:
    """The alert rule's UID: `ruleUID` (newer Grafana) or the silence link's matcher."""
    uid = alert.get("ruleUID")
    if isinstance(uid, str) and uid:
        return uid
    silence_url = alert.get("silenceURL")
    if isinstance(silence_url, str):
        for name, value in parse_qsl(urlsplit(silence_url).query):
            if name == "matcher" and value.startswith(RULE_UID_LABEL + "="):
                return value.removeprefix(RULE_UID_LABEL + "=")
    return ""


def _links(alert: Mapping[str, Any]) -> dict[str, str]:
    links = {}
    for name, key in (("Dashboard", "dashboardURL"), ("Panel", "panelURL")):
        url = alert.get(key)
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            links[name] = url
    return links


def translate(data: Any) -> dict[str, Any]:
    """Grafana's body as a notification the alert family reads (bot/alerting/payload.py):
    its dashboard and panel links and values in the bot's words, silences matched on the
    alert rule's UID."""
    if not isinstance(data, dict):
        raise SourceRefused("body: must be a JSON object (a Grafana webhook notification)")
    if data.get("version") != "1":
        raise SourceRefused(
            "version: must be '1' (Grafana's default webhook body; a custom payload template "
            "cannot be read)"
        )
    notification = dict(data)
    # Grafana's own URL, not an Alertmanager UI: the alerts' links point into it instead.
    notification["externalURL"] = ""
    alerts = data.get("alerts")
    uids: set[str] = set()
    if isinstance(alerts, list):
        translated = []
        for alert in alerts:
            if isinstance(alert, dict):
                alert = {**alert, "links": _links(alert)}
                if alert.get("values") is None:
                    alert["values"] = {}
                if uid := _rule_uid(alert):
                    uids.add(uid)
            translated.append(alert)
        notification["alerts"] = translated
    notification["silenceMatchers"] = _rule_matchers(uids)
    return notification


def _rule_matchers(uids: set[str]) -> list[dict[str, Any]]:
    if not uids:
        return []
    if len(uids) == 1:
        return [{"name": RULE_UID_LABEL, "value": next(iter(uids))}]
    either = "|".join(re.escape(u) for u in sorted(uids))
    return [{"name": RULE_UID_LABEL, "value": either, "isRegex": True}]


SOURCE = AlertSource(
    name="grafana",
    route="/hooks/grafana",
    secret="grafana_webhook_secret",
    secret_env="OPSLOOP_GRAFANA_WEBHOOK_SECRET",
    authenticate=authenticate,
    translate=translate,
)
