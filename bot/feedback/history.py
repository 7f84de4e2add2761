"""The records the delivery figures are made of, as pure functions: one per rollout, kept
current by every change of the rollout (in the same Redis transaction: bot/store/deploys.py),
and one per incident (an alert group on the service). Nothing here talks to Redis or Slack.

A rollout's record follows the decisions its outbox carries (the audit entries a decision
stores with it), so a Reject is told apart from a `/deploy rollback` and each moment is the
moment the decision was stored.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from bot.deploys.rollout import COMPLETE, FAILED, ROLLED_BACK, Rollout

# How long records are kept, and how many per service at most (rollouts and incidents
# together): a year and a bit, so that a digest can be read against the same week a year
# before; the count bounds a service that deploys far more than a busy team does
# (docs/dora.md: 10 deploys and 3 alerts a day are about 4,700 a year).
KEEP_DAYS = 400
MAX_PER_SERVICE = 10_000

# The job that measures a completed rollout's lead time (bot/feedback/service.py).
LEAD_TIME_JOB = "feedback.lead_time"

COMPLETED = "completed"
REJECTED = "rejected"
ROLLED_BACK_OUTCOME = "rolled_back"
FAILED_OUTCOME = "failed"
SUPERSEDED = "superseded"
FAILURES = frozenset({REJECTED, ROLLED_BACK_OUTCOME, FAILED_OUTCOME})


def _compact(record: Any) -> str:
    """JSON without the fields that hold their default: a year of records is mostly these
    strings, and most of a record's moments never happen."""
    data = {}
    for f in fields(record):
        value = getattr(record, f.name)
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if value != default:
            data[f.name] = value
    return json.dumps(data, separators=(",", ":"))


def _known(cls: type, raw: str | bytes) -> dict[str, Any]:
    """The stored fields this opsloop knows (an older or newer one may have stored others)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in json.loads(raw).items() if k in names}


@dataclass
class RolloutRecord:
    """One rollout as the figures need it; times are Unix seconds."""

    id: str  # D-<n>
    service: str
    version: str
    previous: str | None  # the version it replaced (None: a first deploy)
    started_at: float
    started_by: str
    approved_by: list[str] = field(default_factory=list)
    state: str = ""  # the rollout's latest state
    gate: bool = False  # a request of Flagger's gate (its version is a checksum)
    completed_at: float | None = None
    rejected_at: float | None = None
    rollback_asked_at: float | None = None
    rolled_back_at: float | None = None  # the rollback complete
    failed_at: float | None = None
    superseded_at: float | None = None
    ended_by: str | None = None  # who rejected or rolled back

    def to_json(self) -> str:
        return _compact(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> RolloutRecord:
        return cls(**_known(cls, raw))

    @property
    def outcome(self) -> str | None:
        """How the rollout ended (None: still under way): a rollback that finished after the
        rollout completed (or before it was started over) ends it, else its completion does."""
        if self.rolled_back_at is not None and self.rolled_back_at >= (self.completed_at or 0):
            return REJECTED if self.rejected_at is not None else ROLLED_BACK_OUTCOME
        # Failed and not retried to completion; or, at Flagger's gate, approved and then
        # failed by Flagger's own analysis.
        failed_last = self.failed_at is not None and self.failed_at >= (self.completed_at or 0)
        if failed_last and (self.state == FAILED or self.gate):
            return FAILED_OUTCOME
        if self.completed_at is not None:
            return COMPLETED
        if self.superseded_at is not None:
            return SUPERSEDED
        return None

    @property
    def ended_at(self) -> float | None:
        ends = {
            COMPLETED: self.completed_at,
            REJECTED: self.rolled_back_at,
            ROLLED_BACK_OUTCOME: self.rolled_back_at,
            FAILED_OUTCOME: self.failed_at,
            SUPERSEDED: self.superseded_at,
        }
        outcome = self.outcome
        return ends[outcome] if outcome is not None else None

    @property
    def failed_from(self) -> float | None:
        """When the failure began, for a rollout that failed: it failed, or a person turned it
        back (Reject, `/deploy rollback`); None when it did not fail."""
        if self.outcome not in FAILURES:
            return None
        times = [t for t in (self.failed_at, self.rejected_at, self.rollback_asked_at) if t]
        return min(times) if times else self.ended_at


@dataclass
class LeadTime:
    """A completed rollout's lead time, measured once when it completed (or why not)."""

    id: str
    seconds: float | None = None  # None: not measured
    commits: int = 0
    oldest_commit_at: float | None = None
    project: str | None = None
    kind: str | None = None  # the service's deployer when it was measured
    reason: str | None = None  # why it was not measured

    def to_json(self) -> str:
        return _compact(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> LeadTime:
        return cls(**_known(cls, raw))


@dataclass
class Incident:
    """An alert group whose alerts carry a service's `alert_labels`."""

    ref: str  # AL-<n>
    service: str
    fired_at: float
    resolved_at: float | None = None
    title: str = ""

    def to_json(self) -> str:
        return _compact(self)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Incident:
        return cls(**_known(cls, raw))


def decided(before: Rollout | None, after: Rollout) -> list[str]:
    """The audit actions `after`'s decision added to the outbox (a drain adds none)."""
    kept = Counter(
        json.dumps(item, sort_keys=True)
        for item in (before.outbox if before is not None and before.id == after.id else [])
    )
    added = []
    for item in after.outbox:
        key = json.dumps(item, sort_keys=True)
        if kept[key]:
            kept[key] -= 1
        elif "audit" in item:
            added.append(str(item["audit"].get("action", "")))
    return added


def advance(
    record: RolloutRecord | None, after: Rollout, actions: list[str], now: float
) -> RolloutRecord:
    """The record of `after` once the change that made it (adding `actions`) is stored."""
    r = record or RolloutRecord(
        id=after.id,
        service=after.service,
        version=after.version,
        previous=after.stable,
        started_at=after.started_at,
        started_by=after.started_by,
        gate=after.checksum is not None,
    )
    approvers = [*r.approved_by]
    for user in [
        *(u for step in after.history for u in step.get("approved_by", [])),
        *after.approvals,
    ]:
        if user not in approvers:
            approvers.append(user)
    r = replace(r, approved_by=approvers, state=after.state)
    if after.state == COMPLETE and r.completed_at is None:
        r.completed_at = after.finished_at or now
    if "deploy.canary_succeeded" in actions and r.completed_at is None:
        r.completed_at = now
    if "deploy.rejected" in actions:
        r.rejected_at, r.ended_by = now, after.ended_by
    if "deploy.rollback_requested" in actions:
        r.rollback_asked_at, r.ended_by = now, after.ended_by
    # A rollback of a rollout that completed since an earlier rollback is a new one.
    stale = r.rolled_back_at is None or r.rolled_back_at < (r.completed_at or 0)
    if after.state == ROLLED_BACK and stale:
        r.rolled_back_at = after.finished_at or now
    if ("deploy.failed" in actions or "deploy.canary_failed" in actions) and r.failed_at is None:
        r.failed_at = now
    return r


def superseded(record: RolloutRecord, now: float) -> RolloutRecord:
    """A rollout a newer one replaced while it had not ended (Flagger moved on)."""
    if record.outcome is not None:
        return record
    return replace(record, superseded_at=now)


__all__ = [
    "COMPLETED",
    "FAILURES",
    "KEEP_DAYS",
    "LEAD_TIME_JOB",
    "MAX_PER_SERVICE",
    "Incident",
    "LeadTime",
    "RolloutRecord",
    "advance",
    "decided",
    "superseded",
]
