"""DORA's four delivery figures from what opsloop recorded, as pure functions over a
service's history (bot/feedback/history.py). docs/dora.md sets each definition beside DORA's.

- Deployment frequency: rollouts that completed in the period, per day and per week.
- Lead time for changes: for each rollout that completed in the period, from the oldest commit
  it brought (GitLab's compare of the previous and the new version) to its completion; the
  median and the 90th percentile. Rollouts without a measurement are listed with the reason.
- Change failure rate: of the rollouts that ended in the period (completed, rejected, rolled
  back, failed), those rejected, rolled back or failed, or completed and followed by an
  incident on the service within `failure_window`.
- Time to restore: from a failure that began in the period (a rollout failing or being turned
  back; an incident firing) to the service's next good state (the rollback complete, a later
  rollout completing, the incident resolved); the median. Failures not restored yet are counted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.feedback.history import (
    COMPLETED,
    FAILED_OUTCOME,
    FAILURES,
    SUPERSEDED,
    Incident,
    LeadTime,
    RolloutRecord,
)

DAY = 86_400.0


@dataclass(frozen=True)
class Period:
    """[start, end) in Unix seconds."""

    start: float
    end: float

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY

    def holds(self, t: float | None) -> bool:
        return t is not None and self.start <= t < self.end


@dataclass(frozen=True)
class Unmeasured:
    """A completed rollout whose lead time is not known, and why."""

    service: str
    rollout: str
    version: str
    reason: str


@dataclass
class Figures:
    """The four figures of one service, or of all of them together."""

    days: float
    deployments: int = 0
    lead_times: list[float] = field(default_factory=list)  # seconds, one per measured rollout
    unmeasured: list[Unmeasured] = field(default_factory=list)
    ended: int = 0
    failed: list[str] = field(default_factory=list)  # the failed rollouts' ids
    restores: list[float] = field(default_factory=list)  # seconds, one per restored failure
    unrestored: int = 0

    @property
    def per_day(self) -> float:
        return self.deployments / self.days if self.days > 0 else 0.0

    @property
    def per_week(self) -> float:
        return self.per_day * 7

    @property
    def lead_median(self) -> float | None:
        return median(self.lead_times)

    @property
    def lead_p90(self) -> float | None:
        return percentile(self.lead_times, 90)

    @property
    def failure_rate(self) -> float | None:
        """Failed over ended, 0..1; None when no rollout ended."""
        return len(self.failed) / self.ended if self.ended else None

    @property
    def restore_median(self) -> float | None:
        return median(self.restores)

    def add(self, other: Figures) -> None:
        self.deployments += other.deployments
        self.lead_times += other.lead_times
        self.unmeasured += other.unmeasured
        self.ended += other.ended
        self.failed += other.failed
        self.restores += other.restores
        self.unrestored += other.unrestored


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile: the smallest value at or above p% of them."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


def figures(
    rollouts: Iterable[RolloutRecord],
    leads: Mapping[str, LeadTime],
    incidents: Iterable[Incident],
    period: Period,
    failure_window: float,
) -> Figures:
    """One service's figures for `period` from its records (those that started before the
    period too: a rollout may end, and a failure be restored, inside it)."""
    rollouts = sorted(rollouts, key=lambda r: r.started_at)
    incidents = sorted(incidents, key=lambda i: i.fired_at)
    out = Figures(days=period.days)
    for r in rollouts:
        if period.holds(r.completed_at):
            out.deployments += 1
            _lead(out, r, leads.get(r.id))
        outcome = r.outcome
        if outcome is None or outcome == SUPERSEDED or not period.holds(r.ended_at):
            continue
        out.ended += 1
        if outcome in FAILURES or _alert_followed(r, incidents, failure_window):
            out.failed.append(r.id)
    for start, restored in _failures(rollouts, incidents):
        if not period.holds(start):
            continue
        if restored is None or restored > period.end:
            out.unrestored += 1
        else:
            out.restores.append(max(restored - start, 0.0))
    return out


def _lead(out: Figures, r: RolloutRecord, lead: LeadTime | None) -> None:
    if lead is not None and lead.seconds is not None:
        out.lead_times.append(lead.seconds)
        return
    reason = lead.reason if lead is not None and lead.reason else "not measured yet"
    out.unmeasured.append(Unmeasured(r.service, r.id, r.version, reason))


def _alert_followed(r: RolloutRecord, incidents: list[Incident], window: float) -> bool:
    if r.outcome != COMPLETED or r.completed_at is None:
        return False
    done = r.completed_at
    return any(done <= i.fired_at <= done + window for i in incidents)


def _failures(
    rollouts: list[RolloutRecord], incidents: list[Incident]
) -> list[tuple[float, float | None]]:
    """(when each failure began, when the service was good again or None)."""
    found: list[tuple[float, float | None]] = []
    for r in rollouts:
        start = r.failed_from
        if start is None:
            continue
        if r.outcome == FAILED_OUTCOME:  # still failed: good again once a later one completes
            later = [x.completed_at for x in rollouts if x.completed_at and x.completed_at > start]
            found.append((start, min(later) if later else None))
        else:
            found.append((start, r.rolled_back_at))
    found += [(i.fired_at, i.resolved_at) for i in incidents]
    return found
