"""The webhook body Alertmanager sends (payload version 4), and Grafana's look-alike (version 1).

Validated with pydantic so that a bad body is refused with the field that is wrong; extra fields
(Grafana adds many) are ignored.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ZERO_TIME_YEAR = 1  # Alertmanager writes "0001-01-01T00:00:00Z" for "not ended"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WebhookAlert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""
    # A source's extras, in the bot's words (a source's adapter maps its own fields here):
    # named links shown with the group (e.g. "Dashboard"), and the values its rule evaluated.
    links: dict[str, str] = Field(default_factory=dict)
    values: dict[str, float | None] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _has_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels:
            raise ValueError("an alert needs at least one label (alertname)")
        return labels

    @field_validator("endsAt")
    @classmethod
    def _zero_time(cls, value: datetime | None) -> datetime | None:
        return None if value is not None and value.year == ZERO_TIME_YEAR else value


class SilenceMatcher(_Lenient):
    """One matcher a source asks its groups' silences to carry (Alertmanager's JSON shape)."""

    name: str = Field(min_length=1)
    value: str
    isRegex: bool = False
    isEqual: bool = True


class WebhookNotification(_Lenient):
    version: Literal["4", "1"]
    groupKey: str = Field(min_length=1)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[WebhookAlert] = Field(min_length=1)
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = 0
    # Which system sent it: its groups are silenced there (bot/plugins.py, Systems.silencers).
    source: str = "alertmanager"
    # Matchers a silence of the group carries besides its labels (a source's adapter sets
    # them, e.g. the alert rule's id, which the source keeps off the labels it sends).
    silenceMatchers: list[SilenceMatcher] = Field(default_factory=list)


class PayloadError(ValueError):
    """The body is not a notification; the message names the field."""


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def parse_notification(data: Any) -> WebhookNotification:
    """Validate a decoded JSON body; raise PayloadError naming the first bad field."""
    if not isinstance(data, dict):
        raise PayloadError("body: must be a JSON object (an Alertmanager webhook notification)")
    try:
        return WebhookNotification.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["loc"] == ("version",):
            message = "must be '4' (Alertmanager) or '1' (Grafana)"
        raise PayloadError(f"{_field(first['loc'])}: {message}") from None


def fingerprint(alert: WebhookAlert) -> str:
    """Alertmanager's fingerprint, or a stable hash of the labels when a sender leaves it out."""
    if alert.fingerprint:
        return alert.fingerprint
    canonical = json.dumps(alert.labels, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def notification_id(raw: bytes) -> str:
    """A redelivered notification is the same bytes: its hash is its identity."""
    return hashlib.sha256(raw).hexdigest()[:32]


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
