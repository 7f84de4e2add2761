"""One alert group as the bot tracks it, and how a notification changes it.

Everything here is pure: the store saves and loads `AlertGroup` as JSON, the jobs decide what to
send from the `Change` that `merge` returns. Notifications may be processed out of order (several
workers), so each alert keeps the newest incarnation it has seen: a `resolved` for the same
start time beats `firing`, and a `firing` only reopens an alert that started after it ended.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.alerting.payload import WebhookNotification, fingerprint, utc


@dataclass
class TrackedAlert:
    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str | None
    generator_url: str
    links: dict[str, str] = field(default_factory=dict)  # e.g. "Dashboard", "Panel"
    values: dict[str, float | None] = field(default_factory=dict)  # what its rule evaluated


@dataclass
class Outgoing:
    """A thread reply still to be sent (kept in the group until Slack took it)."""

    text: str
    broadcast: bool = False


@dataclass
class Change:
    new_firing: list[TrackedAlert] = field(default_factory=list)
    resolved: list[TrackedAlert] = field(default_factory=list)
    reopened: bool = False
    group_resolved: bool = False

    @property
    def empty(self) -> bool:
        return not (self.new_firing or self.resolved)


@dataclass
class AlertGroup:
    """The bot's record of one Alertmanager group (one `groupKey`) and its Slack thread."""

    ref: str
    group_key: str
    first_seen: float
    channel: str | None = None
    status: str = "firing"
    receiver: str = ""
    group_labels: dict[str, str] = field(default_factory=dict)
    common_labels: dict[str, str] = field(default_factory=dict)
    common_annotations: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    source: str = "alertmanager"  # the system that sent it: where its silences are made
    # Matchers its silences carry besides its labels, as its source asked (payload.py).
    silence_matchers: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, TrackedAlert] = field(default_factory=dict)
    updated_at: float = 0.0
    resolved_at: float | None = None
    message_ts: str | None = None
    storm_id: str | None = None  # tracked in its channel's storm summary, not its own thread
    acked_by: str | None = None
    acked_at: float | None = None
    ack_note: str = ""
    ack_key: str | None = None  # the request (job id) that acknowledged: a re-run knows itself
    silence_id: str | None = None
    silence_until: float | None = None
    silenced_by: str | None = None
    # The request whose silence this is. Saved before Alertmanager is asked: with no
    # silence_id it is an intent whose effect is unknown, and whoever finds it looks in
    # Alertmanager for that request's marker before making anything.
    silence_key: str | None = None
    escalate_after: float | None = None
    escalate_to: list[str] = field(default_factory=list)
    escalations: int = 0
    poll_generation: int = 0
    outbox: list[Outgoing] = field(default_factory=list)
    # The newest notifications (their jobs' ids) applied to the group: a notification's job
    # that runs again (a Slack pause, a crash) finds itself here and only delivers.
    applied: list[str] = field(default_factory=list)

    # -- what people read ----------------------------------------------------------------

    @property
    def title(self) -> str:
        labels = self.group_labels or self.common_labels
        return labels.get("alertname") or self.common_labels.get("alertname") or self.group_key

    @property
    def summary(self) -> str:
        if "summary" in self.common_annotations:
            return self.common_annotations["summary"]
        for alert in self.alerts.values():
            if alert.annotations.get("summary"):
                return alert.annotations["summary"]
        return self.common_annotations.get("description", "")

    @property
    def severity(self) -> str:
        return self.common_labels.get("severity", "")

    @property
    def firing(self) -> list[TrackedAlert]:
        return [a for a in self.alerts.values() if a.status == "firing"]

    @property
    def resolved(self) -> list[TrackedAlert]:
        return [a for a in self.alerts.values() if a.status == "resolved"]

    @property
    def is_open(self) -> bool:
        return self.status == "firing"

    @property
    def started_at(self) -> float:
        starts = [datetime.fromisoformat(a.starts_at).timestamp() for a in self.alerts.values()]
        return min(starts) if starts else self.first_seen

    @property
    def runbook_url(self) -> str:
        if "runbook_url" in self.common_annotations:
            return self.common_annotations["runbook_url"]
        return next(
            (
                a.annotations["runbook_url"]
                for a in self.alerts.values()
                if "runbook_url" in a.annotations
            ),
            "",
        )

    def silence_active(self, now: float) -> bool:
        return self.silence_id is not None and (self.silence_until or 0) > now

    def needs_attention(self, now: float) -> bool:
        """Open, and nobody has acknowledged or silenced it: escalation applies."""
        return self.is_open and self.acked_by is None and not self.silence_active(now)

    # -- storage -------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AlertGroup:
        data: dict[str, Any] = json.loads(text)
        data["alerts"] = {k: TrackedAlert(**v) for k, v in data.get("alerts", {}).items()}
        data["outbox"] = [Outgoing(**o) for o in data.get("outbox", [])]
        return cls(**data)


def _track(alert: Any) -> TrackedAlert:
    return TrackedAlert(
        fingerprint=fingerprint(alert),
        status=alert.status,
        labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        starts_at=utc(alert.startsAt).astimezone(UTC).isoformat(),
        ends_at=utc(alert.endsAt).astimezone(UTC).isoformat() if alert.endsAt else None,
        generator_url=alert.generatorURL,
        links=dict(alert.links),
        values=dict(alert.values),
    )


def _newer(incoming: TrackedAlert, known: TrackedAlert) -> bool:
    """Does `incoming` describe a later state of the alert than `known`?"""
    if incoming.status == known.status:
        return False
    if incoming.status == "resolved":
        # The same incarnation (or a later one) ended.
        return incoming.starts_at >= known.starts_at
    # Firing again: only if it started after the known incarnation ended.
    return known.ends_at is not None and incoming.starts_at > known.ends_at


def merge(group: AlertGroup, notification: WebhookNotification, now: float) -> Change:
    """Apply a notification to the group; return what changed."""
    change = Change()
    was_open = group.is_open
    for raw in notification.alerts:
        incoming = _track(raw)
        known = group.alerts.get(incoming.fingerprint)
        if known is None or _newer(incoming, known):
            group.alerts[incoming.fingerprint] = incoming
            target = change.new_firing if incoming.status == "firing" else change.resolved
            target.append(incoming)
        else:
            known.annotations = incoming.annotations or known.annotations
            known.values = incoming.values or known.values  # the newest evaluation
    group.receiver = notification.receiver
    group.group_labels = dict(notification.groupLabels)
    group.common_labels = dict(notification.commonLabels)
    group.common_annotations = dict(notification.commonAnnotations)
    group.external_url = notification.externalURL
    group.source = notification.source
    group.silence_matchers = [m.model_dump() for m in notification.silenceMatchers]
    group.status = "firing" if group.firing else "resolved"
    if not change.empty:
        group.updated_at = now
    if group.is_open and not was_open:
        change.reopened = True
        group.resolved_at = None
    if was_open and not group.is_open:
        change.group_resolved = True
        group.resolved_at = _ended_at(group, now)
    return change


def _ended_at(group: AlertGroup, now: float) -> float:
    """When a resolved group ended: its last alert's endsAt, as Alertmanager reports it.

    Not the time the notification was processed: that is a group_wait, a retry or a queue
    later, and "how long it lasted" would grow with every delay on the way."""
    ends = [
        datetime.fromisoformat(a.ends_at).timestamp() for a in group.alerts.values() if a.ends_at
    ]
    return min(max(ends), now) if ends else now


def resolve_all(group: AlertGroup, now: float) -> Change:
    """Mark every firing alert resolved (the bot found out itself, e.g. while silenced)."""
    change = Change(group_resolved=group.is_open)
    ended = datetime.fromtimestamp(now, UTC).isoformat()
    for alert in group.firing:
        alert.status = "resolved"
        alert.ends_at = ended
        change.resolved.append(alert)
    group.status = "resolved"
    group.resolved_at = now
    group.updated_at = now
    return change
